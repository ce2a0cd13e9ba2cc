"""Certificates for the HTTPS listener: Ingress TLS Secrets and ingress-nginx's default.

A ``spec.tls`` entry names a Secret holding ``tls.crt`` and ``tls.key`` (type
kubernetes.io/tls, though ingress-nginx reads any type with those keys). Each
Secret becomes an ``ssl.SSLContext`` once per resourceVersion, chosen per
connection by SNI. What cannot be used (no such Secret, a key missing, PEM
that does not parse, a key that does not match, a certificate that does not
name the host) falls back to the default certificate, a self-signed one like
ingress-nginx's: RSA 2048, "Kubernetes Ingress Controller Fake Certificate",
O=Acme Co, for ingress.local, valid a year, made at start.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from svcnet.k8s.objects import Obj

FAKE_CN = "Kubernetes Ingress Controller Fake Certificate"
FAKE_HOST = "ingress.local"
MAX_PEM = 256 * 1024
"""Bytes of tls.crt or tls.key considered; a Secret holds at most 1 MiB anyway."""


def fake_certificate() -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) as ingress-nginx's getFakeHostSSLCert makes them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Co"),
            x509.NameAttribute(NameOID.COMMON_NAME, FAKE_CN),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(FAKE_HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context for one certificate (ssl loads chains from files only, so the
    PEM goes through a private temporary directory, removed at once)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory(prefix="svcnet-ingress-") as d:
        cert_path, key_path = Path(d) / "tls.crt", Path(d) / "tls.key"
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


def covers(cert: x509.Certificate, host: str) -> bool:
    """VerifyHostname, then the Common Name (ingress-nginx's fallback)."""
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        try:
            if str(ipaddress.ip_address(host)) in ips:
                return True
        except ValueError:
            pass
    except x509.ExtensionNotFound:
        pass
    names += [
        str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    for name in names:
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


@dataclass
class Loaded:
    """A Secret's certificate, or why it cannot be used."""

    rv: str
    context: ssl.SSLContext | None
    cert: x509.Certificate | None
    error: str


def load(secret: Obj) -> Loaded:
    rv = str((secret.get("metadata") or {}).get("resourceVersion") or "")
    data = secret.get("data") or {}
    pems: dict[str, bytes] = {}
    for key in ("tls.crt", "tls.key"):
        value = data.get(key)
        if not value:
            return Loaded(rv, None, None, f"the Secret has no {key}")
        try:
            pems[key] = base64.b64decode(str(value)[: MAX_PEM * 2], validate=True)[:MAX_PEM]
        except (binascii.Error, ValueError):
            return Loaded(rv, None, None, f"{key} is not base64")
    try:
        cert = x509.load_pem_x509_certificate(pems["tls.crt"])
    except ValueError as e:
        return Loaded(rv, None, None, f"tls.crt is not a PEM certificate ({e})")
    try:
        ctx = server_context(pems["tls.crt"], pems["tls.key"])
    except (ssl.SSLError, OSError) as e:
        return Loaded(rv, None, cert, f"tls.key does not go with tls.crt ({e})")
    return Loaded(rv, ctx, cert, "")


class Certificates:
    """The default context and one per usable Secret, cached by resourceVersion."""

    def __init__(self) -> None:
        self.default = server_context(*fake_certificate())
        self._loaded: dict[tuple[str, str], Loaded] = {}

    def get(self, key: tuple[str, str], secret: Obj | None) -> Loaded:
        """The certificate of Secret `key` (namespace, name) as it is now."""
        if secret is None:
            self._loaded.pop(key, None)
            return Loaded("", None, None, f'secret "{key[0]}/{key[1]}" not found')
        rv = str(secret["metadata"].get("resourceVersion") or "")
        cached = self._loaded.get(key)
        if cached is None or cached.rv != rv:
            cached = self._loaded[key] = load(secret)
        return cached

    def forget(self, keep: set[tuple[str, str]]) -> None:
        for key in set(self._loaded) - keep:
            del self._loaded[key]

"""A cluster's credentials: the API's TLS certificate and the owner's bearer token.

kube-apiserver authenticates every request except the health and version
endpoints, and kubectl (1.32 and 1.37 alike) sends a bearer token only over
TLS, so svcnet serves its API over HTTPS as kind does: a CA of the cluster's
own, a serving certificate for the loopback names and the `kubernetes`
Service's names and ClusterIP, and a random token. All of it lives in the
cluster's state directory (state.py), readable by the cluster's owner only,
and is made once and reused, so a kubeconfig written by `svcnet kubeconfig`
keeps working across restarts; a certificate that lacks a needed name or is
about to expire is made again.

Whoever holds the token is the cluster's admin, named as a kind cluster names
its kubeconfig's user (k8s/rbac.py: kubernetes-admin, in kubeadm:cluster-admins):
that is what `kubectl auth whoami` reports for a kubeconfig written here.

The svcnet CLI finds these files from the server address alone (the state
directory is named after it); kubectl and client libraries get them in the
kubeconfig the daemon writes beside them.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import os
import secrets
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from svcnet import state
from svcnet.k8s.objects import Obj

CA = "ca.crt"
CA_KEY = "ca.key"
CERT = "apiserver.crt"
KEY = "apiserver.key"
TOKEN = "token"
KUBECONFIG = "kubeconfig"
NAME = "svcnet"
VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)

TOKEN_ENV = "SVCNET_TOKEN"
CA_ENV = "SVCNET_CA"


@dataclass(frozen=True)
class Credentials:
    ca_pem: bytes
    ca_path: Path
    cert_path: Path
    key_path: Path
    token: str

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return client_context(self.ca_pem)

    @property
    def headers(self) -> dict[str, str]:
        """What a client sends to authenticate."""
        return {"Authorization": f"Bearer {self.token}"}

    def allows(self, authorization: str | None) -> bool:
        """Whether an Authorization header carries this cluster's token."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        return hmac.compare_digest(authorization[7:].strip().encode(), self.token.encode())


def client_context(ca_pem: bytes | None) -> ssl.SSLContext:
    """TLS that trusts the cluster's own CA (or the system's, without one)."""
    ctx = ssl.create_default_context()
    if ca_pem:
        ctx.load_verify_locations(cadata=ca_pem.decode())
    return ctx


def api_names(cluster_domain: str, extra_ips: list[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the serving certificate must carry."""
    dns = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster_domain}",
    ]
    ips = ["127.0.0.1", "::1", *extra_ips]
    return dns, list(dict.fromkeys(ips))


def ensure(statedir: state.StateDir, dns: list[str], ips: list[str]) -> Credentials:
    """Load the cluster's credentials, making what is missing, stale or short of a name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    statedir.make()
    path = statedir.path
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key: ec.EllipticCurvePrivateKey | None = None
    ca_cert: x509.Certificate | None = None
    try:
        loaded_key = serialization.load_pem_private_key((path / CA_KEY).read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate((path / CA).read_bytes())
        if isinstance(loaded_key, ec.EllipticCurvePrivateKey) and (
            ca_cert.not_valid_after_utc - now > RENEW_BEFORE
        ):
            ca_key = loaded_key
    except (OSError, ValueError):
        pass
    if ca_key is None or ca_cert is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name("svcnet-ca"))
            .issuer_name(name("svcnet-ca"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + 10 * VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        statedir.write_private(CA_KEY, pem_key(ca_key))
        statedir.write_private(CA, ca_cert.public_bytes(serialization.Encoding.PEM))
        (path / CERT).unlink(missing_ok=True)  # signed by the old CA: make it again

    wanted: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    wanted += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if not _serving_cert_ok(path / CERT, path / KEY, ca_cert, wanted, now):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name("kube-apiserver"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        statedir.write_private(KEY, pem_key(key))
        statedir.write_private(CERT, cert.public_bytes(serialization.Encoding.PEM))

    try:
        token = (path / TOKEN).read_text().strip()
    except OSError:
        token = ""
    if len(token) < 32:
        token = secrets.token_urlsafe(32)
        statedir.write_private(TOKEN, token.encode() + b"\n")
    return Credentials((path / CA).read_bytes(), path / CA, path / CERT, path / KEY, token)


def _serving_cert_ok(
    cert_path: Path, key_path: Path, ca: object, wanted: Sequence[object], now: dt.datetime
) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key_path.read_bytes()
    except (OSError, ValueError):
        return False
    assert isinstance(ca, x509.Certificate)
    if cert.issuer != ca.subject or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(w in have for w in wanted)


# --- kubeconfig ---------------------------------------------------------------------


def entries(
    server: str, name: str, namespace: str, ca_pem: bytes | None, token: str | None
) -> tuple[Obj, Obj, Obj]:
    """The (cluster, user, context) entries, in kubeconfig's named-list form."""
    import base64

    cluster: Obj = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: Obj = {"token": token} if token else {}
    return (
        {"name": name, "cluster": cluster},
        {"name": name, "user": user},
        {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}},
    )


def kubeconfig(
    server: str,
    ca_pem: bytes | None,
    token: str | None,
    name: str = NAME,
    namespace: str = "default",
) -> Obj:
    cluster, user, context = entries(server, name, namespace, ca_pem, token)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [cluster],
        "users": [user],
        "contexts": [context],
        "current-context": name,
    }


def dump(config: Obj) -> str:
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


# --- what a client uses -----------------------------------------------------------------


@dataclass(frozen=True)
class ClientAuth:
    """What a client sends: a token and the CA to trust; each may be missing."""

    token: str | None
    ca_path: Path | None
    looked_in: Path | None
    """The state directory that was searched, for the message when nothing was found."""


def for_server(host: str, port: int, environ: Mapping[str, str] = os.environ) -> ClientAuth:
    """The credentials of the cluster serving at host:port: $SVCNET_TOKEN and
    $SVCNET_CA win; otherwise the files in that cluster's state directory."""
    token = environ.get(TOKEN_ENV) or None
    ca = Path(environ[CA_ENV]) if environ.get(CA_ENV) else None
    looked: Path | None = None
    if token is None or ca is None:
        given = environ.get(state.STATE_DIR_ENV)
        looked = Path(given) if given else state.default_dir(environ, host, port)
        if token is None:
            try:
                token = (looked / TOKEN).read_text().strip() or None
            except OSError:
                token = None
        if ca is None and (looked / CA).is_file():
            ca = looked / CA
    return ClientAuth(token, ca, looked)

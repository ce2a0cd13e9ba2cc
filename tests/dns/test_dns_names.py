"""Table-driven tests for the pure parts: name shapes, upstream entries, wire parsing."""

from __future__ import annotations

import struct
from typing import Any

import dns.flags
import dns.message
import pytest
from hypothesis import given
from hypothesis import strategies as st

from svcnet.dns import wire
from svcnet.dns.handlers.forward import Upstream, parse_address, resolve_upstreams
from svcnet.dns.names import (
    ClusterName,
    Kind,
    parse_cluster,
    parse_reverse,
    pod_address,
    reverse_name,
    short_name,
    split_zone,
    zone_labels,
)

ZONES = zone_labels(["cluster.local", "local"])
CL = "cluster.local"


def labels(name: str) -> tuple[str, ...]:
    return tuple(x for x in name.lower().split(".") if x)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cluster.local", ClusterName(Kind.APEX, CL)),
        ("svc.cluster.local", ClusterName(Kind.SVC_ROOT, CL)),
        ("default.svc.cluster.local", ClusterName(Kind.NAMESPACE, CL, namespace="default")),
        (
            "echo.default.svc.cluster.local",
            ClusterName(Kind.SERVICE, CL, namespace="default", service="echo"),
        ),
        (
            "ECHO.Default.SVC.Cluster.Local",
            ClusterName(Kind.SERVICE, CL, namespace="default", service="echo"),
        ),
        (
            "echo.default.svc.local",
            ClusterName(Kind.SERVICE, "local", namespace="default", service="echo"),
        ),
        (
            "127-244-0-2.echo.default.svc.cluster.local",
            ClusterName(
                Kind.ENDPOINT, CL, namespace="default", service="echo", endpoint="127-244-0-2"
            ),
        ),
        (
            "_http._tcp.echo.default.svc.cluster.local",
            ClusterName(
                Kind.PORT, CL, namespace="default", service="echo", port="http", protocol="tcp"
            ),
        ),
        (
            "http.tcp.echo.default.svc.cluster.local",
            ClusterName(
                Kind.PORT, CL, namespace="default", service="echo", port="http", protocol="tcp"
            ),
        ),
        ("a.b.c.echo.default.svc.cluster.local", ClusterName(Kind.TOO_LONG, CL)),
        ("pod.cluster.local", ClusterName(Kind.POD_ROOT, CL)),
        ("default.pod.cluster.local", ClusterName(Kind.POD_NAMESPACE, CL, namespace="default")),
        (
            "127-244-0-2.default.pod.cluster.local",
            ClusterName(Kind.POD, CL, namespace="default", endpoint="127-244-0-2"),
        ),
        ("x.y.default.pod.cluster.local", ClusterName(Kind.TOO_LONG, CL)),
        ("dns-version.cluster.local", ClusterName(Kind.DNS_VERSION, CL)),
        ("foo.cluster.local", ClusterName(Kind.INVALID, CL)),
        # A search-path step: an endpoint shape whose "service" does not exist.
        (
            "echo.default.default.svc.cluster.local",
            ClusterName(Kind.ENDPOINT, CL, namespace="default", service="default", endpoint="echo"),
        ),
        (
            "gihyo.jp.default.svc.cluster.local",
            ClusterName(Kind.ENDPOINT, CL, namespace="default", service="jp", endpoint="gihyo"),
        ),
        # `svc.local` falls in the alias zone; `svc.cluster.local` in the cluster zone.
        ("svc.local", ClusterName(Kind.SVC_ROOT, "local")),
        ("local", ClusterName(Kind.APEX, "local")),
    ],
)
def test_parse_cluster(name: str, expected: ClusterName) -> None:
    split = split_zone(labels(name), ZONES)
    assert split is not None
    assert parse_cluster(*split) == expected


@pytest.mark.parametrize("name", ["echo", "echo.default", "example.com", "cluster.localx", ""])
def test_outside_the_zones(name: str) -> None:
    assert split_zone(labels(name), ZONES) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("echo", ("echo", "default")),
        ("echo.prod", ("echo", "prod")),
        ("", None),
        ("a.b.c", None),
    ],
)
def test_short_name(name: str, expected: tuple[str, str] | None) -> None:
    assert short_name(labels(name)) == expected


def test_zone_labels_longest_first_and_deduplicated() -> None:
    assert zone_labels(["local", "Cluster.Local.", "cluster.local", ""]) == [
        ("cluster", "local"),
        ("local",),
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("10.0.0.1", Upstream("10.0.0.1", 53)),
        ("127.11.0.53:5353", Upstream("127.11.0.53", 5353)),
        ("::1", Upstream("::1", 53)),
        ("[::1]:5353", Upstream("::1", 5353)),
        ("[fe80::1%lo]:53", Upstream("fe80::1%lo", 53)),
        ("[::1]", Upstream("::1", 53)),
        (" 1.1.1.1 ", Upstream("1.1.1.1", 53)),
        ("1.1.1.1:0", None),
        ("1.1.1.1:70000", None),
        ("1.1.1.1:dns", None),
        ("[::1]x", None),
        ("/etc/resolv.conf", None),
        ("dns.example", None),
    ],
)
def test_parse_address(entry: str, expected: Upstream | None) -> None:
    assert parse_address(entry) == expected


def test_resolve_upstreams_reads_resolv_conf_and_skips_bad_entries() -> None:
    files = {
        "/a/resolv.conf": (
            "# generated\nsearch example\nnameserver 127.11.0.53\n"
            "nameserver ::1 # comment\nnameserver bogus\noptions ndots:5\n"
        ),
        "/b/empty.conf": "search x\n",
    }

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]

    got = resolve_upstreams(
        ["127.11.0.54:5300", "/a/resolv.conf", "/missing", "/b/empty.conf", "127.11.0.53"], read
    )
    assert got == [Upstream("127.11.0.54", 5300), Upstream("127.11.0.53"), Upstream("::1")]
    assert [str(u) for u in got] == ["127.11.0.54:5300", "127.11.0.53:53", "[::1]:53"]


# --- wire -----------------------------------------------------------------------------


def query_wire(name: str, rdtype: str = "A", **kw: Any) -> bytes:
    q = dns.message.make_query(name, rdtype, **kw)
    q.id = 0x1234
    return q.to_wire()


def key_of(data: bytes) -> bytes:
    q = wire.parse_query(data)
    assert q is not None
    return q.key


@pytest.mark.parametrize(
    "kw",
    [{}, {"use_edns": 0}, {"use_edns": 0, "want_dnssec": True}, {"use_edns": 0, "payload": 4096}],
)
def test_fast_key_agrees_with_full_parse(kw: dict[str, Any]) -> None:
    data = query_wire("Echo.Default.svc.cluster.local", **kw)
    fast = wire.fast_key(data)
    q = wire.parse_query(data)
    assert fast is not None and q is not None
    key, qend, limit = fast
    assert (key, qend, limit) == (q.key, q.qend, q.udp_limit)
    assert q.labels == (b"Echo", b"Default", b"svc", b"cluster", b"local")
    assert key == key_of(query_wire("echo.default.SVC.cluster.local", **kw))


def test_key_separates_what_changes_the_reply() -> None:
    keys = {
        key_of(query_wire("echo.")),
        key_of(query_wire("echo.", "AAAA")),
        key_of(query_wire("echo.", use_edns=0)),
        key_of(query_wire("echo.", use_edns=0, want_dnssec=True)),
        key_of(query_wire("echo.", flags=0)),
        key_of(query_wire("echo.", "TYPE65")),
        key_of(query_wire("echo.", "TYPE97")),
    }
    assert len(keys) == 7


HEADER_1Q = struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0)


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        (b"", "drop"),
        (b"\x00" * 11, "drop"),
        (struct.pack("!6H", 7, 0x8180, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01", "drop"),
        (struct.pack("!6H", 7, 0x0100, 0, 0, 0, 0), "formerr"),
        (struct.pack("!6H", 7, 0x0100, 2, 0, 0, 0), "formerr"),
        (HEADER_1Q, "formerr"),
        (HEADER_1Q + b"\x04echo", "formerr"),
        (HEADER_1Q + b"\x04echo\x00\x00", "formerr"),
        (HEADER_1Q + b"\xc0\x0c\x00\x01\x00\x01", "formerr"),
        (HEADER_1Q + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", "formerr"),
        (HEADER_1Q + b"\x3f" + b"a" * 63 + b"\x00\x00\x01\x00\x01", "ok"),
        (HEADER_1Q + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", "formerr"),
        (HEADER_1Q + b"\x00\x00\x01\x00\x01", "ok"),
        # Additional count says one record, none follows.
        (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 1) + b"\x00\x00\x01\x00\x01", "formerr"),
        # Two OPT records.
        (
            struct.pack("!6H", 7, 0x0100, 1, 0, 0, 2)
            + b"\x00\x00\x01\x00\x01"
            + (b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)) * 2,
            "formerr",
        ),
    ],
)
def test_parse_query_outcomes(data: bytes, outcome: str) -> None:
    if outcome == "formerr":
        with pytest.raises(wire.FormatError):
            wire.parse_query(data)
        reply = wire.formerr(data)
        assert reply is not None and reply[:2] == data[:2] and reply[3] & 0xF == wire.FORMERR
    elif outcome == "drop":
        assert wire.parse_query(data) is None
        assert wire.formerr(data) is None
    else:
        assert wire.parse_query(data) is not None


@given(st.binary(max_size=600))
def test_parsers_never_raise_unexpectedly(data: bytes) -> None:
    fast = wire.fast_key(data)
    try:
        q = wire.parse_query(data)
    except wire.FormatError:
        assert fast is None
        return
    if fast is not None:
        assert q is not None
        assert fast == (q.key, q.qend, q.udp_limit)


def test_fit_truncates_to_question_and_opt() -> None:
    data = query_wire("big.example", use_edns=0, want_dnssec=True)
    q = wire.parse_query(data)
    assert q is not None
    big = wire.empty_reply(q, wire.NOERROR) + b"\x00" * 600
    assert wire.fit(big, data, q.qend, 10000, True) == big
    small = wire.fit(big, data, q.qend, 512, True)
    msg = dns.message.from_wire(small)
    assert msg.id == 0x1234
    assert msg.flags & dns.flags.TC
    assert msg.question[0].name.to_text() == "big.example."
    assert msg.edns == 0 and msg.ednsflags & dns.flags.DO
    assert not msg.answer


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("10.0.10.127.in-addr.arpa", "127.10.0.10"),
        ("10.0.10.127.IN-ADDR.ARPA", None),  # callers pass lowercased labels
        ("0.10.127.in-addr.arpa", None),  # partial: not an address
        ("256.0.10.127.in-addr.arpa", None),
        ("010.0.10.127.in-addr.arpa", None),
        ("\u00b96.0.10.127.in-addr.arpa", None),  # a non-ASCII digit (found by the fuzz test)
        ("1.1.0.0." + "0." * 26 + "d.f.ip6.arpa", "fd00::11"),
        ("g.1.0.0." + "0." * 26 + "d.f.ip6.arpa", None),
        ("1.0.0." + "0." * 26 + "d.f.ip6.arpa", None),
    ],
)
def test_parse_reverse(name: str, expected: str | None) -> None:
    labels = tuple(name.split("."))
    assert parse_reverse(labels) == expected
    if expected is not None:
        assert reverse_name(expected) == name + "."


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("127-20-0-2", "127.20.0.2"),
        ("fd00--1", "fd00::1"),
        ("127-20-0", None),
        ("127-20-0-256", None),
        ("foo", None),
    ],
)
def test_pod_address(label: str, expected: str | None) -> None:
    assert pod_address(label) == expected

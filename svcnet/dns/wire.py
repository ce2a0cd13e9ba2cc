"""DNS wire format for the hot path: query parsing, cache keys, canned replies.

This module is sans-IO and deliberately does not use dnslib: every query goes
through `fast_key` (one pass over the header and question, no objects) so that
a cache hit costs a few slices; only misses pay for `parse_query`, and only
replies with records are packed with dnslib (see ``svcnet.dns.chain``).

Replies that carry no records (SERVFAIL, REFUSED, FORMERR, TC-only) are built
here byte by byte because they must work even when the query only half-parsed,
and a reply too big for the client is cut to the records that fit here too
(`fit`), on cached bytes as on fresh ones.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_LEN = 12

# Header flag bits (RFC 1035 4.1.1, RFC 4035 for AD/CD).
QR = 0x8000
OPCODE_MASK = 0x7800
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020
CD = 0x0010

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16  # extended rcode, carried half in the header and half in OPT

TYPE_OPT = 41
CLASS_IN = 1

MIN_UDP = 512
"""The payload every client accepts (RFC 1035); the limit without EDNS."""
SERVER_UDP = 1232
"""What we advertise in OPT: the DNS Flag Day 2020 size, safe from fragmentation."""
MAX_MESSAGE = 65535

_HEADER = struct.Struct("!6H")
_QTAIL = struct.Struct("!HH")
_RR_TAIL = struct.Struct("!HHIH")

# Cache-key flag bits: everything in a query, besides id and qname case, that
# changes the bytes of our reply.
_K_RD, _K_CD, _K_EDNS, _K_DO = 1, 2, 4, 8
_KEY_BYTE = tuple(bytes((i,)) for i in range(16))


class FormatError(Exception):
    """The header is readable but the rest of the message is not: answer FORMERR."""


@dataclass(frozen=True, slots=True)
class Edns:
    udp_size: int
    version: int
    do: bool


@dataclass(slots=True)
class Query:
    """One parsed question, with the raw message kept for relaying upstream."""

    data: bytes
    id: int
    flags: int
    labels: tuple[bytes, ...]
    """Labels exactly as sent: answers reuse them so the client's case survives."""
    qtype: int
    qclass: int
    name_end: int
    """Offset of the byte after the question's name (where qtype starts)."""
    edns: Edns | None
    tcp: bool = False
    depth: int = 0
    """How many ExternalName hops led to this query (0 for a client's own query)."""

    @property
    def qend(self) -> int:
        return self.name_end + 4

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> 11

    @property
    def lower_labels(self) -> tuple[str, ...]:
        # bytes.lower() folds ASCII only, as DNS comparisons do (RFC 4343).
        return tuple(label.lower().decode("latin-1") for label in self.labels)

    @property
    def name(self) -> str:
        """Presentation form for logs (not escaped: never fed back into DNS)."""
        return ".".join(label.decode("latin-1") for label in self.labels) + "."

    @property
    def key(self) -> bytes:
        return _key(self.data, self.name_end, _key_bits(self.flags, self.edns))

    @property
    def udp_limit(self) -> int:
        if self.tcp:
            return MAX_MESSAGE
        return max(MIN_UDP, self.edns.udp_size) if self.edns else MIN_UDP


def _key_bits(flags: int, edns: Edns | None) -> int:
    bits = (_K_RD if flags & RD else 0) | (_K_CD if flags & CD else 0)
    if edns is not None:
        bits |= _K_EDNS | (_K_DO if edns.do else 0)
    return bits


def _key(data: bytes, name_end: int, bits: int) -> bytes:
    # Only the name is case-folded: qtype/qclass bytes may fall in 'A'-'Z'.
    return data[HEADER_LEN:name_end].lower() + data[name_end : name_end + 4] + _KEY_BYTE[bits]


def fast_key(data: bytes) -> tuple[bytes, int, int] | None:
    """(cache key, end of question, UDP size limit) for the common query shape.

    Anything unusual (other opcodes, extra records, EDNS versions, trailing
    bytes) returns None and goes the slow way through `parse_query`.
    """
    n = len(data)
    if n < HEADER_LEN + 5:
        return None
    _, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if flags & (QR | OPCODE_MASK) or qd != 1 or an or ns or ar > 1:
        return None
    pos = HEADER_LEN
    while True:
        if pos >= n:
            return None
        length = data[pos]
        if length == 0:
            break
        if length > 63:
            return None
        pos += length + 1
    name_end = pos + 1
    qend = name_end + 4
    bits = (_K_RD if flags & RD else 0) | (_K_CD if flags & CD else 0)
    limit = MIN_UDP
    if ar:
        # Root owner, type OPT, then class = UDP size, ttl = ext-rcode/version/flags.
        if qend + 11 > n or data[qend] != 0:
            return None
        rtype, size, ttl, rdlen = _RR_TAIL.unpack_from(data, qend + 1)
        if rtype != TYPE_OPT or ttl & 0x00FF0000 or qend + 11 + rdlen != n:
            return None
        bits |= _K_EDNS | (_K_DO if ttl & 0x8000 else 0)
        limit = max(MIN_UDP, size)
    elif qend != n:
        return None
    return _key(data, name_end, bits), qend, limit


def _skip_name(data: bytes, pos: int) -> int:
    n = len(data)
    while True:
        if pos >= n:
            raise FormatError("name runs past the end of the message")
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            if pos + 2 > n:
                raise FormatError("truncated compression pointer")
            return pos + 2
        if length & 0xC0:
            raise FormatError("unknown label type")
        pos += length + 1


def parse_query(data: bytes, *, tcp: bool = False) -> Query | None:
    """Parse a query. None means "drop silently" (no header, or not a query).

    Raises FormatError when a FORMERR reply is due.
    """
    n = len(data)
    if n < HEADER_LEN:
        return None
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if flags & QR:
        # Never answer a response: two servers could bounce it forever.
        return None
    if qd != 1:
        raise FormatError(f"{qd} questions")
    pos = HEADER_LEN
    labels: list[bytes] = []
    while True:
        if pos >= n:
            raise FormatError("question name runs past the end of the message")
        length = data[pos]
        if length == 0:
            break
        if length > 63:
            # A pointer in the first question can only point into the header.
            raise FormatError("compression or bad label in the question")
        if pos + 1 + length > n:
            raise FormatError("question label runs past the end of the message")
        labels.append(data[pos + 1 : pos + 1 + length])
        pos += length + 1
    name_end = pos + 1
    if name_end - HEADER_LEN > 255:
        raise FormatError("question name longer than 255 bytes")
    if name_end + 4 > n:
        raise FormatError("question has no type/class")
    qtype, qclass = _QTAIL.unpack_from(data, name_end)
    pos = name_end + 4
    edns: Edns | None = None
    for i in range(an + ns + ar):
        pos = _skip_name(data, pos)
        if pos + 10 > n:
            raise FormatError("truncated resource record")
        rtype, rclass, ttl, rdlen = _RR_TAIL.unpack_from(data, pos)
        pos += 10 + rdlen
        if pos > n:
            raise FormatError("resource record data runs past the end of the message")
        if rtype == TYPE_OPT:
            if i < an + ns or edns is not None:
                # RFC 6891 6.1.1: OPT only once, only in the additional section.
                raise FormatError("misplaced or repeated OPT record")
            edns = Edns(udp_size=rclass, version=(ttl >> 16) & 0xFF, do=bool(ttl & 0x8000))
    return Query(data, qid, flags, tuple(labels), qtype, qclass, name_end, edns, tcp)


def make_query(
    labels: tuple[bytes, ...], qtype: int, *, qid: int = 0, depth: int = 0, tcp: bool = False
) -> Query:
    """A query of our own (RD set, EDNS with our size), e.g. to chase an ExternalName."""
    name = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
    data = (
        _HEADER.pack(qid, RD, 1, 0, 0, 1) + name + _QTAIL.pack(qtype, CLASS_IN) + opt_record(False)
    )
    query = parse_query(data, tcp=tcp)
    assert query is not None
    query.depth = depth
    return query


def opt_record(do: bool, ext_rcode: int = 0) -> bytes:
    ttl = (ext_rcode << 24) | (0x8000 if do else 0)
    return b"\x00" + _RR_TAIL.pack(TYPE_OPT, SERVER_UDP, ttl, 0)


def reply_flags(query_flags: int, rcode: int, *, aa: bool = False) -> int:
    """QR, the query's opcode, RD and CD, RA (we recurse by forwarding), AA if ours."""
    return QR | (query_flags & (OPCODE_MASK | RD | CD)) | RA | (AA if aa else 0) | (rcode & 0xF)


def empty_reply(query: Query, rcode: int, *, aa: bool = False) -> bytes:
    """A reply with the question (and OPT if asked) and no records."""
    edns = query.edns is not None
    opt = opt_record(query.edns.do, rcode >> 4) if query.edns else b""
    header = _HEADER.pack(query.id, reply_flags(query.flags, rcode, aa=aa), 1, 0, 0, int(edns))
    return header + query.data[HEADER_LEN : query.qend] + opt


def formerr(data: bytes) -> bytes | None:
    """FORMERR echoing only the header's id, opcode and RD; None if no header."""
    if len(data) < HEADER_LEN:
        return None
    qid, flags = struct.unpack_from("!HH", data)
    if flags & QR:
        return None
    return _HEADER.pack(qid, QR | (flags & (OPCODE_MASK | RD)) | FORMERR, 0, 0, 0, 0)


def rcode_of(wire: bytes) -> int:
    """The header part of the rcode (extended bits live in OPT; we ignore them here)."""
    return wire[3] & 0xF if len(wire) >= 4 else SERVFAIL


def key_edns_do(key: bytes) -> bool | None:
    """From a cache key: None if the query had no OPT, else its DO bit."""
    bits = key[-1]
    return bool(bits & _K_DO) if bits & _K_EDNS else None


def fit(reply: bytes, query_data: bytes, qend: int, limit: int, edns_do: bool | None) -> bytes:
    """The reply cut to `limit` bytes as miekg/dns ``Msg.Truncate`` cuts it (CoreDNS's
    ``Request.Scrub``): the records that fit, in order (answer, authority, additional),
    the OPT record kept, and TC set when any record had to go.

    The kept part is a byte prefix of the reply, so every compression pointer in it
    (they point backwards) stays valid. A reply that cannot be cut that way (an OPT
    that is not the last record, a malformed upstream message) gets TC with the
    query's own question alone, which is valid whatever the reply held; the client
    retries over TCP (RFC 7766).
    """
    if len(reply) <= limit:
        return reply
    try:
        return _truncate(reply, limit)
    except (FormatError, struct.error):
        flags = struct.unpack_from("!H", reply, 2)[0] | TC
        opt = b"" if edns_do is None else opt_record(edns_do)
        qid = struct.unpack_from("!H", query_data)[0]
        header = _HEADER.pack(qid, flags, 1, 0, 0, int(edns_do is not None))
        return header + query_data[HEADER_LEN:qend] + opt


def _truncate(reply: bytes, limit: int) -> bytes:
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(reply)
    pos = HEADER_LEN
    for _ in range(qd):
        pos = _skip_name(reply, pos) + 4
    qend = pos
    ends: list[int] = []  # where each record ends, in message order
    opt = b""
    total = an + ns + ar
    for i in range(total):
        start = pos
        pos = _skip_name(reply, pos)
        if pos + 10 > len(reply):
            raise FormatError("truncated resource record")
        rtype, _, _, rdlen = _RR_TAIL.unpack_from(reply, pos)
        pos += 10 + rdlen
        if pos > len(reply):
            raise FormatError("record data runs past the end of the message")
        if rtype == TYPE_OPT:
            if i != total - 1:
                raise FormatError("OPT is not the last record")
            opt = reply[start:pos]  # miekg pops it, budgets for it, puts it back last
        else:
            ends.append(pos)
    budget = limit - len(opt)
    kept = 0
    while kept < len(ends) and ends[kept] <= budget:
        kept += 1
    cut = ends[kept - 1] if kept else qend
    if cut > budget:
        raise FormatError("not even the question fits")
    counts = (min(kept, an), min(max(kept - an, 0), ns), max(kept - an - ns, 0) + (1 if opt else 0))
    # Anything left out (records, or bytes after the last record) means TC.
    tc = TC if kept < len(ends) or pos < len(reply) else 0
    return _HEADER.pack(qid, flags | tc, qd, *counts) + reply[HEADER_LEN:cut] + opt

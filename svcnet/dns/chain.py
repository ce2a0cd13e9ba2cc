"""The handler chain: CoreDNS's plugin chain, in Python.

Each handler gets the query and the rest of the chain. It either answers or
passes the query on with ``await next(query)``, exactly like a CoreDNS plugin
calling ``plugin.NextOrFailure``. The server's chain today is::

    cluster (the kubernetes plugin)  ->  forward (to the upstream resolvers)

and more handlers (hosts, a forwarded-answer cache, ...) slot in by position.
A query nobody answers gets REFUSED, like a query no CoreDNS server block
matches.

Replies travel as wire bytes plus their rcode, so the server can cache and
relay them without parsing again; `cacheable` marks answers that depend only on
the cluster index, and `scope` says which part of it (the server drops them in
the store's change event).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from dnslib import EDNS0, RR, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from svcnet.dns import wire
from svcnet.dns.wire import Query


@dataclass(frozen=True, slots=True)
class Reply:
    wire: bytes
    rcode: int
    cacheable: bool = False
    scope: tuple[str, str] | None = None
    """For a cacheable answer: the one Service (namespace, name) it depends on, so
    a change elsewhere keeps it; None means any change drops it."""
    spelled: bool = False
    """The bytes name the zone as this query spelled it beyond the question itself
    (SOA, NS, SRV targets, where CoreDNS keeps the client's case): the keyed cache
    may serve it only to the same spelling."""
    source: str = ""
    """Which handler answered (for the debug log and stats)."""


Next = Callable[[Query], Awaitable[Reply]]


class Handler(Protocol):
    @property
    def name(self) -> str: ...

    async def handle(self, query: Query, next: Next) -> Reply: ...


async def _refused(query: Query) -> Reply:
    return Reply(wire.empty_reply(query, wire.REFUSED), wire.REFUSED, source="chain")


class Chain:
    def __init__(self, handlers: Sequence[Handler]) -> None:
        self.handlers = tuple(handlers)
        nxt: Next = _refused
        # Built back to front, like CoreDNS's NewServer walking plugin.cfg.
        for h in reversed(self.handlers):
            nxt = self._link(h, nxt)
        self._first = nxt

    @staticmethod
    def _link(handler: Handler, nxt: Next) -> Next:
        async def call(query: Query) -> Reply:
            return await handler.handle(query, nxt)

        return call

    async def __call__(self, query: Query) -> Reply:
        return await self._first(query)


def owner(query: Query) -> DNSLabel:
    """The question's name as sent: answers keep the client's case (CoreDNS PR #2430)."""
    return DNSLabel(list(query.labels))


def build_reply(
    query: Query,
    rcode: int,
    *,
    answers: Iterable[RR] = (),
    authority: Iterable[RR] = (),
    additional: Iterable[RR] = (),
    aa: bool = False,
    tc: bool = False,
) -> bytes:
    """Pack a reply with records; OPT is echoed when the query carried one (RFC 6891)."""
    bitmap = wire.reply_flags(query.flags, rcode, aa=aa) | (wire.TC if tc else 0)
    header = DNSHeader(id=query.id, bitmap=bitmap)
    msg = DNSRecord(header, q=DNSQuestion(owner(query), query.qtype, query.qclass))
    for rr in answers:
        msg.add_answer(rr)
    for rr in authority:
        msg.add_auth(rr)
    for rr in additional:
        msg.add_ar(rr)
    if query.edns is not None:
        flags = "do" if query.edns.do else ""
        msg.add_ar(EDNS0(udp_len=wire.SERVER_UDP, flags=flags, ext_rcode=rcode >> 4))
    packed: bytes = msg.pack()
    return packed

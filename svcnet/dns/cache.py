"""The DNS answer cache: wire-level replies, dropped as the state they came from changes.

Kept apart from the listeners (transport.py) because its contract is about
the store, not the sockets: an answer is dropped inside the store's change
event that could change it, so no answer outlives what it was computed from.
"""

from __future__ import annotations

from typing import Any

Scope = tuple[str, str]


class AnswerCache:
    """Cluster answers, kept until the state they were computed from changes. Two levels:

    - by cache key (lowercased name, type, class, the flags that shape the
      reply): (wire bytes, rcode), patched per client with its id and its
      spelling of the name; used for TCP and for a new spelling. A reply that
      names the zone as spelled outside the question (SOA, NS, SRV targets:
      CoreDNS keeps the client's case there too) cannot be patched, so it is
      kept with its spelling and serves only that spelling.
    - ``exact``: the UDP hot path. Keyed by the query's bytes after the id,
      it holds the reply's bytes after the id, already fitted to the query's
      UDP size, so a hit costs one dict lookup and one concatenation. Each
      entry counts its hits (folded into the per-rcode and per-type totals
      when the entry goes).

    Invalidation is synchronous with the store's change event. A positive
    answer computed from one Service carries that Service's scope and is
    dropped when that Service or its Endpoints change; every other answer
    (negative ones, PTR, ExternalName chains) is dropped on any change. So a
    change to one Service does not make every other name miss at once.

    Both levels are bounded FIFOs.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[bytes, tuple[bytes, int, Scope | None, bytes | None]] = {}
        self.exact: dict[bytes, list[Any]] = {}
        """query[2:] -> [reply[2:], hits, rcode, qtype, scope]; never replaced, only emptied."""
        self._by_scope: dict[Scope | None, set[bytes]] = {}
        self._exact_by_scope: dict[Scope | None, set[bytes]] = {}
        self.folded: dict[tuple[int, int], int] = {}
        self.generation = 0

    def get(self, key: bytes, name: bytes) -> tuple[bytes, int] | None:
        """The reply for `key`, unless it is bound to a spelling other than `name` (the
        question's name as sent, in wire form)."""
        hit = self._entries.get(key)
        if hit is None or (hit[3] is not None and hit[3] != name):
            return None
        return hit[0], hit[1]

    def put(
        self,
        key: bytes,
        wire_: bytes,
        rcode: int,
        generation: int,
        scope: Scope | None = None,
        spelling: bytes | None = None,
    ) -> None:
        if generation != self.generation or self._size <= 0:
            return  # computed before a change: it may already be stale
        if key not in self._entries and len(self._entries) >= self._size:
            old = next(iter(self._entries))
            self._by_scope.get(self._entries.pop(old)[2], set()).discard(old)
        self._entries[key] = (wire_, rcode, scope, spelling)
        self._by_scope.setdefault(scope, set()).add(key)

    def put_exact(
        self,
        query: bytes,
        reply: bytes,
        rcode: int,
        qtype: int,
        generation: int,
        scope: Scope | None = None,
    ) -> None:
        if generation != self.generation or self._size <= 0:
            return
        key = query[2:]
        if key not in self.exact and len(self.exact) >= self._size:
            old = next(iter(self.exact))
            entry = self.exact.pop(old)
            self._fold(entry)
            self._exact_by_scope.get(entry[4], set()).discard(old)
        self.exact[key] = [reply[2:], 0, rcode, qtype, scope]
        self._exact_by_scope.setdefault(scope, set()).add(key)

    def _fold(self, entry: list[Any]) -> None:
        if entry[1]:
            k = (entry[2], entry[3])
            self.folded[k] = self.folded.get(k, 0) + entry[1]

    def exact_hits(self) -> dict[tuple[int, int], int]:
        """Hits served by the exact cache so far, by (rcode, qtype)."""
        out = dict(self.folded)
        for entry in self.exact.values():
            if entry[1]:
                k = (entry[2], entry[3])
                out[k] = out.get(k, 0) + entry[1]
        return out

    def invalidate(self, scope: Scope | None) -> None:
        """Drop what a change to `scope` (None: to anything) may have made stale."""
        self.generation += 1
        if scope is None:
            self.clear()
            return
        for s in (scope, None):
            for key in self._by_scope.pop(s, ()):
                self._entries.pop(key, None)
            for key in self._exact_by_scope.pop(s, ()):
                entry = self.exact.pop(key, None)
                if entry is not None:
                    self._fold(entry)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_scope.clear()
        for entry in self.exact.values():
            self._fold(entry)
        self.exact.clear()
        self._exact_by_scope.clear()

    def __len__(self) -> int:
        return len(self._entries)

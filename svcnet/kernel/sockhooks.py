"""Socket-level networking for pods that share the host network namespace.

Cgroup ``sock_addr`` programs rewrite the address a socket call names, the
way Cilium's socket load balancer (bpf/bpf_sock.c) does, so that each pod
gets a network identity of its own on loopback addresses and Services are
balanced at ``connect``/``sendmsg`` with no proxy in the data path:

- a pod's ``bind`` to the wildcard lands on its pod IP and a ``bind`` to
  localhost on its private loopback address, so any number of pods can bind
  the same port;
- a pod's ``connect``/``sendmsg`` to localhost reaches its own pod (whichever
  of its two addresses has the listener), and its outgoing sockets take the
  pod IP as source address, so servers see the pod as the client;
- a connection to a Service frontend (ClusterIP, LoadBalancer IP, or NodePort
  on a node address such as 127.0.0.1) goes straight to a ready backend,
  round-robin or by ClientIP affinity; ``getpeername`` and ``recvfrom`` then
  show the frontend, as they would through kube-proxy.

Which processes are pods is told by cgroup: the ``pods`` map is keyed by the
v2 cgroup id (``bpf_get_current_cgroup_id()``, the inode number of the cgroup
directory) of each cgroup whose processes belong to a pod. Processes in any
other cgroup are "the host": their sockets only get Service translation, and
only for frontends in this instance's map. The same programs serve both; the
caller chooses the reach by where it attaches them (the cgroup holding the
pods, or the root of the v2 hierarchy to cover host processes too). Several
instances (daemons with different ranges) can be attached at once, at the
same cgroups: cgroup links run every attached program in turn, and each
instance only acts on cgroups and addresses in its own maps.

Maps (integers little-endian as the CPU; addresses and ports in network
byte order, as the hook context holds them, so programs compare raw words):

``pods`` (hash) u64 cgroup id -> {be32 pod_ip, be32 loopback_ip, u32 flags,
    u32 pad}; flag ``POD_PRIVILEGED_PORTS``: binds below 1024 need no
    CAP_NET_BIND_SERVICE.
``loopbacks`` (hash) be32 loopback_ip -> u32 (1): every pod's private
    loopback address, so that other pods and the host get EPERM there.
``services`` (hash) {be32 ip, be16 port, u8 protocol (6 TCP, 17 UDP), u8 pad}
    -> {u32 count, u32 rr, u32 rev, u32 service_id, u32 flags, u32 pad,
    u64 affinity_ns}. ``count`` ready backends, stored under ``rev`` in
    ``backends``; ``rr`` is the round-robin counter the programs increment
    atomically; ``service_id`` is stable for the frontend (the affinity
    key); flag ``SVC_AFFINITY`` turns ClientIP affinity on, with
    ``affinity_ns`` as its timeout.
``backends`` (hash) {u32 rev, u32 index} -> {be32 ip, be16 port, u16 pad}.
``members`` (hash) {u32 rev, be32 ip, be16 port, u16 pad} -> u32 (1): the
    same sets, by address: is a remembered backend still in the current set?
``affinity`` (LRU) {u32 service_id, be32 client_ip} -> {be32 ip, be16 port,
    u16 pad, u32 rev, u32 pad, u64 last_used_ns}.
``sessions`` (LRU) {u64 socket cookie, be32 frontend ip, be16 port, u16 pad}
    -> the ``affinity`` value: the backend an unconnected UDP socket's
    datagrams to that frontend go to.
``revnat`` (LRU) {u64 socket cookie, be32 ip, be16 port, u16 pad} ->
    {be32 ip, be16 port, u8 flags, u8 pad}: for a socket and the address it
    was sent to, the address its user named (flag ``RN_V6_LOOPBACK``: that
    was ``::1``).
``isolated`` (hash) be32 pod_ip -> u32 flags: flag ``ISOLATED_INGRESS``: the pod
    is selected by an ingress NetworkPolicy and admits only what ``allow`` holds.
``allow`` (LPM trie) {u32 prefixlen, be32 dst pod_ip, u8 protocol, u8 port
    bits, be16 port, be32 src} -> u32 (1), prefixlen = 64 + the source CIDR's
    length: the sources an isolated pod admits on a port block (the first
    ``port bits`` bits of ``port``: 16 for one port, 0 for all), so a CIDR
    (ipBlock) or a pod's /32 is one entry, and an endPort range a handful.
``exempt`` (hash) u32 tgid -> u32 (1): processes no policy holds back (the
    daemon, whose probes play the kubelet's).
``flows`` (LRU) {be32 sender, be32 receiver} -> u32 (1): an isolated pod sent
    UDP to ``sender``, which may therefore answer it.

A backend set is replaced without a torn state: the new set is written under
a new ``rev``, then the service entry is replaced by one map update (a hash
map swaps whole values: a program sees the old entry or the new one), then
the old set is deleted. A program that read the old entry just before the
swap may find its backend slot gone; it then leaves the address alone, as
when there are no backends.

Decisions:

- A TCP connect() takes the round-robin's backend only if a socket would
  take the connection there (``bpf_sk_lookup_tcp``: a listener on it or on
  its port's wildcard); otherwise the next one, up to ``LIVE_TRIES``. A pod
  that crashed is still in the set until the agent has seen its exit; new
  connections go past it meanwhile, as the userspace proxy's do after a
  refused connect().
- No ready backends (or that rare race): the destination is left alone, so
  the userspace proxy listening on the frontend answers as it would without
  hooks (refuses, or holds the connection until an endpoint appears).
- Localhost in a pod: ``bind`` to 127.0.0.1 (or ``::1``) is rewritten to the
  pod's loopback address, ``bind`` to the wildcard to the pod IP. A
  ``connect`` or ``sendmsg`` to 127.0.0.1:port asks the kernel's socket
  tables (``bpf_sk_lookup_tcp/udp``) whether the pod's loopback address, then
  its pod IP, has a socket bound on that port, and goes there; nothing is
  recorded at bind time, so there is nothing to go stale. Such connections
  keep the source address the kernel picks, 127.0.0.1, so servers see a
  loopback peer as in a pod. A pod's loopback address is refused (EPERM) to
  every other pod and to the host. With no socket of the pod's own on that
  port, 127.0.0.1 is what svcnet makes it besides: the node's address
  (``status.hostIP``, NodePorts, the host's DNS), so a Service frontend at
  127.0.0.1:port (a NodePort) is used, else the host's 127.0.0.1, reached
  from the pod IP. That is also what keeps a pod UDP server's ``sendto``
  reply to a host client on 127.0.0.1 going to that client.
- IPV6_V6ONLY sockets: a dual-stack ``::`` is bound to ``::ffff:<pod IP>``
  and ``::1`` to ``::ffff:<loopback>``; a v6-only socket cannot take an
  IPv4-mapped address and pods have no IPv6 address, so its ``bind`` and its
  ``connect`` to ``::1`` are left alone (it is the host's ``::``: a second pod
  binding the same port gets EADDRINUSE, as on one host). The bit is read
  through the socket's BTF (``bpf_skc_to_tcp6_sock``/``udp6_sock``) at the
  offset of ``sock_common.skc_ipv6only`` in the running kernel, as
  ``bpf_getsockopt`` does not offer IPV6_V6ONLY; without kernel BTF every
  socket is taken as dual-stack.
- Privileged ports: a pod's bind returns the verdict that waives
  CAP_NET_BIND_SERVICE (kernel 5.12+, the ``bind`` return value 3), as a
  container may bind port 80; off per pod with ``privileged_ports=False``.
- UDP ``sendmsg`` on IPv6 sockets: the kernel hands datagrams to v4-mapped
  addresses to the IPv4 hook, and refuses a ``sendmsg6`` rewrite to a
  v4-mapped address (ENOTSUPP), so no ``sendmsg6`` program is attached: a
  pod's unconnected UDP to ``::1`` stays the host's ``::1``.
- Unconnected UDP: each socket keeps one backend per frontend (``sessions``)
  while that backend stays in the set, as the userspace relay keeps a
  client's session; otherwise round-robin would pick one per datagram.
- Host clients are keyed for affinity by their socket's bound address, 0
  when unbound: all such host processes share one affinity entry.
- MPTCP sockets (Go listens with them by default since 1.24) get the bind and
  connect rewrites, as the kernel runs those hooks on their TCP subflow;
  ``getpeername`` on one shows the backend, the cookie being the subflow's.
- The programs are idempotent: attached both at a pods' cgroup and at the
  root, the second run finds nothing left to rewrite.
- Ingress NetworkPolicy is judged at the client, once the destination is
  final (a pod IP named directly, or the backend a Service frontend was
  translated to): an isolated destination admits a connection (TCP) or
  datagram (UDP) only if ``allow`` holds its source for that protocol and
  port, and the hook otherwise returns 0, so connect()/sendto() fail at once
  with EPERM. Calico and Cilium drop the packets instead (the client times
  out); refusing shows a developer the denial when it happens. The backend a
  Service chose is judged as chosen: a denied one is refused, never swapped
  for another, as kube-proxy would send it there and the CNI drop it. The
  source is the pod IP for a pod; for a host process its socket's bound
  address, else 127.0.0.1, which the kernel picks for loopback destinations
  (only seen where the hooks are attached at the root). A pod reaches itself
  whatever its policies say; localhost in a pod never leaves it. UDP replies
  to an isolated pod pass when it sent to the replier first (``flows``),
  as conntrack passes them on a cluster; TCP needs nothing, since accepting
  a connection runs no hook.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from svcnet.kernel import bpf
from svcnet.kernel.asm import (
    DW,
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
    Asm,
    B,
    H,
    Helper,
    Reg,
    W,
)
from svcnet.kernel.bpf import AttachType, MapType

__all__ = ["PolicyAllow", "Protocol", "SocketHooks", "cgroup_id", "probe"]

Protocol = Literal["TCP", "UDP"]
PolicyAllow = tuple[str, Protocol, int, int]
"""What an isolated pod lets in: (source CIDR, protocol, first port, last port)."""
_PROTO_NUMBERS: dict[str, int] = {"TCP": 6, "UDP": 17}

POD_PRIVILEGED_PORTS = 1
ISOLATED_INGRESS = 1
LIVE_TRIES = 4
"""Backends a TCP connect() looks at, from the round-robin's choice on, for one
with a socket to take it; the last one looked at is used if none has."""
SVC_AFFINITY = 1
RN_V6_LOOPBACK = 1

# -- context and kernel struct offsets (include/uapi/linux/bpf.h) -------------

_CTX_USER_IP4 = 4
_CTX_USER_IP6 = 8
_CTX_USER_PORT = 24
_CTX_PROTOCOL = 36
_CTX_MSG_SRC_IP4 = 40
_CTX_SK = 64
_SK_SRC_IP4 = 24  # struct bpf_sock
_AF_INET, _AF_INET6 = 2, 10
_IPPROTO_TCP, _IPPROTO_UDP = 6, 17

# Addresses as the programs see them: network byte order read as a
# little-endian u32 (so 127.0.0.1 is 0x0100007f, and the first octet is the
# low byte).
_LOCALHOST = 0x0100007F
_V6_LOOPBACK_WORD3 = 0x01000000  # ::1, last word
_V4_MAPPED_WORD2 = 0xFFFF0000  # ::ffff:0:0/96, third word

# -- map value offsets --------------------------------------------------------

_POD_IP, _POD_LO, _POD_FLAGS = 0, 4, 8
_SVC_COUNT, _SVC_RR, _SVC_REV, _SVC_ID, _SVC_FLAGS, _SVC_TIMEOUT = 0, 4, 8, 12, 16, 24
_BE_IP, _BE_PORT = 0, 4
_AFF_IP, _AFF_PORT, _AFF_REV, _AFF_LAST = 0, 4, 8, 16

# -- stack slots (offsets from the frame pointer R10) -------------------------

_CG_KEY = -8  # u64
_SVC_KEY = -16  # 8 bytes
_BE_KEY = -24  # 8 bytes
_RN_KEY = -40  # 16 bytes
_RN_VAL = -48  # 8 bytes
_AFF_KEY = -56  # 8 bytes
_AFF_VAL = -80  # 24 bytes
_MEM_KEY = -96  # 12 bytes
_SOCKADDR = -128  # 28 bytes
_TUPLE = -144  # 12 bytes
_CHOSEN = -152  # be32 ip, be16 port
_SVC_PTR = -160  # spilled pointer
_AFF_PTR = -168  # spilled pointer
_SCRATCH = -176  # 8 bytes
_V6LO_FLAG = -184  # u64: 1 when the destination was spelt ::1
_SESS_KEY = -200  # 16 bytes
_TRY = -208  # u64: the backend index being tried
_POL_KEY = -232  # 16 bytes: an ``allow`` key
_POL_SRC = -240  # u64: the source address the policy check goes by
_FLOW_KEY = -248  # 8 bytes: a ``flows`` key

# Registers kept across helper calls (R6-R9 survive them).
_CTX, _DST_IP, _DST_PORT, _POD = R6, R7, R8, R9


@dataclass(frozen=True, slots=True)
class _V6Only:
    """Where a socket's IPV6_V6ONLY bit is, from the start of its struct sock."""

    byte: int
    mask: int


# -- building blocks of the programs ------------------------------------------


def _require_tcp_or_udp(a: Asm) -> None:
    # Raw, ICMP and SCTP sockets are none of our business.
    a.ldx(W, R1, _CTX, _CTX_PROTOCOL)
    a.jeq(R1, _IPPROTO_TCP, "proto_ok")
    a.jeq(R1, _IPPROTO_UDP, "proto_ok")
    a.ret(1)
    a.label("proto_ok")


def _lookup_pod(a: Asm) -> None:
    """_POD = this process's pods entry, or 0 when it is a host process."""
    a.call(Helper.get_current_cgroup_id)
    a.stx(DW, R10, _CG_KEY, R0)
    a.ld_map(R1, "pods")
    a.mov(R2, R10)
    a.add(R2, _CG_KEY)
    a.call(Helper.map_lookup_elem)
    a.mov(_POD, R0)


def _jump_if_v6only(a: Asm, p: str, v6only: _V6Only | None, target: str) -> None:
    """Jump to ``target`` when the context's socket is IPv6-only."""
    if v6only is None:
        return
    # Only TCP and UDP sockets get here; each has its own BTF cast.
    a.ldx(DW, R1, _CTX, _CTX_SK)
    a.call(Helper.skc_to_tcp6_sock)
    a.jne(R0, 0, p + "v6sock")
    a.ldx(DW, R1, _CTX, _CTX_SK)
    a.call(Helper.skc_to_udp6_sock)
    a.jeq(R0, 0, p + "dual")
    a.label(p + "v6sock")
    a.ldx(B, R1, R0, v6only.byte)
    a.jset(R1, v6only.mask, target)
    a.label(p + "dual")


def _load_v6_destination(
    a: Asm, *, mapped: str, loopback: str | None, any_: str | None, other: str
) -> None:
    """Classify the context's IPv6 address; _DST_IP = its IPv4 form where it has one.

    v4-mapped -> ``mapped`` (_DST_IP = the IPv4 address); ``::1`` ->
    ``loopback`` (_DST_IP = 127.0.0.1); ``::`` -> ``any_`` (_DST_IP = 0);
    anything else, or a form whose label is None -> ``other``.
    """
    a.ldx(W, R1, _CTX, _CTX_USER_IP6)
    a.jne(R1, 0, other)
    a.ldx(W, R1, _CTX, _CTX_USER_IP6 + 4)
    a.jne(R1, 0, other)
    a.ldx(W, _DST_IP, _CTX, _CTX_USER_IP6 + 12)
    a.ldx(W, R1, _CTX, _CTX_USER_IP6 + 8)
    a.jeq(R1, _V4_MAPPED_WORD2, mapped, w32=True)
    a.jne(R1, 0, other)
    if loopback is not None:
        a.jeq(_DST_IP, _V6_LOOPBACK_WORD3, loopback + "_pre", w32=True)
    if any_ is not None:
        a.jeq(_DST_IP, 0, any_)
    a.ja(other)
    if loopback is not None:
        a.label(loopback + "_pre")
        a.mov(_DST_IP, _LOCALHOST)
        a.ja(loopback)


def _write_destination(a: Asm, v6: bool) -> None:
    """Store _DST_IP (and _DST_PORT) into the context; IPv6 as v4-mapped."""
    if v6:
        a.mov(R1, 0)
        a.stx(W, _CTX, _CTX_USER_IP6, R1)
        a.stx(W, _CTX, _CTX_USER_IP6 + 4, R1)
        a.mov(R1, _V4_MAPPED_WORD2, w32=True)
        a.stx(W, _CTX, _CTX_USER_IP6 + 8, R1)
        a.stx(W, _CTX, _CTX_USER_IP6 + 12, _DST_IP)
    else:
        a.stx(W, _CTX, _CTX_USER_IP4, _DST_IP)
    a.stx(W, _CTX, _CTX_USER_PORT, _DST_PORT)


def _record_revnat(a: Asm, p: str) -> None:
    """revnat[(cookie, _DST_IP, _DST_PORT)] = the value built at _RN_VAL.

    Unless it is there already: every datagram of a UDP socket comes here,
    and an LRU update is not free.
    """
    a.mov(R1, _CTX)
    a.call(Helper.get_socket_cookie)
    a.stx(DW, R10, _RN_KEY, R0)
    a.stx(W, R10, _RN_KEY + 8, _DST_IP)
    a.stx(H, R10, _RN_KEY + 12, _DST_PORT)
    a.st(H, R10, _RN_KEY + 14, 0)
    a.ld_map(R1, "revnat")
    a.mov(R2, R10)
    a.add(R2, _RN_KEY)
    a.call(Helper.map_lookup_elem)
    a.jeq(R0, 0, p + "store")
    a.ldx(DW, R1, R0, 0)
    a.ldx(DW, R2, R10, _RN_VAL)
    a.jeq(R1, R2, p + "stored")
    a.label(p + "store")
    a.ld_map(R1, "revnat")
    a.mov(R2, R10)
    a.add(R2, _RN_KEY)
    a.mov(R3, R10)
    a.add(R3, _RN_VAL)
    a.mov(R4, bpf.BPF_ANY)
    a.call(Helper.map_update_elem)
    a.label(p + "stored")


def _loopback_guard(a: Asm, p: str) -> None:
    """Refuse (EPERM) a pod's private loopback address to anyone but that pod."""
    a.stx(W, R10, _SCRATCH, _DST_IP)
    a.ld_map(R1, "loopbacks")
    a.mov(R2, R10)
    a.add(R2, _SCRATCH)
    a.call(Helper.map_lookup_elem)
    a.jeq(R0, 0, p + "open")
    a.jeq(_POD, 0, p + "deny")
    a.ldx(W, R1, _POD, _POD_LO)
    a.jeq(R1, _DST_IP, p + "open")
    a.label(p + "deny")
    a.ret(0)
    a.label(p + "open")


def _sk_lookup(a: Asm, helper: Helper) -> None:
    """R0 = helper(ctx, the ipv4 tuple at _TUPLE, this netns): a socket the
    kernel would give a packet to (to be released), or NULL."""
    a.mov(R1, _CTX)
    a.mov(R2, R10)
    a.add(R2, _TUPLE)
    a.mov(R3, 12)  # sizeof(tuple.ipv4)
    a.mov(R4, -1)  # BPF_F_CURRENT_NETNS
    a.mov(R5, 0)
    a.call(helper)


def _local_listener(a: Asm, p: str, addr: int, *, udp: bool | None, found: str) -> None:
    """Jump to ``found`` with _DST_IP = the pod's address at ``addr`` when a socket
    of this protocol is bound to exactly that address and _DST_PORT.

    A wildcard socket (a host server on 0.0.0.0) also answers the lookup; its
    bound address tells it apart.
    """
    # struct bpf_sock_tuple.ipv4: no source, so only listeners/bound sockets match.
    a.ldx(W, R1, _POD, addr)
    a.st(W, R10, _TUPLE, 0)
    a.stx(W, R10, _TUPLE + 4, R1)
    a.st(H, R10, _TUPLE + 8, 0)
    a.stx(H, R10, _TUPLE + 10, _DST_PORT)
    if udp is None:
        a.ldx(W, R1, _CTX, _CTX_PROTOCOL)
        a.jeq(R1, _IPPROTO_UDP, p + "udp")
        _sk_lookup(a, Helper.sk_lookup_tcp)
        a.ja(p + "looked")
        a.label(p + "udp")
        _sk_lookup(a, Helper.sk_lookup_udp)
        a.label(p + "looked")
    else:
        _sk_lookup(a, Helper.sk_lookup_udp if udp else Helper.sk_lookup_tcp)
    a.jeq(R0, 0, p + "none")
    a.ldx(W, R1, R0, _SK_SRC_IP4)
    a.stx(DW, R10, _SCRATCH, R1)
    a.mov(R1, R0)
    a.call(Helper.sk_release)
    a.ldx(DW, R1, R10, _SCRATCH)
    a.ldx(W, R2, _POD, addr)
    a.jne(R1, R2, p + "none")
    a.mov(_DST_IP, R2)
    a.ja(found)
    a.label(p + "none")


def _candidate(a: Asm, p: str, *, same_set: str, still_member: str, stale: str) -> None:
    """Check a remembered backend (R1 points at {be32 ip, be16 port, u16, u32 rev}).

    _CHOSEN = its address. It is good while its backend set is the service's
    current one (-> ``same_set``), or, the set having been replaced since, if
    it is in the new one too (-> ``still_member``); else -> ``stale``.
    """
    a.ldx(W, R2, R1, _AFF_IP)
    a.stx(W, R10, _CHOSEN, R2)
    a.ldx(H, R3, R1, _AFF_PORT)
    a.stx(H, R10, _CHOSEN + 4, R3)
    a.ldx(W, R5, R1, _AFF_REV)
    a.ldx(DW, R4, R10, _SVC_PTR)
    a.ldx(W, R0, R4, _SVC_REV)
    a.jeq(R5, R0, same_set)
    a.stx(W, R10, _MEM_KEY, R0)
    a.stx(W, R10, _MEM_KEY + 4, R2)
    a.stx(H, R10, _MEM_KEY + 8, R3)
    a.st(H, R10, _MEM_KEY + 10, 0)
    a.ld_map(R1, "members")
    a.mov(R2, R10)
    a.add(R2, _MEM_KEY)
    a.call(Helper.map_lookup_elem)
    a.jne(R0, 0, still_member)
    a.ja(stale)


def _backend_at(a: Asm, p: str, untouched: str) -> None:
    """_CHOSEN = backends[the service's rev, index _TRY]."""
    a.ldx(DW, R2, R10, _TRY)
    a.stx(W, R10, _BE_KEY + 4, R2)
    a.ldx(DW, R1, R10, _SVC_PTR)
    a.ldx(W, R3, R1, _SVC_REV)
    a.stx(W, R10, _BE_KEY, R3)
    a.ld_map(R1, "backends")
    a.mov(R2, R10)
    a.add(R2, _BE_KEY)
    a.call(Helper.map_lookup_elem)
    # The set was replaced and freed between our two lookups: act as if empty.
    a.jeq(R0, 0, untouched)
    a.ldx(W, R1, R0, _BE_IP)
    a.stx(W, R10, _CHOSEN, R1)
    a.ldx(H, R1, R0, _BE_PORT)
    a.stx(H, R10, _CHOSEN + 4, R1)


def _listening(a: Asm, p: str, *, found: str) -> None:
    """Jump to ``found`` when a TCP socket would take a connection to _CHOSEN
    (a listener on it, or on the wildcard address of its port)."""
    a.st(W, R10, _TUPLE, 0)
    a.ldx(W, R1, R10, _CHOSEN)
    a.stx(W, R10, _TUPLE + 4, R1)
    a.st(H, R10, _TUPLE + 8, 0)
    a.ldx(H, R1, R10, _CHOSEN + 4)
    a.stx(H, R10, _TUPLE + 10, R1)
    _sk_lookup(a, Helper.sk_lookup_tcp)
    a.jeq(R0, 0, p + "none")
    a.mov(R1, R0)
    a.call(Helper.sk_release)
    a.ja(found)
    a.label(p + "none")


def _remember(a: Asm, map_name: str, key: int) -> None:
    """map_name[key] = {_CHOSEN, the current rev, 0, now}: a backend to come back to."""
    a.ldx(DW, R1, R10, _SVC_PTR)
    a.ldx(W, R2, R1, _SVC_REV)
    a.stx(W, R10, _AFF_VAL + _AFF_REV, R2)
    a.st(W, R10, _AFF_VAL + 12, 0)
    a.ldx(W, R2, R10, _CHOSEN)
    a.stx(W, R10, _AFF_VAL + _AFF_IP, R2)
    a.ldx(H, R2, R10, _CHOSEN + 4)
    a.stx(H, R10, _AFF_VAL + _AFF_PORT, R2)
    a.st(H, R10, _AFF_VAL + 6, 0)
    a.call(Helper.ktime_get_ns)
    a.stx(DW, R10, _AFF_VAL + _AFF_LAST, R0)
    a.ld_map(R1, map_name)
    a.mov(R2, R10)
    a.add(R2, key)
    a.mov(R3, R10)
    a.add(R3, _AFF_VAL)
    a.mov(R4, bpf.BPF_ANY)
    a.call(Helper.map_update_elem)


def _service(a: Asm, p: str, *, v6: bool, sessions: bool, translated: str, untouched: str) -> None:
    """Service translation of (_DST_IP, _DST_PORT) for the socket's protocol.

    On a hit with a ready backend: rewrites the context, _DST_IP/_DST_PORT,
    records reverse NAT, jumps to ``translated``. Otherwise jumps to
    ``untouched`` with nothing changed. ``sessions``: keep each socket on one
    backend per frontend (unconnected UDP, where every datagram comes here).
    """
    a.stx(W, R10, _SVC_KEY, _DST_IP)
    a.stx(H, R10, _SVC_KEY + 4, _DST_PORT)
    a.ldx(W, R1, _CTX, _CTX_PROTOCOL)
    a.stx(B, R10, _SVC_KEY + 6, R1)
    a.st(B, R10, _SVC_KEY + 7, 0)
    a.ld_map(R1, "services")
    a.mov(R2, R10)
    a.add(R2, _SVC_KEY)
    a.call(Helper.map_lookup_elem)
    a.jeq(R0, 0, untouched)
    # No ready backend: the userspace proxy on the frontend answers, as without hooks.
    a.ldx(W, R1, R0, _SVC_COUNT)
    a.jeq(R1, 0, untouched)
    a.stx(DW, R10, _SVC_PTR, R0)

    if sessions:
        # A UDP socket keeps its backend, as the userspace relay keeps a
        # client's session: a datagram exchange (QUIC, say) stays with one
        # server. The socket cookie tells sockets apart for their lifetime.
        a.mov(R1, _CTX)
        a.call(Helper.get_socket_cookie)
        a.stx(DW, R10, _SESS_KEY, R0)
        a.stx(W, R10, _SESS_KEY + 8, _DST_IP)
        a.stx(H, R10, _SESS_KEY + 12, _DST_PORT)
        a.st(H, R10, _SESS_KEY + 14, 0)
        a.ld_map(R1, "sessions")
        a.mov(R2, R10)
        a.add(R2, _SESS_KEY)
        a.call(Helper.map_lookup_elem)
        a.jeq(R0, 0, p + "no_session")
        a.mov(R1, R0)
        _candidate(
            a, p + "sess_", same_set=p + "kept", still_member=p + "chosen", stale=p + "no_session"
        )
        a.label(p + "no_session")

    a.ldx(DW, R1, R10, _SVC_PTR)
    a.ldx(W, R2, R1, _SVC_FLAGS)
    a.jset(R2, SVC_AFFINITY, p + "affinity")
    a.ja(p + "round_robin")

    # ClientIP affinity: the client is the pod (its IP) or the host socket's
    # bound address; its backend is kept while fresh and still ready.
    a.label(p + "affinity")
    a.jeq(_POD, 0, p + "host_client")
    a.ldx(W, R2, _POD, _POD_IP)
    a.ja(p + "client")
    a.label(p + "host_client")
    a.ldx(DW, R2, _CTX, _CTX_SK)
    a.ldx(W, R2, R2, _SK_SRC_IP4)
    a.label(p + "client")
    a.stx(W, R10, _AFF_KEY + 4, R2)
    a.ldx(W, R2, R1, _SVC_ID)
    a.stx(W, R10, _AFF_KEY, R2)
    a.ld_map(R1, "affinity")
    a.mov(R2, R10)
    a.add(R2, _AFF_KEY)
    a.call(Helper.map_lookup_elem)
    a.jeq(R0, 0, p + "round_robin")
    a.stx(DW, R10, _AFF_PTR, R0)
    a.call(Helper.ktime_get_ns)
    a.ldx(DW, R1, R10, _AFF_PTR)
    a.ldx(DW, R2, R1, _AFF_LAST)
    a.mov(R3, R0)
    a.sub(R3, R2)
    a.ldx(DW, R4, R10, _SVC_PTR)
    a.ldx(DW, R5, R4, _SVC_TIMEOUT)
    a.jgt(R3, R5, p + "round_robin")
    _candidate(
        a, p + "aff_", same_set=p + "chosen", still_member=p + "chosen", stale=p + "round_robin"
    )

    # Round-robin: the counter lives in the service entry, shared by every
    # CPU, hence the atomic fetch-add.
    a.label(p + "round_robin")
    a.ldx(DW, R1, R10, _SVC_PTR)
    a.mov(R2, 1)
    a.atomic_fetch_add(W, R1, _SVC_RR, R2)
    a.ldx(W, R3, R1, _SVC_COUNT)
    a.jeq(R3, 0, untouched)
    a.mod(R2, R3, w32=True)
    a.stx(DW, R10, _TRY, R2)
    for i in range(LIVE_TRIES):
        _backend_at(a, p + f"try{i}_", untouched)
        if i == LIVE_TRIES - 1:
            break
        # A TCP backend with no socket to take the connection (a crashed
        # pod, before the agent has taken it out of the set) is skipped for
        # the next one, as the userspace proxy moves on after a refused
        # connect(); the kernel cannot try again once it has chosen.
        a.ldx(W, R1, _CTX, _CTX_PROTOCOL)
        a.jne(R1, _IPPROTO_TCP, p + "chosen")
        a.ldx(DW, R1, R10, _SVC_PTR)
        a.ldx(W, R3, R1, _SVC_COUNT)
        a.jle(R3, i + 1, p + "chosen")  # every backend of the set was looked at
        _listening(a, p + f"live{i}_", found=p + "chosen")
        a.ldx(DW, R1, R10, _SVC_PTR)
        a.ldx(W, R3, R1, _SVC_COUNT)
        a.jeq(R3, 0, untouched)
        a.ldx(DW, R2, R10, _TRY)
        a.add(R2, 1)
        a.mod(R2, R3, w32=True)
        a.stx(DW, R10, _TRY, R2)

    a.label(p + "chosen")
    if sessions:
        _remember(a, "sessions", _SESS_KEY)
        a.label(p + "kept")
    a.ldx(DW, R1, R10, _SVC_PTR)
    a.ldx(W, R2, R1, _SVC_FLAGS)
    a.jset(R2, SVC_AFFINITY, p + "remember")
    a.ja(p + "rewrite")
    a.label(p + "remember")
    # Refreshed on every use: the timeout counts from the last connection.
    _remember(a, "affinity", _AFF_KEY)

    a.label(p + "rewrite")
    # What the socket's user named, for getpeername and recvfrom to show.
    a.stx(W, R10, _RN_VAL, _DST_IP)
    a.stx(H, R10, _RN_VAL + 4, _DST_PORT)
    a.st(H, R10, _RN_VAL + 6, 0)
    a.ldx(W, _DST_IP, R10, _CHOSEN)
    a.ldx(H, _DST_PORT, R10, _CHOSEN + 4)
    _write_destination(a, v6)
    _record_revnat(a, p + "rn_")
    a.ja(translated)


# -- NetworkPolicy ------------------------------------------------------------


def _port_mask(bits: int) -> int:
    """The first ``bits`` bits of a port, as a mask of the port register
    (network byte order read little-endian)."""
    host = ((1 << bits) - 1) << (16 - bits)
    return ((host & 0xFF) << 8) | (host >> 8)


def _lookup_word(a: Asm, map_name: str, reg: Reg) -> None:
    """R0 = map_name[the u32 in ``reg``] (a pointer, or NULL)."""
    a.stx(W, R10, _SCRATCH, reg)
    a.ld_map(R1, map_name)
    a.mov(R2, R10)
    a.add(R2, _SCRATCH)
    a.call(Helper.map_lookup_elem)


def _flow(a: Asm, sender: Reg, receiver: Reg) -> None:
    """The ``flows`` key {sender, receiver} at _FLOW_KEY: "sender may send UDP to receiver"."""
    a.stx(W, R10, _FLOW_KEY, sender)
    a.stx(W, R10, _FLOW_KEY + 4, receiver)


def _policy(a: Asm, p: str, *, allowed: str) -> None:
    """Ingress NetworkPolicy at the client: refuse (return 0, EPERM) a connection or
    datagram to (_DST_IP, _DST_PORT) that the destination pod's policies do not allow.

    The source is the pod IP for a pod, else the host socket's bound address, or
    127.0.0.1, the address the kernel gives a loopback connection. svcnet's own
    process (``exempt``: the kubelet's probes) is let through, as Cilium lets the
    node's identity reach its pods.
    """
    a.jeq(_POD, 0, p + "host")
    a.ldx(W, R1, _POD, _POD_IP)
    a.stx(DW, R10, _POL_SRC, R1)
    # UDP has no connection for a reply to belong to: an isolated pod that sends
    # a datagram lets the receiver answer (a DNS server, the far end of a UDP
    # exchange), as conntrack lets a reply through on a cluster.
    a.ldx(W, R1, _CTX, _CTX_PROTOCOL)
    a.jne(R1, _IPPROTO_UDP, p + "check")
    a.ldx(DW, R1, R10, _POL_SRC)
    _lookup_word(a, "isolated", R1)
    a.jeq(R0, 0, p + "check")
    a.ldx(DW, R1, R10, _POL_SRC)
    _flow(a, _DST_IP, R1)
    a.ld_map(R1, "flows")
    a.mov(R2, R10)
    a.add(R2, _FLOW_KEY)
    a.call(Helper.map_lookup_elem)
    a.jne(R0, 0, p + "check")
    a.st(W, R10, _SCRATCH, 1)
    a.ld_map(R1, "flows")
    a.mov(R2, R10)
    a.add(R2, _FLOW_KEY)
    a.mov(R3, R10)
    a.add(R3, _SCRATCH)
    a.mov(R4, bpf.BPF_ANY)
    a.call(Helper.map_update_elem)
    a.ja(p + "check")

    a.label(p + "host")
    # Most host connections go to no isolated pod: one lookup and out.
    _lookup_word(a, "isolated", _DST_IP)
    a.jeq(R0, 0, allowed)
    a.call(Helper.get_current_pid_tgid)
    a.rsh(R0, 32)
    _lookup_word(a, "exempt", R0)
    a.jne(R0, 0, allowed)
    a.ldx(DW, R1, _CTX, _CTX_SK)
    a.ldx(W, R1, R1, _SK_SRC_IP4)
    a.jne(R1, 0, p + "host_src")
    a.mov(R1, _LOCALHOST)
    a.label(p + "host_src")
    a.stx(DW, R10, _POL_SRC, R1)

    a.label(p + "check")
    _lookup_word(a, "isolated", _DST_IP)
    a.jeq(R0, 0, allowed)
    a.ldx(W, R1, R0, 0)
    a.jset(R1, ISOLATED_INGRESS, p + "isolated")
    a.ja(allowed)
    a.label(p + "isolated")
    # A pod may always reach itself, by its own IP too.
    a.ldx(DW, R1, R10, _POL_SRC)
    a.jeq(R1, _DST_IP, allowed)
    a.ldx(W, R2, _CTX, _CTX_PROTOCOL)
    a.jne(R2, _IPPROTO_UDP, p + "rules")
    _flow(a, R1, _DST_IP)
    a.ld_map(R1, "flows")
    a.mov(R2, R10)
    a.add(R2, _FLOW_KEY)
    a.call(Helper.map_lookup_elem)
    a.jne(R0, 0, allowed)

    # allow: an LPM trie over {dst, protocol, port prefix length, port, src}; the
    # port is tried at every prefix length, longest first (16: the exact port,
    # 0: any port), and the source matches the longest CIDR written for it.
    a.label(p + "rules")
    a.st(W, R10, _POL_KEY, 96)
    a.stx(W, R10, _POL_KEY + 4, _DST_IP)
    a.ldx(W, R1, _CTX, _CTX_PROTOCOL)
    a.stx(B, R10, _POL_KEY + 8, R1)
    a.ldx(DW, R1, R10, _POL_SRC)
    a.stx(W, R10, _POL_KEY + 12, R1)
    for bits in range(16, -1, -1):
        a.st(B, R10, _POL_KEY + 9, bits)
        a.mov(R1, _DST_PORT)
        a.and_(R1, _port_mask(bits))
        a.stx(H, R10, _POL_KEY + 10, R1)
        a.ld_map(R1, "allow")
        a.mov(R2, R10)
        a.add(R2, _POL_KEY)
        a.call(Helper.map_lookup_elem)
        a.jne(R0, 0, allowed)
    # Refused at once (EPERM), where Calico and Cilium drop the packets and the
    # client times out: a developer sees the denial when it happens.
    a.ret(0)


# -- the programs -----------------------------------------------------------


def _bind_program(v6: bool, v6only: _V6Only | None) -> Asm:
    a = Asm("svcnet_bind6" if v6 else "svcnet_bind4")
    a.mov(_CTX, R1)
    _require_tcp_or_udp(a)
    _lookup_pod(a)
    a.jne(_POD, 0, "pod")
    a.ret(1)
    a.label("pod")
    if v6:
        _load_v6_destination(
            a, mapped="v4", loopback="v6_localhost", any_="v6_any", other="verdict"
        )
        # Pods have no IPv6 address: a v6-only socket cannot be given one.
        a.label("v6_any")
        _jump_if_v6only(a, "any_", v6only, "verdict")
        a.ja("wildcard")
        a.label("v6_localhost")
        _jump_if_v6only(a, "lo_", v6only, "verdict")
        a.ja("localhost")
    else:
        a.ldx(W, _DST_IP, _CTX, _CTX_USER_IP4)
    a.label("v4")
    a.jeq(_DST_IP, 0, "wildcard")
    a.jeq(_DST_IP, _LOCALHOST, "localhost")
    _loopback_guard(a, "guard_")
    a.ja("verdict")
    a.label("wildcard")
    a.ldx(W, _DST_IP, _POD, _POD_IP)
    a.ja("write")
    a.label("localhost")
    a.ldx(W, _DST_IP, _POD, _POD_LO)
    a.label("write")
    # The port stays the caller's; _write_destination stores it back unchanged.
    a.ldx(W, _DST_PORT, _CTX, _CTX_USER_PORT)
    _write_destination(a, v6)
    a.label("verdict")
    # Bit 1 of a bind verdict waives CAP_NET_BIND_SERVICE for this bind.
    a.ldx(W, R1, _POD, _POD_FLAGS)
    a.jset(R1, POD_PRIVILEGED_PORTS, "privileged")
    a.ret(1)
    a.label("privileged")
    a.ret(3)
    return a


def _forward_program(kind: Literal["connect", "sendmsg"], v6: bool, v6only: _V6Only | None) -> Asm:
    """connect4/connect6/sendmsg4: localhost, loopback isolation, Services, source."""
    a = Asm(f"svcnet_{kind}{6 if v6 else 4}")
    a.mov(_CTX, R1)
    _require_tcp_or_udp(a)
    a.ldx(W, _DST_PORT, _CTX, _CTX_USER_PORT)
    a.st(DW, R10, _V6LO_FLAG, 0)
    if v6:
        _load_v6_destination(a, mapped="v4", loopback="v6_localhost", any_=None, other="leave")
        a.label("leave")
        a.ret(1)
        # ::1 is the pod's too, but a v6-only socket cannot be sent to a
        # v4-mapped address: leave it; host processes' ::1 is never touched.
        a.label("v6_localhost")
        _lookup_pod(a)
        a.jeq(_POD, 0, "leave")
        _jump_if_v6only(a, "lo_", v6only, "leave")
        a.st(DW, R10, _V6LO_FLAG, 1)
        a.ja("pod_localhost")
        a.label("v4")
    else:
        a.ldx(W, _DST_IP, _CTX, _CTX_USER_IP4)
    _lookup_pod(a)
    a.jeq(_POD, 0, "guard")
    a.jne(_DST_IP, _LOCALHOST, "guard")

    # A pod's localhost: its own loopback address if something is bound
    # there, else its pod IP if so. Failing both, 127.0.0.1 is the node's
    # address (svcnet's hostIP): a NodePort there, or the host itself; a
    # pod UDP server's reply to a host client on 127.0.0.1 must get there.
    a.label("pod_localhost")
    udp = True if kind == "sendmsg" else None
    _local_listener(a, "lo_", _POD_LO, udp=udp, found="local")
    _local_listener(a, "ip_", _POD_IP, udp=udp, found="local")
    a.ja("service")

    a.label("guard")
    _loopback_guard(a, "guard_")
    a.label("service")
    _service(
        a,
        "svc_",
        v6=v6,
        sessions=kind == "sendmsg",
        translated="source",
        untouched="untouched",
    )

    a.label("untouched")
    if v6:
        # ::1 that is not the pod's stays the host's, and IPv6: no IPv4 source.
        a.ldx(DW, R1, R10, _V6LO_FLAG)
        a.jne(R1, 0, "done")
    a.ja("source")

    # Localhost stays in the pod; the source stays the 127.0.0.1 the kernel
    # picks, so the server sees a loopback peer as it would in a pod.
    a.label("local")
    a.mov(R1, _LOCALHOST)
    a.stx(W, R10, _RN_VAL, R1)
    a.stx(H, R10, _RN_VAL + 4, _DST_PORT)
    a.ldx(DW, R1, R10, _V6LO_FLAG)
    a.stx(H, R10, _RN_VAL + 6, R1)  # RN_V6_LOOPBACK is 1, in the flags byte
    _write_destination(a, v6)
    _record_revnat(a, "local_rn_")
    a.ret(1)

    # A pod's traffic to loopback addresses leaves from its pod IP, so the
    # far end (a backend, another pod, the userspace proxy) sees the pod.
    a.label("source")
    _policy(a, "pol_", allowed="allowed")
    a.label("allowed")
    a.jeq(_POD, 0, "done")
    a.mov(R1, _DST_IP)
    a.and_(R1, 0xFF)
    a.jne(R1, 127, "done")
    if kind == "connect":
        # Port 0: bpf_bind defers the port to connect (IP_BIND_ADDRESS_NO_PORT);
        # an already bound socket refuses, and is left as it is.
        a.ldx(W, R1, _POD, _POD_IP)
        if v6:
            a.st(H, R10, _SOCKADDR, _AF_INET6)
            a.st(H, R10, _SOCKADDR + 2, 0)
            a.st(W, R10, _SOCKADDR + 4, 0)  # flowinfo
            a.st(W, R10, _SOCKADDR + 8, 0)
            a.st(W, R10, _SOCKADDR + 12, 0)
            a.mov(R2, _V4_MAPPED_WORD2, w32=True)
            a.stx(W, R10, _SOCKADDR + 16, R2)
            a.stx(W, R10, _SOCKADDR + 20, R1)
            a.st(W, R10, _SOCKADDR + 24, 0)  # scope id
            length = 28
        else:
            a.st(H, R10, _SOCKADDR, _AF_INET)
            a.st(H, R10, _SOCKADDR + 2, 0)
            a.stx(W, R10, _SOCKADDR + 4, R1)
            a.st(DW, R10, _SOCKADDR + 8, 0)
            length = 16
        a.mov(R1, _CTX)
        a.mov(R2, R10)
        a.add(R2, _SOCKADDR)
        a.mov(R3, length)
        a.call(Helper.bind)
    else:
        # Unconnected UDP: the datagram's source, unless the socket is bound
        # to an address or IP_PKTINFO named one.
        a.ldx(W, R1, _CTX, _CTX_MSG_SRC_IP4)
        a.jne(R1, 0, "done")
        a.ldx(W, R1, _POD, _POD_IP)
        a.stx(W, _CTX, _CTX_MSG_SRC_IP4, R1)
    a.label("done")
    a.ret(1)
    return a


def _reverse_program(attach: AttachType, v6: bool) -> Asm:
    """getpeername and recvmsg: show the address the user named, not the backend."""
    hook = "peer" if "GETPEERNAME" in attach.name else "recv"
    a = Asm(f"svcnet_{hook}{6 if v6 else 4}")
    a.mov(_CTX, R1)
    if v6:
        _load_v6_destination(a, mapped="v4", loopback=None, any_=None, other="done")
    else:
        a.ldx(W, _DST_IP, _CTX, _CTX_USER_IP4)
    a.label("v4")
    a.ldx(W, _DST_PORT, _CTX, _CTX_USER_PORT)
    a.mov(R1, _CTX)
    a.call(Helper.get_socket_cookie)
    a.stx(DW, R10, _RN_KEY, R0)
    a.stx(W, R10, _RN_KEY + 8, _DST_IP)
    a.stx(H, R10, _RN_KEY + 12, _DST_PORT)
    a.st(H, R10, _RN_KEY + 14, 0)
    a.ld_map(R1, "revnat")
    a.mov(R2, R10)
    a.add(R2, _RN_KEY)
    a.call(Helper.map_lookup_elem)
    a.jeq(R0, 0, "done")
    a.ldx(W, _DST_IP, R0, 0)
    a.ldx(H, _DST_PORT, R0, 4)
    if v6:
        a.ldx(B, R1, R0, 6)
        a.jset(R1, RN_V6_LOOPBACK, "v6_loopback")
        _write_destination(a, v6=True)
        a.ret(1)
        a.label("v6_loopback")
        a.mov(R1, 0)
        a.stx(W, _CTX, _CTX_USER_IP6, R1)
        a.stx(W, _CTX, _CTX_USER_IP6 + 4, R1)
        a.stx(W, _CTX, _CTX_USER_IP6 + 8, R1)
        a.mov(R1, _V6_LOOPBACK_WORD3, w32=True)
        a.stx(W, _CTX, _CTX_USER_IP6 + 12, R1)
        a.stx(W, _CTX, _CTX_USER_PORT, _DST_PORT)
    else:
        _write_destination(a, v6=False)
    a.label("done")
    a.ret(1)
    return a


def _programs(v6only: _V6Only | None) -> list[tuple[AttachType, Asm]]:
    return [
        (AttachType.CGROUP_INET4_BIND, _bind_program(False, v6only)),
        (AttachType.CGROUP_INET6_BIND, _bind_program(True, v6only)),
        (AttachType.CGROUP_INET4_CONNECT, _forward_program("connect", False, v6only)),
        (AttachType.CGROUP_INET6_CONNECT, _forward_program("connect", True, v6only)),
        (AttachType.CGROUP_UDP4_SENDMSG, _forward_program("sendmsg", False, v6only)),
        (AttachType.CGROUP_UDP4_RECVMSG, _reverse_program(AttachType.CGROUP_UDP4_RECVMSG, False)),
        (AttachType.CGROUP_UDP6_RECVMSG, _reverse_program(AttachType.CGROUP_UDP6_RECVMSG, True)),
        (
            AttachType.CGROUP_INET4_GETPEERNAME,
            _reverse_program(AttachType.CGROUP_INET4_GETPEERNAME, False),
        ),
        (
            AttachType.CGROUP_INET6_GETPEERNAME,
            _reverse_program(AttachType.CGROUP_INET6_GETPEERNAME, True),
        ),
    ]


def _kernel_v6only() -> _V6Only | None:
    found = bpf.btf_member("sock_common", "skc_ipv6only")
    if found is None or found[1] != 1:
        return None
    bit = found[0]
    return _V6Only(byte=bit // 8, mask=1 << (bit % 8))


# -- userspace side -----------------------------------------------------------


def cgroup_id(path: str) -> int:
    """The id ``bpf_get_current_cgroup_id()`` returns for processes in ``path``.

    On cgroup v2 it is the directory's inode number (kernfs node id).
    """
    return os.stat(path).st_ino


def _ip4(address: str) -> bytes:
    try:
        return ipaddress.IPv4Address(address).packed
    except ValueError:
        raise ValueError(f"not an IPv4 address: {address!r}") from None


def _port(port: int) -> bytes:
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return struct.pack(">H", port)


def _proto(protocol: str) -> int:
    try:
        return _PROTO_NUMBERS[protocol]
    except KeyError:
        raise ValueError(f"protocol must be TCP or UDP, not {protocol!r}") from None


@dataclass(frozen=True, slots=True)
class _MapSpec:
    name: str
    type: MapType
    key_size: int
    value_size: int


@dataclass(slots=True)
class _ServiceState:
    service_id: int
    rev: int
    backends: list[bytes]
    """Each backend as be32 ip + be16 port."""


@dataclass(slots=True)
class _Attachment:
    links: list[int]


class SocketHooks:
    """One instance's maps and programs, and the cgroups they are attached to.

    Every method is synchronous and does a handful of bpf(2) calls, so it can
    be called from the event loop. ``close`` (or the process dying) detaches
    everything: only BPF links and fds hold the hooks.
    """

    def __init__(
        self,
        *,
        max_pods: int = 4096,
        max_services: int = 16384,
        max_backends: int = 65536,
        affinity_entries: int = 8192,
        revnat_entries: int = 16384,
        session_entries: int = 8192,
        policy_entries: int = 65536,
        flow_entries: int = 8192,
    ) -> None:
        # Hash maps are allocated as they fill (no prealloc), so their sizes
        # are limits, not memory. The LRU maps are preallocated (about 90
        # bytes an entry: some 3 MiB with these defaults, for each of the
        # daemons a test run may start); an entry evicted is the least used
        # one: a socket long idle then shows its backend, not the frontend.
        self._specs = [
            (_MapSpec("pods", MapType.HASH, 8, 16), max_pods),
            (_MapSpec("loopbacks", MapType.HASH, 4, 4), max_pods),
            (_MapSpec("services", MapType.HASH, 8, 32), max_services),
            (_MapSpec("backends", MapType.HASH, 8, 8), max_backends),
            (_MapSpec("members", MapType.HASH, 12, 4), max_backends),
            (_MapSpec("affinity", MapType.LRU_HASH, 8, 24), affinity_entries),
            (_MapSpec("revnat", MapType.LRU_HASH, 16, 8), revnat_entries),
            (_MapSpec("sessions", MapType.LRU_HASH, 16, 24), session_entries),
            (_MapSpec("isolated", MapType.HASH, 4, 4), max_pods),
            (_MapSpec("allow", MapType.LPM_TRIE, 16, 4), policy_entries),
            (_MapSpec("exempt", MapType.HASH, 4, 4), 16),
            (_MapSpec("flows", MapType.LRU_HASH, 8, 4), flow_entries),
        ]
        self._maps: dict[str, int] = {}
        self._progs: list[tuple[AttachType, int]] = []
        self._attached: dict[str, _Attachment] = {}
        self._pods: dict[int, tuple[bytes, bytes]] = {}
        self._loopback_users: dict[bytes, set[int]] = {}
        self._services: dict[bytes, _ServiceState] = {}
        self._next_id = 1
        self._policies: dict[bytes, set[bytes]] = {}
        """Isolated pod IP -> the ``allow`` keys written for it."""

    # -- lifecycle ----------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return bool(self._progs)

    def load(self) -> None:
        """Create the maps and load the programs (BpfError with the verifier's log)."""
        if self._progs:
            return
        try:
            for spec, entries in self._specs:
                # An LPM trie must not be preallocated (the kernel refuses it).
                flags = (
                    bpf.BPF_F_NO_PREALLOC if spec.type in (MapType.HASH, MapType.LPM_TRIE) else 0
                )
                self._maps[spec.name] = bpf.map_create(
                    spec.type,
                    spec.key_size,
                    spec.value_size,
                    entries,
                    flags=flags,
                    name=f"svcnet_{spec.name}",
                )
            for attach, program in _programs(_kernel_v6only()):
                fd = bpf.prog_load(
                    bpf.ProgType.CGROUP_SOCK_ADDR,
                    program.assemble(self._maps),
                    expected_attach_type=attach,
                    name=program.name,
                )
                self._progs.append((attach, fd))
        except BaseException:
            self.close()
            raise

    def attach(self, cgroup_dir: str) -> None:
        """Link every program to the v2 cgroup at ``cgroup_dir`` (and its descendants).

        Links are multi-program, so this goes beside other daemons' hooks; it
        fails (EPERM) only where someone attached an exclusive program with
        BPF_PROG_ATTACH and no BPF_F_ALLOW_MULTI.
        """
        if not self._progs:
            raise RuntimeError("SocketHooks.attach before load")
        key = os.path.realpath(cgroup_dir)
        if key in self._attached:
            return
        dir_fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        links: list[int] = []
        try:
            for attach, prog in self._progs:
                links.append(bpf.link_create(prog, dir_fd, attach))
        except BaseException:
            _close_all(links)
            raise
        finally:
            os.close(dir_fd)
        self._attached[key] = _Attachment(links)

    def detach(self, cgroup_dir: str) -> None:
        attachment = self._attached.pop(os.path.realpath(cgroup_dir), None)
        if attachment is not None:
            _close_all(attachment.links)

    def close(self) -> None:
        """Detach everywhere and free the programs and maps (the kernel frees on last fd)."""
        for attachment in self._attached.values():
            _close_all(attachment.links)
        self._attached.clear()
        _close_all(fd for _, fd in self._progs)
        self._progs.clear()
        _close_all(self._maps.values())
        self._maps.clear()
        self._pods.clear()
        self._loopback_users.clear()
        self._services.clear()
        self._policies.clear()

    def __enter__(self) -> SocketHooks:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def prog_ids(self) -> dict[AttachType, int]:
        """Kernel ids of the loaded programs, by hook (BPF_PROG_QUERY reports these)."""
        return {attach: bpf.prog_info(fd).id for attach, fd in self._progs}

    def map_fd(self, name: str) -> int:
        """The fd of one of the maps (layouts in the module docstring), for diagnostics."""
        return self._map(name)

    def _map(self, name: str) -> int:
        try:
            return self._maps[name]
        except KeyError:
            raise RuntimeError("SocketHooks used before load") from None

    # -- pods -----------------------------------------------------------------

    def set_pod(
        self,
        cgroup: int,
        pod_ip: str,
        loopback_ip: str,
        *,
        privileged_ports: bool = True,
    ) -> None:
        """Make the processes of cgroup id ``cgroup`` a pod with these addresses.

        Call it for every cgroup whose processes belong to the pod (the id of
        the cgroup a process is directly in is what counts). ``loopback_ip``
        is the pod's private stand-in for 127.0.0.1, in 127.0.0.0/8 and
        unique to the pod.
        """
        ip, lo = _ip4(pod_ip), _ip4(loopback_ip)
        if lo == _ip4("127.0.0.1") or ip == _ip4("127.0.0.1"):
            raise ValueError("127.0.0.1 is every pod's localhost, not an address of one")
        flags = POD_PRIVILEGED_PORTS if privileged_ports else 0
        old = self._pods.get(cgroup)
        bpf.map_update(self._map("loopbacks"), lo, struct.pack("<I", 1))
        bpf.map_update(
            self._map("pods"), struct.pack("<Q", cgroup), ip + lo + struct.pack("<II", flags, 0)
        )
        self._pods[cgroup] = (ip, lo)
        self._loopback_users.setdefault(lo, set()).add(cgroup)
        if old is not None and old[1] != lo:
            self._release_loopback(old[1], cgroup)

    def remove_pod(self, cgroup: int) -> None:
        old = self._pods.pop(cgroup, None)
        bpf.map_delete(self._map("pods"), struct.pack("<Q", cgroup))
        if old is not None:
            self._release_loopback(old[1], cgroup)

    def _release_loopback(self, lo: bytes, cgroup: int) -> None:
        users = self._loopback_users.get(lo)
        if users is None:
            return
        users.discard(cgroup)
        if not users:
            del self._loopback_users[lo]
            bpf.map_delete(self._map("loopbacks"), lo)

    # -- services -------------------------------------------------------------

    def set_service(
        self,
        frontend_ip: str,
        port: int,
        protocol: Protocol,
        backends: Iterable[tuple[str, int]],
        affinity_timeout: int | None = None,
    ) -> None:
        """Balance connections to ``frontend_ip:port`` over ``backends`` (ready ones).

        ``affinity_timeout`` (seconds) turns on ClientIP affinity. An empty
        list leaves the frontend to whatever listens on it. Connections
        already made keep their backend.
        """
        key = _ip4(frontend_ip) + _port(port) + bytes([_proto(protocol), 0])
        addrs = [_ip4(ip) + _port(p) for ip, p in backends]
        if affinity_timeout is not None and affinity_timeout <= 0:
            raise ValueError("affinity_timeout must be positive")
        services, backends_map, members_map = (
            self._map("services"),
            self._map("backends"),
            self._map("members"),
        )
        old = self._services.get(key)
        service_id = old.service_id if old is not None else self._new_id()
        rev = self._new_id()
        new = _ServiceState(service_id, rev, addrs)
        try:
            self._write_backends(backends_map, members_map, new)
            flags = 0 if affinity_timeout is None else SVC_AFFINITY
            timeout_ns = (affinity_timeout or 0) * 1_000_000_000
            value = struct.pack("<IIIIIIQ", len(addrs), 0, rev, service_id, flags, 0, timeout_ns)
            bpf.map_update(services, key, value)
        except BaseException:
            self._delete_backends(backends_map, members_map, new)
            raise
        self._services[key] = new
        if old is not None:
            self._delete_backends(backends_map, members_map, old)

    def remove_service(self, frontend_ip: str, port: int, protocol: Protocol) -> None:
        key = _ip4(frontend_ip) + _port(port) + bytes([_proto(protocol), 0])
        bpf.map_delete(self._map("services"), key)
        old = self._services.pop(key, None)
        if old is not None:
            self._delete_backends(self._map("backends"), self._map("members"), old)

    def _new_id(self) -> int:
        # u32 ids; 4 billion updates before reuse, and a reused id only
        # matters if the old holder is still in the maps.
        value = self._next_id
        self._next_id = value % 0xFFFFFFFF + 1
        return value

    @staticmethod
    def _write_backends(backends_map: int, members_map: int, state: _ServiceState) -> None:
        for index, addr in enumerate(state.backends):
            bpf.map_update(backends_map, struct.pack("<II", state.rev, index), addr + b"\0\0")
            bpf.map_update(
                members_map, struct.pack("<I", state.rev) + addr + b"\0\0", struct.pack("<I", 1)
            )

    @staticmethod
    def _delete_backends(backends_map: int, members_map: int, state: _ServiceState) -> None:
        for index, addr in enumerate(state.backends):
            bpf.map_delete(backends_map, struct.pack("<II", state.rev, index))
            bpf.map_delete(members_map, struct.pack("<I", state.rev) + addr + b"\0\0")

    # -- NetworkPolicy ----------------------------------------------------------

    def exempt_process(self, pid: int) -> None:
        """Let process ``pid``'s connections through every policy (svcnet's own: the
        kubelet's probes come from the node, which policies do not hold back)."""
        bpf.map_update(self._map("exempt"), struct.pack("<I", pid), struct.pack("<I", 1))

    def set_ingress_policy(self, pod_ip: str, allows: Iterable[PolicyAllow] | None) -> None:
        """Isolate ``pod_ip`` for ingress, letting in only ``allows``; None: not isolated.

        Each allow is a source CIDR (IPv4; a pod is its /32), a protocol and a
        port range (0-65535 for every port). The new entries are written before
        the pod is isolated and the stale ones deleted after, so a connection
        never meets a half-written set that refuses what both sets allow.
        """
        dst = _ip4(pod_ip)
        isolated, allow = self._map("isolated"), self._map("allow")
        old = self._policies.get(dst, set())
        if allows is None:
            bpf.map_delete(isolated, dst)
            self._policies.pop(dst, None)
            for key in old:
                bpf.map_delete(allow, key)
            return
        keys = {key for a in allows for key in _allow_keys(dst, *a)}
        written: set[bytes] = set()
        try:
            for key in keys - old:
                bpf.map_update(allow, key, struct.pack("<I", 1))
                written.add(key)
        except BaseException:
            for key in written:
                bpf.map_delete(allow, key)
            raise
        bpf.map_update(isolated, dst, struct.pack("<I", ISOLATED_INGRESS))
        self._policies[dst] = keys
        for key in old - keys:
            bpf.map_delete(allow, key)

    @property
    def isolated_pods(self) -> set[str]:
        """The pod IPs isolated for ingress now."""
        return {str(ipaddress.IPv4Address(dst)) for dst in self._policies}


def _port_blocks(first: int, last: int) -> list[tuple[int, int]]:
    """[first, last] as aligned blocks (start, prefix length), as a CIDR list covers
    an address range: 1-65535 is sixteen blocks, 80-80 one of length 16."""
    out = []
    port = first
    while port <= last:
        size = port & -port if port else 1 << 16
        while size > last - port + 1:
            size //= 2
        out.append((port, 17 - size.bit_length()))
        port += size
    return out


def _allow_keys(dst: bytes, source: str, protocol: str, first: int, last: int) -> list[bytes]:
    net = ipaddress.IPv4Network(source, strict=False)
    if not 0 <= first <= last <= 65535:
        raise ValueError(f"port range out of range: {first}-{last}")
    proto = _proto(protocol)
    return [
        struct.pack("<I", 64 + net.prefixlen)
        + dst
        + bytes([proto, bits])
        + struct.pack(">H", start)
        + net.network_address.packed
        for start, bits in _port_blocks(first, last)
    ]


def _close_all(fds: Iterable[int]) -> None:
    for fd in list(fds):
        try:
            os.close(fd)
        except OSError as e:
            if e.errno != errno.EBADF:
                raise


def probe() -> str | None:
    """None when the socket hooks can work here, else why not, in one sentence."""
    reason = bpf.probe()
    if reason is not None:
        return reason
    hooks = SocketHooks(
        max_pods=1,
        max_services=1,
        max_backends=1,
        affinity_entries=64,
        revnat_entries=64,
        session_entries=64,
    )
    try:
        hooks.load()
    except bpf.BpfError as e:
        first = e.log.strip().splitlines()[-1] if e.log.strip() else os.strerror(e.errno or 0)
        return f"the verifier refused the socket programs: {first}"
    finally:
        hooks.close()
    return None

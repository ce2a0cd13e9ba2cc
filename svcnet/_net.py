"""Listening sockets as svcnet's servers open them (the proxy's listeners, the
ingress controller's): non-blocking, SO_REUSEADDR and TCP_NODELAY for TCP (an
accepted socket inherits TCP_NODELAY from its listener on Linux, saving a
setsockopt per connection), IPV6_V6ONLY for IPv6 so the IPv4 and IPv6 sides of
a port are separate sockets, and the socket closed if any step fails."""

from __future__ import annotations

import socket

BACKLOG = 4096
"""Accept queue length: bursts of new connections wait in the kernel, not refused."""


def listening_socket(host: str, port: int, *, udp: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    try:
        if not udp:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        if not udp:
            sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock

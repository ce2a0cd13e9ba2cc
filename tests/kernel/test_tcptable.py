"""The accept-queue count the agent waits on before it signals a deleted pod."""

from __future__ import annotations

import socket

from svcnet.kernel import tcptable


def test_connections_waiting_on_a_listener_are_counted() -> None:
    host = "127.9.0.7"  # an address of this test's own; exact match only
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    clients = []
    try:
        assert tcptable.SharedTable(0).waiting({host}) == 0
        for _ in range(3):
            c = socket.create_connection((host, port))
            clients.append(c)
        # The handshake completes in the kernel: all three wait for accept().
        assert tcptable.SharedTable(0).waiting({host}) == 3
        assert tcptable.SharedTable(0).waiting({"127.9.0.8"}) == 0
        conn, _ = listener.accept()
        clients.append(conn)
        assert tcptable.SharedTable(0).waiting({host}) == 2
    finally:
        for c in clients:
            c.close()
        listener.close()


def test_ipv6_listeners_are_read_too() -> None:
    listener = socket.socket(socket.AF_INET6)
    listener.bind(("::1", 0))
    listener.listen(4)
    client = socket.create_connection(("::1", listener.getsockname()[1]))
    try:
        assert tcptable.SharedTable(0).waiting({"::1"}) >= 1
    finally:
        client.close()
        listener.close()


def test_the_shared_table_is_read_once_per_max_age() -> None:
    host = "127.9.0.9"
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    now = [100.0]
    table = tcptable.SharedTable(0.5, clock=lambda: now[0])
    clients = []
    try:
        assert table.waiting({host}) == 0
        clients.append(socket.create_connection((host, port)))
        # Within max_age every asker gets the same read: the new connection is not seen yet.
        now[0] += 0.25
        assert table.waiting({host}) == 0
        now[0] += 0.25
        assert table.waiting({host}) == 1
        assert table.waiting({host, "127.9.0.10"}) == 1
    finally:
        for c in clients:
            c.close()
        listener.close()


def test_sock_diag_and_proc_net_tcp_agree() -> None:
    """The netlink dump (what is used) and /proc/net/tcp (the fallback where
    sock_diag is refused) report the same queues."""
    host = "127.9.0.11"
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(16)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(2)]
    try:
        diag = tcptable._diag_listeners()
        assert diag[host] == 2
        assert diag == tcptable._proc_listeners()
    finally:
        for c in clients:
            c.close()
        listener.close()

"""An epoll of the proxy's own, nested in the event loop.

The loop watches one file descriptor, this epoll's; the proxy registers its
sockets here, once each, edge-triggered. Why not ``loop.add_reader`` per
socket: uvloop turns each registration into a libuv poll handle (an ioctl and
several epoll_ctl calls to create, more to stop), and the stock loop into a
selector update, whereas a proxy connection only needs one ``epoll_ctl`` per
socket for its whole life here, and none to pause or resume (edge-triggered:
pausing is simply not reading; resuming reads what is waiting). Closing a
socket takes it out of the epoll by itself.

One loop callback drains a batch of events and calls each socket's handler
with the event mask. Sockets closed while a batch is dispatched are closed at
its end (``close_later``), so that a descriptor number cannot be reused by a
socket accepted in the same batch and receive an event meant for the old one.

Linux only (epoll), as svcnet's proxy is.
"""

from __future__ import annotations

import asyncio
import logging
import select
from _socket import socket as RawSocket
from collections.abc import Callable

logger = logging.getLogger(__name__)

IN = select.EPOLLIN
OUT = select.EPOLLOUT
RDHUP = select.EPOLLRDHUP
HUP = select.EPOLLHUP
ERR = select.EPOLLERR
ET = select.EPOLLET
STREAM = IN | OUT | RDHUP | ET
"""What a relayed socket is registered for, once."""

MAX_EVENTS = 1024

Handler = Callable[[int], None]


class Poller:
    __slots__ = ("dispatching", "epoll", "fd", "handlers", "loop", "to_close")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.epoll = select.epoll()
        self.fd = self.epoll.fileno()
        self.handlers: dict[int, Handler] = {}
        self.to_close: list[RawSocket] = []
        self.dispatching = False
        loop.add_reader(self.fd, self._run)

    def register(self, fd: int, events: int, handler: Handler) -> None:
        self.epoll.register(fd, events)
        self.handlers[fd] = handler

    def forget(self, fd: int) -> None:
        """Drop fd's handler; the caller closes the socket (which unregisters it)."""
        self.handlers.pop(fd, None)

    def unregister(self, fd: int) -> None:
        """Take fd out without closing its socket (listeners being handed back)."""
        if self.handlers.pop(fd, None) is not None:
            self.epoll.unregister(fd)

    def close_later(self, sock: RawSocket) -> None:
        """Close sock now, or at the end of the batch being dispatched."""
        self.handlers.pop(sock.fileno(), None)
        if self.dispatching:
            self.to_close.append(sock)
        else:
            sock.close()

    def _run(self) -> None:
        handlers = self.handlers
        try:
            events = self.epoll.poll(0, MAX_EVENTS)
        except InterruptedError:
            return
        self.dispatching = True
        try:
            for fd, ev in events:
                h = handlers.get(fd)
                if h is not None:
                    try:
                        h(ev)
                    except Exception:
                        # A bug in one connection must not take the others down.
                        logger.exception("proxy crashed handling fd %d", fd)
        finally:
            self.dispatching = False
            if self.to_close:
                for s in self.to_close:
                    s.close()
                self.to_close.clear()

    def close(self) -> None:
        self.loop.remove_reader(self.fd)
        self.epoll.close()
        self.handlers.clear()
        for s in self.to_close:
            s.close()
        self.to_close.clear()

"""splice(2) pipes: how a bulk direction of a relayed connection moves its bytes.

A direction whose read fills a whole buffer (a download, an upload) stops
copying through the process: the kernel moves the pages from one socket to
the other through a pipe of the connection's own (HAProxy's ``option
splice-auto``). The flow control stays what the copying relay does, with the
pipe holding what the destination has not taken yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

READ_SIZE = 256 * 1024
"""Bytes read per ``recv``; also the most a connection holds per direction."""

SPLICE_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK

DRAINED, FULL, EOF = range(3)
"""What ``Pipe.pump`` stopped at: the source has nothing more now, the
destination took less than the pipe held, or the source ended."""


class Pipe:
    """One direction's splice(2) pipe; ``held`` is what it holds for the destination."""

    __slots__ = ("held", "r", "w")

    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.held = 0
        with contextlib.suppress(OSError):
            # Room for one whole read, as the copying relay holds: the default
            # 64 KiB would cost four times the system calls per MiB.
            fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, READ_SIZE)

    def pump(self, src: int, dst: int) -> int:
        """Move src's bytes to dst until src has no more now, dst is full, or src ended.

        Reads until EAGAIN, not until a short read as the copying relay does:
        a splice can stop short for lack of pipe slots with more to read.
        """
        splice = os.splice
        while True:
            if not self.held:
                try:
                    n = splice(src, self.w, READ_SIZE, flags=SPLICE_FLAGS)
                except (BlockingIOError, InterruptedError):
                    return DRAINED
                if n == 0:
                    return EOF
                self.held = n
            try:
                self.held -= splice(self.r, dst, self.held, flags=SPLICE_FLAGS)
            except (BlockingIOError, InterruptedError):
                pass
            if self.held:
                return FULL

    def flush(self, dst: int) -> bool:
        """Send what is held; True once the pipe is empty."""
        try:
            self.held -= os.splice(self.r, dst, self.held, flags=SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            pass
        return not self.held

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)

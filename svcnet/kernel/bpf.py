"""Thin typed wrappers for bpf(2), through ctypes: no compiler, no libbpf.

Only what the socket hooks need: maps (create, update, lookup, delete,
iterate), program load (the verifier's log goes into the exception), BPF links
on a cgroup, ``BPF_PROG_QUERY`` and object info for tests and diagnostics.

Every object is a file descriptor owned by the caller; closing the last fd
that refers to a link detaches it. That is why attaching is only done with
``BPF_LINK_CREATE``, never ``BPF_PROG_ATTACH``: a daemon killed with SIGKILL
leaves no hook behind, since the kernel closes its fds.

``bpf_attr`` is packed by hand with ``struct``; the offsets are those of
include/uapi/linux/bpf.h, stable kernel ABI. The kernel requires the bytes
past the fields it knows to be zero, which a fresh buffer gives.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import os
import platform
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from svcnet.kernel.asm import R0, Asm

__all__ = [
    "AttachType",
    "BpfError",
    "LinkInfo",
    "MapType",
    "ProgInfo",
    "ProgType",
    "btf_member",
    "cgroup2_mount",
    "link_create",
    "link_info",
    "map_create",
    "map_delete",
    "map_keys",
    "map_lookup",
    "map_update",
    "probe",
    "prog_info",
    "prog_load",
    "prog_query",
]

_libc = ctypes.CDLL(None, use_errno=True)

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "riscv64": 280, "ppc64le": 361}


class _Cmd(enum.IntEnum):
    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    OBJ_GET_INFO_BY_FD = 15
    PROG_QUERY = 16
    LINK_CREATE = 28


class MapType(enum.IntEnum):
    HASH = 1
    ARRAY = 2
    LRU_HASH = 9
    LPM_TRIE = 11


class ProgType(enum.IntEnum):
    CGROUP_SOCK_ADDR = 18


class AttachType(enum.IntEnum):
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30


BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_NO_PREALLOC = 1

_ATTR_SIZE = 128
_OBJ_NAME_LEN = 16
_LOG_SIZE = 1 << 22


class BpfError(OSError):
    """A bpf(2) command failed; ``log`` holds the verifier's log for a refused program."""

    def __init__(self, err: int, what: str, log: str = "") -> None:
        message = f"{what}: {os.strerror(err)}"
        if log:
            message += "\n" + log
        super().__init__(err, message)
        self.log = log


def _bpf(cmd: _Cmd, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise BpfError(errno.ENOSYS, f"{what}: no bpf(2) number known for {platform.machine()}")
    ret = int(_libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr))))
    if ret < 0:
        raise BpfError(ctypes.get_errno(), what)
    return ret


def _attr(fmt: str, *values: int | bytes) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into(fmt, buf, 0, *values)
    return buf


def _addr(buf: ctypes.Array[ctypes.c_char]) -> int:
    return ctypes.addressof(buf)


def _name(name: str) -> bytes:
    """An object name as the kernel accepts it: [A-Za-z0-9_.], at most 15 bytes."""
    clean = "".join(c if c.isalnum() or c in "_." else "_" for c in name)
    return clean.encode()[: _OBJ_NAME_LEN - 1]


# -- maps -------------------------------------------------------------------


def map_create(
    map_type: MapType,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    flags: int = 0,
    name: str = "",
) -> int:
    """A new map; returns its fd."""
    attr = _attr(
        "<IIIIIII16s",
        map_type,
        key_size,
        value_size,
        max_entries,
        flags,
        0,
        0,
        _name(name),
    )
    return _bpf(_Cmd.MAP_CREATE, attr, f"creating map {name or map_type.name}")


def _elem_attr(
    fd: int, key: ctypes.Array[ctypes.c_char], value: int, flags: int
) -> ctypes.Array[ctypes.c_char]:
    return _attr("<IIQQQ", fd, 0, _addr(key), value, flags)


def map_update(fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
    """Insert or replace ``key``; a hash map swaps the whole value at once."""
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    _bpf(_Cmd.MAP_UPDATE_ELEM, _elem_attr(fd, k, _addr(v), flags), "updating map element")


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The value at ``key``, or None when there is none."""
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value_size)
    try:
        _bpf(_Cmd.MAP_LOOKUP_ELEM, _elem_attr(fd, k, _addr(v), 0), "looking up map element")
    except BpfError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    return v.raw


def map_delete(fd: int, key: bytes) -> bool:
    """Remove ``key``; False when it was not there."""
    k = ctypes.create_string_buffer(key, len(key))
    try:
        _bpf(_Cmd.MAP_DELETE_ELEM, _elem_attr(fd, k, 0, 0), "deleting map element")
    except BpfError as e:
        if e.errno == errno.ENOENT:
            return False
        raise
    return True


def map_keys(fd: int, key_size: int) -> Iterator[bytes]:
    """Every key, in the map's order; a key deleted meanwhile may restart the walk."""
    cur: ctypes.Array[ctypes.c_char] | None = None
    nxt = ctypes.create_string_buffer(key_size)
    while True:
        attr = _attr("<IIQQ", fd, 0, 0 if cur is None else _addr(cur), _addr(nxt))
        try:
            _bpf(_Cmd.MAP_GET_NEXT_KEY, attr, "iterating map")
        except BpfError as e:
            if e.errno == errno.ENOENT:
                return
            raise
        key = nxt.raw
        yield key
        cur = ctypes.create_string_buffer(key, key_size)


# -- programs and links -----------------------------------------------------


def prog_load(
    prog_type: ProgType,
    insns: bytes,
    *,
    expected_attach_type: AttachType,
    name: str = "",
    license: str = "GPL",
) -> int:
    """Load a program; returns its fd. A refusal raises BpfError with the verifier log.

    The first attempt runs without a log (cheaper); only a failure is retried
    with one, to explain it.
    """
    if len(insns) % 8:
        raise ValueError("instructions are 8 bytes each")
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())

    def attempt(log: ctypes.Array[ctypes.c_char] | None) -> int:
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        struct.pack_into(
            "<IIQQIIQII16sII",
            attr,
            0,
            prog_type,
            len(insns) // 8,
            _addr(code),
            _addr(lic),
            0 if log is None else 1,
            0 if log is None else len(log),
            0 if log is None else _addr(log),
            0,
            0,
            _name(name),
            0,
            expected_attach_type,
        )
        return _bpf(_Cmd.PROG_LOAD, attr, f"loading program {name or prog_type.name}")

    try:
        return attempt(None)
    except BpfError as first:
        if first.errno not in (errno.EINVAL, errno.EACCES, errno.E2BIG, errno.ENOSPC):
            raise
        log = ctypes.create_string_buffer(_LOG_SIZE)
        try:
            return attempt(log)
        except BpfError as second:
            text = log.value.decode(errors="replace").strip()
            raise BpfError(
                second.errno or first.errno, f"loading program {name}", _tail(text)
            ) from None


def _tail(log: str, lines: int = 60) -> str:
    """The end of a verifier log: where it says what it refused."""
    parts = log.splitlines()
    if len(parts) <= lines:
        return log
    return "\n".join(["...", *parts[-lines:]])


def link_create(prog_fd: int, target_fd: int, attach_type: AttachType) -> int:
    """Attach ``prog_fd`` to the cgroup ``target_fd`` as a link; returns the link fd.

    Cgroup links always attach in multi-program mode (``BPF_F_ALLOW_MULTI``):
    other programs on the same cgroup and hook, other daemons' included, stay
    and run too, in attach order, each seeing the address the previous left.
    """
    attr = _attr("<IIII", prog_fd, target_fd, attach_type, 0)
    return _bpf(_Cmd.LINK_CREATE, attr, f"attaching {attach_type.name}")


def prog_query(target_fd: int, attach_type: AttachType, *, effective: bool = False) -> list[int]:
    """Ids of the programs attached to cgroup ``target_fd`` at ``attach_type``.

    ``effective`` counts what runs there, inherited from ancestors included.
    """
    capacity = 64
    ids = (ctypes.c_uint32 * capacity)()
    attr = _attr(
        "<IIIIQI",
        target_fd,
        attach_type,
        1 if effective else 0,
        0,
        ctypes.addressof(ids),
        capacity,
    )
    _bpf(_Cmd.PROG_QUERY, attr, f"querying {attach_type.name}")
    (count,) = struct.unpack_from("<I", attr, 24)
    return [int(ids[i]) for i in range(min(count, capacity))]


def _info(fd: int, size: int) -> bytes:
    info = ctypes.create_string_buffer(size)
    attr = _attr("<IIQ", fd, size, _addr(info))
    _bpf(_Cmd.OBJ_GET_INFO_BY_FD, attr, "reading object info")
    return info.raw


@dataclass(frozen=True, slots=True)
class ProgInfo:
    id: int
    name: str


def prog_info(prog_fd: int) -> ProgInfo:
    raw = _info(prog_fd, 256)
    (prog_id,) = struct.unpack_from("<I", raw, 4)
    name = raw[64:80].split(b"\0", 1)[0].decode(errors="replace")
    return ProgInfo(prog_id, name)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    id: int
    prog_id: int


def link_info(link_fd: int) -> LinkInfo:
    raw = _info(link_fd, 64)
    link_id, prog_id = struct.unpack_from("<II", raw, 4)
    return LinkInfo(link_id, prog_id)


# -- kernel BTF -------------------------------------------------------------

# Bytes of kind-specific data after each 12-byte ``btf_type``, by kind
# (include/uapi/linux/btf.h): a fixed size, or a size per ``vlen`` item.
_BTF_FIXED = {1: 4, 3: 12, 14: 4, 17: 4}
_BTF_PER_ITEM = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
_BTF_STRUCT = 4


def btf_member(
    struct_name: str, member: str, path: str = "/sys/kernel/btf/vmlinux"
) -> tuple[int, int] | None:
    """(bit offset, bit size) of ``struct_name.member`` in the running kernel, or None.

    For reading a field no helper exposes (a socket's IPV6_V6ONLY bit) through a
    BTF pointer: the offset is the running kernel's, not a guess from headers.
    Types are walked in order until the struct is met (about a tenth of a
    second for the whole of vmlinux at worst).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    magic, _ver, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", data, 0
    )
    if magic != 0xEB9F:
        return None
    types = memoryview(data)[hdr_len + type_off : hdr_len + type_off + type_len]
    strings = data[hdr_len + str_off : hdr_len + str_off + str_len]

    def name_at(off: int) -> bytes:
        return strings[off : strings.index(b"\0", off)]

    want_struct, want_member = struct_name.encode(), member.encode()
    pos = 0
    while pos + 12 <= len(types):
        name_off, info, _size = struct.unpack_from("<III", types, pos)
        kind, vlen, kind_flag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        pos += 12
        if kind == _BTF_STRUCT and name_at(name_off) == want_struct:
            for i in range(vlen):
                m_name, _m_type, m_off = struct.unpack_from("<III", types, pos + 12 * i)
                if name_at(m_name) == want_member:
                    if kind_flag:
                        return m_off & 0xFFFFFF, m_off >> 24
                    return m_off, 0
            return None
        pos += _BTF_FIXED.get(kind, 0) + _BTF_PER_ITEM.get(kind, 0) * vlen
    return None


# -- environment ------------------------------------------------------------


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """Where the cgroup v2 hierarchy is mounted (the first one), or None."""
    try:
        with open(mountinfo, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        # Fields after " - " are fstype, source, super options; before it the
        # fifth field is the mount point (octal-escaped).
        head, sep, tail = line.partition(" - ")
        if sep and tail.split(" ", 1)[0] == "cgroup2":
            return _unescape(head.split(" ")[4])
    return None


def _unescape(path: str) -> str:
    out = path
    for code in ("\\040", "\\011", "\\012", "\\134"):
        out = out.replace(code, chr(int(code[1:], 8)))
    return out


def probe() -> str | None:
    """None when cgroup socket hooks can be loaded and linked here, else why not.

    The checks touch nothing: a map and a trivial program are made and closed,
    and link support is told apart by the error a link to a non-cgroup fd
    gets (EBADF where links exist, EINVAL where the command is unknown).
    """
    try:
        fd = map_create(MapType.HASH, 4, 4, 1, name="svcnet_probe")
    except BpfError as e:
        if e.errno == errno.ENOSYS:
            return "the kernel has no bpf(2) system call (CONFIG_BPF_SYSCALL is off)"
        if e.errno == errno.EPERM:
            return (
                "BPF needs root (CAP_BPF, CAP_NET_ADMIN); this process runs"
                f" as uid {os.geteuid()} without them"
            )
        return f"the kernel refused to create a BPF map: {os.strerror(e.errno or 0)}"
    os.close(fd)
    if cgroup2_mount() is None:
        return "no cgroup v2 hierarchy is mounted (BPF cgroup hooks attach to v2 cgroups only)"
    trivial = Asm("probe")
    trivial.mov(R0, 1)
    trivial.exit()
    try:
        prog = prog_load(
            ProgType.CGROUP_SOCK_ADDR,
            trivial.assemble(),
            expected_attach_type=AttachType.CGROUP_INET4_GETPEERNAME,
            name="svcnet_probe",
        )
    except BpfError as e:
        return (
            "the kernel refused a cgroup sock_addr program (CONFIG_CGROUP_BPF off,"
            f" or a kernel older than 5.8): {os.strerror(e.errno or 0)}"
        )
    try:
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            link_create(prog, null, AttachType.CGROUP_INET4_GETPEERNAME)
        except BpfError as e:
            if e.errno == errno.EINVAL:
                return "the kernel is too old for BPF links on cgroups (needs 5.7 or later)"
        finally:
            os.close(null)
    finally:
        os.close(prog)
    return None

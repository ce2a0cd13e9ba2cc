"""A small eBPF assembler, so the kernel programs are Python source in the repo.

No compiler is needed at install or run time and there is no binary artifact
to trust: ``sockhooks.py`` writes its programs with the methods of ``Asm``
(one method per instruction, named after the instruction) and gets the
bytecode from ``Asm.assemble``. Jumps name labels instead of counting
instructions; map references name maps and are bound to file descriptors
only at assembly, so one program text serves every set of maps.

The encoding is the kernel's (Documentation/bpf/standardization/
instruction-set.rst): 8-byte instructions ``code, dst:4|src:4, off:s16,
imm:s32``, little-endian, and the 16-byte ``lddw`` for 64-bit immediates and
map file descriptors (``src = BPF_PSEUDO_MAP_FD``).

Immediates are checked rather than silently truncated: a 64-bit ALU or jump
sign-extends its 32-bit immediate, so ``0xffff0000`` compared with a
zero-extended 32-bit load would never match; such values are only accepted by
the 32-bit forms (``w32=True``), where they mean what they say.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DW",
    "R0",
    "R1",
    "R2",
    "R3",
    "R4",
    "R5",
    "R6",
    "R7",
    "R8",
    "R9",
    "R10",
    "Asm",
    "AsmError",
    "B",
    "H",
    "Helper",
    "Reg",
    "Size",
    "W",
]


class AsmError(ValueError):
    """A program that cannot be encoded (bad immediate, unknown label or map)."""


class Reg(enum.IntEnum):
    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3
    R4 = 4
    R5 = 5
    R6 = 6
    R7 = 7
    R8 = 8
    R9 = 9
    R10 = 10


R0, R1, R2, R3, R4, R5 = Reg.R0, Reg.R1, Reg.R2, Reg.R3, Reg.R4, Reg.R5
R6, R7, R8, R9, R10 = Reg.R6, Reg.R7, Reg.R8, Reg.R9, Reg.R10


class Size(enum.IntEnum):
    """Memory access width, as encoded in the opcode."""

    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18


W, H, B, DW = Size.W, Size.H, Size.B, Size.DW


class Helper(enum.IntEnum):
    """Helper function ids (``__BPF_FUNC_MAPPER`` in linux/bpf.h)."""

    map_lookup_elem = 1
    map_update_elem = 2
    map_delete_elem = 3
    ktime_get_ns = 5
    get_current_pid_tgid = 14
    trace_printk = 6
    get_socket_cookie = 46
    setsockopt = 49
    getsockopt = 57
    bind = 64
    get_current_cgroup_id = 80
    sk_lookup_tcp = 84
    sk_lookup_udp = 85
    sk_release = 86
    skc_to_tcp6_sock = 136
    skc_to_udp6_sock = 140


# Instruction classes.
_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = range(8)
# Modes.
_IMM, _MEM, _ATOMIC = 0x00, 0x60, 0xC0
# Operand source.
_K, _X = 0x00, 0x08
_PSEUDO_MAP_FD = 1
_FETCH = 0x01

_ALU_OPS = {
    "add": 0x00,
    "sub": 0x10,
    "mul": 0x20,
    "div": 0x30,
    "or": 0x40,
    "and": 0x50,
    "lsh": 0x60,
    "rsh": 0x70,
    "mod": 0x90,
    "xor": 0xA0,
    "mov": 0xB0,
    "arsh": 0xC0,
}
_JMP_OPS = {
    "jeq": 0x10,
    "jgt": 0x20,
    "jge": 0x30,
    "jset": 0x40,
    "jne": 0x50,
    "jsgt": 0x60,
    "jsge": 0x70,
    "jlt": 0xA0,
    "jle": 0xB0,
    "jslt": 0xC0,
    "jsle": 0xD0,
}
_JA, _CALL, _EXIT = 0x00, 0x80, 0x90

Operand = Reg | int


@dataclass(frozen=True, slots=True)
class _Insn:
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None
    """Label whose distance becomes ``off`` at assembly."""
    map_name: str | None = None
    """Map whose fd becomes ``imm`` at assembly (first half of an lddw)."""
    text: str = ""


def _imm32(value: int, w32: bool) -> int:
    """The signed 32-bit immediate for ``value``, refusing a silent change of meaning."""
    if -(2**31) <= value < 2**31:
        return value
    if w32 and 2**31 <= value < 2**32:
        return value - 2**32
    if 2**31 <= value < 2**32:
        raise AsmError(
            f"immediate {value:#x} would be sign-extended by a 64-bit instruction;"
            " use the 32-bit form"
        )
    raise AsmError(f"immediate {value:#x} does not fit in 32 bits")


def _off16(value: int) -> int:
    if not -(2**15) <= value < 2**15:
        raise AsmError(f"offset {value} does not fit in 16 bits")
    return value


class Asm:
    """One program under construction: instructions and labels, in order."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._items: list[_Insn | str] = []
        self._labels: set[str] = set()

    # -- labels -----------------------------------------------------------

    def label(self, name: str) -> None:
        if name in self._labels:
            raise AsmError(f"label {name!r} defined twice")
        self._labels.add(name)
        self._items.append(name)

    # -- ALU ----------------------------------------------------------------

    def _alu(self, op: str, dst: Reg, src: Operand, w32: bool) -> None:
        cls = _ALU if w32 else _ALU64
        suffix = "32" if w32 else ""
        if isinstance(src, Reg):
            self._emit(
                _Insn(
                    cls | _ALU_OPS[op] | _X, dst, src, text=f"{op}{suffix} {dst.name}, {src.name}"
                )
            )
        else:
            imm = _imm32(src, w32)
            self._emit(
                _Insn(cls | _ALU_OPS[op] | _K, dst, imm=imm, text=f"{op}{suffix} {dst.name}, {src}")
            )

    def mov(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("mov", dst, src, w32)

    def add(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("add", dst, src, w32)

    def sub(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("sub", dst, src, w32)

    def mul(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("mul", dst, src, w32)

    def mod(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("mod", dst, src, w32)

    def and_(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("and", dst, src, w32)

    def or_(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("or", dst, src, w32)

    def lsh(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("lsh", dst, src, w32)

    def rsh(self, dst: Reg, src: Operand, *, w32: bool = False) -> None:
        self._alu("rsh", dst, src, w32)

    def ld_imm64(self, dst: Reg, value: int) -> None:
        if not -(2**63) <= value < 2**64:
            raise AsmError(f"immediate {value:#x} does not fit in 64 bits")
        value &= 2**64 - 1
        lo, hi = value & 0xFFFFFFFF, value >> 32
        self._emit(
            _Insn(_LD | DW | _IMM, dst, imm=_imm32(lo, True), text=f"lddw {dst.name}, {value:#x}")
        )
        self._emit(_Insn(0, imm=_imm32(hi, True)))

    def ld_map(self, dst: Reg, map_name: str) -> None:
        """``dst`` = the map named ``map_name`` (bound to an fd at assembly)."""
        self._emit(
            _Insn(
                _LD | DW | _IMM,
                dst,
                _PSEUDO_MAP_FD,
                map_name=map_name,
                text=f"lddw {dst.name}, map[{map_name}]",
            )
        )
        self._emit(_Insn(0))

    # -- memory ---------------------------------------------------------------

    def ldx(self, size: Size, dst: Reg, src: Reg, off: int) -> None:
        """``dst = *(size *)(src + off)``, zero-extended."""
        self._emit(
            _Insn(
                _LDX | _MEM | size,
                dst,
                src,
                _off16(off),
                text=f"ldx{size.name.lower()} {dst.name}, [{src.name}{off:+d}]",
            )
        )

    def stx(self, size: Size, dst: Reg, off: int, src: Reg) -> None:
        """``*(size *)(dst + off) = src``."""
        self._emit(
            _Insn(
                _STX | _MEM | size,
                dst,
                src,
                _off16(off),
                text=f"stx{size.name.lower()} [{dst.name}{off:+d}], {src.name}",
            )
        )

    def st(self, size: Size, dst: Reg, off: int, imm: int) -> None:
        """``*(size *)(dst + off) = imm`` (not allowed into the context)."""
        value = _imm32(imm, size != DW)
        self._emit(
            _Insn(
                _ST | _MEM | size,
                dst,
                0,
                _off16(off),
                value,
                text=f"st{size.name.lower()} [{dst.name}{off:+d}], {imm}",
            )
        )

    def atomic_fetch_add(self, size: Size, dst: Reg, off: int, src: Reg) -> None:
        """``src = atomic_fetch_add((size *)(dst + off), src)`` (kernel 5.12+)."""
        if size not in (W, DW):
            raise AsmError("atomic operations are 32 or 64 bits wide")
        self._emit(
            _Insn(
                _STX | _ATOMIC | size,
                dst,
                src,
                _off16(off),
                _FETCH,
                text=f"fetch_add{size.name.lower()} [{dst.name}{off:+d}], {src.name}",
            )
        )

    # -- control flow -----------------------------------------------------

    def _jump(self, op: str, dst: Reg, src: Operand, target: str, w32: bool) -> None:
        cls = _JMP32 if w32 else _JMP
        name = op + ("32" if w32 else "")
        if isinstance(src, Reg):
            self._emit(
                _Insn(
                    cls | _JMP_OPS[op] | _X,
                    dst,
                    src,
                    target=target,
                    text=f"{name} {dst.name}, {src.name}, {target}",
                )
            )
        else:
            imm = _imm32(src, w32)
            self._emit(
                _Insn(
                    cls | _JMP_OPS[op] | _K,
                    dst,
                    imm=imm,
                    target=target,
                    text=f"{name} {dst.name}, {src}, {target}",
                )
            )

    def jeq(self, dst: Reg, src: Operand, target: str, *, w32: bool = False) -> None:
        self._jump("jeq", dst, src, target, w32)

    def jne(self, dst: Reg, src: Operand, target: str, *, w32: bool = False) -> None:
        self._jump("jne", dst, src, target, w32)

    def jgt(self, dst: Reg, src: Operand, target: str, *, w32: bool = False) -> None:
        self._jump("jgt", dst, src, target, w32)

    def jge(self, dst: Reg, src: Operand, target: str, *, w32: bool = False) -> None:
        self._jump("jge", dst, src, target, w32)

    def jlt(self, dst: Reg, src: Operand, target: str, *, w32: bool = False) -> None:
        self._jump("jlt", dst, src, target, w32)

    def jle(self, dst: Reg, src: Operand, target: str, *, w32: bool = False) -> None:
        self._jump("jle", dst, src, target, w32)

    def jset(self, dst: Reg, src: Operand, target: str, *, w32: bool = False) -> None:
        self._jump("jset", dst, src, target, w32)

    def ja(self, target: str) -> None:
        self._emit(_Insn(_JMP | _JA, target=target, text=f"ja {target}"))

    def call(self, helper: Helper) -> None:
        self._emit(_Insn(_JMP | _CALL, imm=int(helper), text=f"call {helper.name}"))

    def exit(self) -> None:
        self._emit(_Insn(_JMP | _EXIT, text="exit"))

    def ret(self, value: int) -> None:
        """``return value``: the verdict of a hook."""
        self.mov(R0, value)
        self.exit()

    # -- output -----------------------------------------------------------

    def _emit(self, insn: _Insn) -> None:
        self._items.append(insn)

    def __len__(self) -> int:
        """Instruction slots (an lddw takes two)."""
        return sum(1 for item in self._items if isinstance(item, _Insn))

    def _positions(self) -> dict[str, int]:
        positions: dict[str, int] = {}
        pc = 0
        for item in self._items:
            if isinstance(item, str):
                positions[item] = pc
            else:
                pc += 1
        return positions

    def assemble(self, maps: Mapping[str, int] | None = None) -> bytes:
        """The bytecode, with labels resolved and map names bound to ``maps`` fds."""
        maps = maps or {}
        positions = self._positions()
        out = bytearray()
        pc = 0
        for item in self._items:
            if isinstance(item, str):
                continue
            off, imm = item.off, item.imm
            if item.target is not None:
                if item.target not in positions:
                    raise AsmError(f"{self.name}: jump to undefined label {item.target!r}")
                off = _off16(positions[item.target] - (pc + 1))
            if item.map_name is not None:
                if item.map_name not in maps:
                    raise AsmError(f"{self.name}: no fd for map {item.map_name!r}")
                imm = maps[item.map_name]
            out += struct.pack("<BBhi", item.code, item.dst | (item.src << 4), off, imm)
            pc += 1
        return bytes(out)

    def listing(self) -> str:
        """Numbered assembly text, as the verifier log numbers instructions."""
        lines: list[str] = []
        pc = 0
        for item in self._items:
            if isinstance(item, str):
                lines.append(f"{item}:")
                continue
            if item.text:
                lines.append(f"{pc:5d}: {item.text}")
            pc += 1
        return "\n".join(lines)

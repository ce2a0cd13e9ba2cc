"""The eBPF assembler: encodings against the instruction-set document, label and map binding."""

from __future__ import annotations

import struct

import pytest

from svcnet.kernel.asm import DW, R0, R1, R2, R6, R10, Asm, AsmError, B, H, Helper, W


def _insns(code: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]


def test_encodings_match_the_instruction_set() -> None:
    a = Asm()
    a.mov(R0, 1)  # BPF_ALU64 | BPF_MOV | BPF_K = 0xb7
    a.mov(R6, R1)  # ... | BPF_X = 0xbf
    a.mov(R1, 0xFFFF0000, w32=True)  # BPF_ALU | BPF_MOV | BPF_K = 0xb4
    a.add(R2, -8)  # 0x07
    a.and_(R1, 0xFF)  # 0x57
    a.mod(R2, R1, w32=True)  # BPF_ALU | BPF_MOD | BPF_X = 0x9c
    a.ldx(W, R0, R6, 4)  # BPF_LDX | BPF_MEM | BPF_W = 0x61
    a.ldx(H, R0, R6, 4)  # 0x69
    a.ldx(B, R0, R6, 4)  # 0x71
    a.ldx(DW, R0, R6, 64)  # 0x79
    a.stx(DW, R10, -8, R0)  # 0x7b
    a.st(H, R10, -2, 10)  # 0x6a
    a.atomic_fetch_add(W, R1, 4, R2)  # BPF_STX | BPF_ATOMIC | BPF_W = 0xc3, imm BPF_ADD|BPF_FETCH
    a.call(Helper.map_lookup_elem)  # 0x85
    a.exit()  # 0x95
    assert _insns(a.assemble()) == [
        (0xB7, 0x00, 0, 1),
        (0xBF, 0x16, 0, 0),
        (0xB4, 0x01, 0, -65536),
        (0x07, 0x02, 0, -8),
        (0x57, 0x01, 0, 0xFF),
        (0x9C, 0x12, 0, 0),
        (0x61, 0x60, 4, 0),
        (0x69, 0x60, 4, 0),
        (0x71, 0x60, 4, 0),
        (0x79, 0x60, 64, 0),
        (0x7B, 0x0A, -8, 0),
        (0x6A, 0x0A, -2, 10),
        (0xC3, 0x21, 4, 1),
        (0x85, 0x00, 0, 1),
        (0x95, 0x00, 0, 0),
    ]


def test_jumps_resolve_labels_both_ways_counting_lddw_as_two() -> None:
    a = Asm()
    a.label("top")
    a.jeq(R1, 0, "end")  # jumps over jne, lddw (2 slots), ja
    a.jne(R1, R2, "top", w32=True)
    a.ld_imm64(R0, 1 << 40)
    a.ja("top")
    a.label("end")
    a.exit()
    insns = _insns(a.assemble())
    assert insns[0] == (0x15, 0x01, 4, 0)  # BPF_JMP | BPF_JEQ | BPF_K
    assert insns[1] == (0x5E, 0x21, -2, 0)  # BPF_JMP32 | BPF_JNE | BPF_X
    assert insns[2] == (0x18, 0x00, 0, 0) and insns[3] == (0x00, 0x00, 0, 1 << 8)
    assert insns[4] == (0x05, 0x00, -5, 0)
    assert len(a) == 6


def test_map_references_bind_at_assembly() -> None:
    a = Asm("p")
    a.ld_map(R1, "pods")
    a.exit()
    assert _insns(a.assemble({"pods": 7}))[:2] == [(0x18, 0x11, 0, 7), (0, 0, 0, 0)]
    assert _insns(a.assemble({"pods": 9}))[0][3] == 9
    with pytest.raises(AsmError, match="no fd for map 'pods'"):
        a.assemble({})


def test_immediates_that_would_change_meaning_are_refused() -> None:
    a = Asm()
    with pytest.raises(AsmError, match="sign-extended"):
        a.jeq(R1, 0xFFFF0000, "x")
    with pytest.raises(AsmError, match="does not fit"):
        a.mov(R1, 1 << 32, w32=True)
    with pytest.raises(AsmError, match="16 bits"):
        a.ldx(W, R1, R6, 1 << 15)
    with pytest.raises(AsmError, match="32 or 64"):
        a.atomic_fetch_add(B, R1, 0, R2)


def test_label_mistakes_are_reported() -> None:
    a = Asm("prog")
    a.label("x")
    with pytest.raises(AsmError, match="defined twice"):
        a.label("x")
    a.ja("nowhere")
    with pytest.raises(AsmError, match="prog: jump to undefined label 'nowhere'"):
        a.assemble()


def test_listing_numbers_instructions_as_the_verifier_does() -> None:
    a = Asm()
    a.ld_map(R1, "m")
    a.label("here")
    a.ret(1)
    assert a.listing().splitlines() == [
        "    0: lddw R1, map[m]",
        "here:",
        "    2: mov R0, 1",
        "    3: exit",
    ]

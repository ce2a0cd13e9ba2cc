"""bpf(2) wrappers against the running kernel, and the environment checks."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcnet.kernel import bpf, sockhooks
from svcnet.kernel.asm import R0, R2, Asm

from .scratch import Cgroup, require_root


def test_cgroup2_mount_is_found_in_mountinfo(tmp_path: Path) -> None:
    info = str(tmp_path / "mountinfo")
    with open(info, "w") as f:
        f.write(
            "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
            "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
            "41 31 0:38 / /sys/fs/cgroup/my\\040unified rw,relatime - cgroup2 cgroup2 rw\n"
        )
    assert bpf.cgroup2_mount(info) == "/sys/fs/cgroup/my unified"
    with open(info, "w") as f:
        f.write("32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n")
    assert bpf.cgroup2_mount(info) is None
    assert bpf.cgroup2_mount(str(tmp_path / "absent")) is None


def test_btf_gives_the_running_kernels_v6only_bit() -> None:
    bit, size = bpf.btf_member("sock_common", "skc_ipv6only") or (0, 0)
    assert size == 1 and bit > 0
    assert bpf.btf_member("sock_common", "no_such_member") is None
    assert bpf.btf_member("no_such_struct_anywhere", "x") is None
    assert bpf.btf_member("sock_common", "skc_ipv6only", path="/nonexistent") is None


def test_as_another_user_these_tests_fail_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match="run them as root"):
        require_root()


def test_probe_says_yes_here() -> None:
    require_root()
    assert bpf.probe() is None
    assert sockhooks.probe() is None


@pytest.fixture
def hash_map() -> Iterator[int]:
    require_root()
    fd = bpf.map_create(bpf.MapType.HASH, 8, 4, 16, flags=bpf.BPF_F_NO_PREALLOC, name="t")
    try:
        yield fd
    finally:
        os.close(fd)


def test_map_elements(hash_map: int) -> None:
    key = struct.pack("<Q", 42)
    assert bpf.map_lookup(hash_map, key, 4) is None
    bpf.map_update(hash_map, key, struct.pack("<I", 7))
    assert bpf.map_lookup(hash_map, key, 4) == struct.pack("<I", 7)
    with pytest.raises(bpf.BpfError) as exists:
        bpf.map_update(hash_map, key, struct.pack("<I", 8), bpf.BPF_NOEXIST)
    assert exists.value.errno == 17  # EEXIST
    for k in range(3):
        bpf.map_update(hash_map, struct.pack("<Q", k), b"\0\0\0\0")
    assert sorted(struct.unpack("<Q", k)[0] for k in bpf.map_keys(hash_map, 8)) == [0, 1, 2, 42]
    assert bpf.map_delete(hash_map, key)
    assert not bpf.map_delete(hash_map, key)


def test_a_refused_program_brings_the_verifier_log() -> None:
    require_root()
    bad = Asm("bad")
    bad.mov(R0, R2)  # R2 was never written
    bad.exit()
    with pytest.raises(bpf.BpfError) as refused:
        bpf.prog_load(
            bpf.ProgType.CGROUP_SOCK_ADDR,
            bad.assemble(),
            expected_attach_type=bpf.AttachType.CGROUP_INET4_CONNECT,
            name="bad",
        )
    assert "R2 !read_ok" in str(refused.value)
    assert "R2 !read_ok" in refused.value.log


def test_link_lives_as_long_as_its_fd(scratch: Cgroup) -> None:
    ok = Asm("ok")
    ok.ret(1)
    prog = bpf.prog_load(
        bpf.ProgType.CGROUP_SOCK_ADDR,
        ok.assemble(),
        expected_attach_type=bpf.AttachType.CGROUP_INET4_GETPEERNAME,
        name="svcnet_test",
    )
    cg = os.open(scratch.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        info = bpf.prog_info(prog)
        assert info.name == "svcnet_test"
        link = bpf.link_create(prog, cg, bpf.AttachType.CGROUP_INET4_GETPEERNAME)
        assert bpf.link_info(link).prog_id == info.id
        # The program fd is not what holds the hook: the link is.
        os.close(prog)
        prog = -1
        assert bpf.prog_query(cg, bpf.AttachType.CGROUP_INET4_GETPEERNAME) == [info.id]
        assert info.id in bpf.prog_query(
            cg, bpf.AttachType.CGROUP_INET4_GETPEERNAME, effective=True
        )
        os.close(link)
        assert bpf.prog_query(cg, bpf.AttachType.CGROUP_INET4_GETPEERNAME) == []
    finally:
        os.close(cg)
        if prog >= 0:
            os.close(prog)

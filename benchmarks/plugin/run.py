"""Pytest plugin benchmark: how long a test session waits for svcnet.

A temporary folder gets a test file of N tests, each using `svcnet_namespace`
and applying nothing (the seed is there, from `--svcnet-manifests config/`),
and pytest runs it in a fresh process, as a user runs it. Each test body
writes `time.time()` when it starts and when it ends. Measured:

- first test: from launching pytest to the first test body running, with the
  session's svcnet started on the seed (its pods ready) in between; target
  < 1.5 s (issue 13);
- namespace: between the end of one test body and the start of the next, the
  previous test's namespace deleted and the next one's created (plus pytest's
  own work between two tests); target < 100 ms;
- the same session without the plugin's fixtures (`-p no:svcnet`, bodies that
  take no fixture) as the peer: pytest's own start and per-test cost on this
  machine, so the plugin's share is the difference and the ratio.

    python benchmarks/plugin/run.py            # 5 sessions of 20 tests
    python benchmarks/plugin/run.py -n 3 -t 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WITH = """
import json, time
from pathlib import Path
OUT = Path({out!r})

def _mark(name, t0):
    with OUT.open("a") as f:
        f.write(json.dumps([name, t0, time.time()]) + "\\n")

{tests}
"""


def test_file(out: Path, tests: int, plugin: bool) -> str:
    fixture = "svcnet_namespace" if plugin else ""
    body = "\n".join(
        textwrap.dedent(
            f"""
            def test_{i}({fixture}):
                t0 = time.time()
                {"assert svcnet_namespace.name" if plugin else "pass"}
                _mark("t{i}", t0)
            """
        )
        for i in range(tests)
    )
    return WITH.format(out=str(out), tests=body)


def session(tests: int, plugin: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="svcnet-plugin-bench-") as tmp:
        folder = Path(tmp)
        out = folder / "marks.jsonl"
        (folder / "test_bench.py").write_text(test_file(out, tests, plugin))
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
        args += [f"--svcnet-manifests={ROOT / 'config'}"] if plugin else ["-p", "no:svcnet"]
        t0 = time.time()
        done = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=300)
        total = time.time() - t0
        if done.returncode != 0:
            raise SystemExit(f"pytest failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        marks = [json.loads(line) for line in out.read_text().splitlines()]
    starts = [m[1] for m in marks]
    ends = [m[2] for m in marks]
    gaps = [starts[i + 1] - ends[i] for i in range(len(marks) - 1)]
    return {
        "first_test_s": starts[0] - t0,
        "between_tests_ms": statistics.median(gaps) * 1000,
        "between_tests_max_ms": max(gaps) * 1000,
        "session_s": total,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-n", "--sessions", type=int, default=5)
    p.add_argument("-t", "--tests", type=int, default=20)
    p.add_argument("--json", default=None, metavar="FILE")
    args = p.parse_args(argv)
    rows: dict[str, list[dict[str, float]]] = {"plugin": [], "bare pytest": []}
    for _ in range(args.sessions):  # alternating, so drift hits both alike
        rows["plugin"].append(session(args.tests, plugin=True))
        rows["bare pytest"].append(session(args.tests, plugin=False))
    med = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in rows.items()
    }
    print(f"{args.sessions} sessions of {args.tests} tests each, median; seed from config/")
    print()
    print("| session | pytest start -> first test body | between two test bodies | max | whole |")
    print("|---|---:|---:|---:|---:|")
    for name, m in med.items():
        print(
            f"| {name} | {m['first_test_s']:.2f} s | {m['between_tests_ms']:.1f} ms "
            f"| {m['between_tests_max_ms']:.1f} ms | {m['session_s']:.2f} s |"
        )
    plug, bare = med["plugin"], med["bare pytest"]
    print()
    print(
        f"plugin's share: start {plug['first_test_s'] - bare['first_test_s']:.2f} s "
        f"({plug['first_test_s'] / bare['first_test_s']:.1f}x bare pytest), per test "
        f"{plug['between_tests_ms'] - bare['between_tests_ms']:.1f} ms"
    )
    met = plug["first_test_s"] < 1.5 and plug["between_tests_ms"] < 100
    print(f"targets (first test < 1.5 s, namespace set-up and tear-down < 100 ms): "
          f"{'met' if met else 'NOT met'}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, "median": med}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`kubectl explain`, field validation and kinds svcnet does not serve, with both
kubectls, against a running svcnet; `svcnet apply` answers the last as kubectl does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.kubectl.conftest import ROOT, SVCNET, Daemon, make_kubectl

FOO = "apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: x\n"
PDB = """\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""
TYPO = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: typo}
spec:
  replica: 2
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec:
      containers:
      - {name: web, image: nginx}
"""


def test_explain_validation_and_unknown_kinds(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    ns = f"openapi-{kubectl_bin[0]}"
    k = make_kubectl(daemon, kubectl_bin[1], ns, tmp_path)

    out = k.ok("explain", "pod.spec.containers")
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n\nFIELD: containers <[]Container>\n")
    assert "\n  name\t<string> -required-\n" in out
    out = k.ok("explain", "deploy", "--recursive")
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n")
    assert "\n            containerPort\t<integer> -required-\n" in out
    assert k.ok("explain", "svc.spec.ports.targetPort").startswith(
        "KIND:       Service\nVERSION:    v1\n\nFIELD: targetPort <IntOrString>\n"
    )

    for name, text, kind, version in (
        ("f.yaml", FOO, "Foo", "example.com/v1"),
        ("pdb.yaml", PDB, "PodDisruptionBudget", "policy/v1"),
    ):
        path = tmp_path / name
        path.write_text(text)
        x = "x" if kind == "Foo" else "web"
        expected = (
            f'error: resource mapping not found for name: "{x}" namespace: "" from '
            f'"{path}": no matches for kind "{kind}" in version "{version}"\n'
            "ensure CRDs are installed first\n"
        )
        r = k("apply", "-f", str(path))
        assert (r.returncode, r.stderr) == (1, expected)
        cli = subprocess.run(
            [*SVCNET, "apply", "-f", str(path), "-n", ns, "--server", daemon.url],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
            env=dict(os.environ, HOME=str(daemon.home)),
        )
        assert (cli.returncode, cli.stderr) == (1, expected)

    typo = tmp_path / "typo.yaml"
    typo.write_text(TYPO)
    r = k("apply", "--validate=strict", "-f", str(typo))
    assert (r.returncode, r.stderr) == (
        1,
        f'Error from server (BadRequest): error when creating "{typo}": Deployment in version '
        '"v1" cannot be handled as a Deployment: strict decoding error: unknown field '
        '"spec.replica"\n',
    )
    r = k("apply", "--validate=warn", "-f", str(typo))
    assert (r.returncode, r.stdout, r.stderr) == (
        0,
        "deployment.apps/typo created\n",
        'Warning: unknown field "spec.replica"\n',
    )
    k.ok("delete", "deploy", "typo", "--wait=false")
    r = k("apply", "--validate=false", "-f", str(typo))
    assert (r.returncode, r.stdout, r.stderr) == (0, "deployment.apps/typo created\n", "")
    k.ok("delete", "deploy", "typo", "--wait=false")

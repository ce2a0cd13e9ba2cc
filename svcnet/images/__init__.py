"""Built-in images: what a container image name runs as on this machine.

svcnet has no container runtime, so an "image" is a local command. The seed's
images are small stdlib-only scripts in this package, run by file path with
``python -I -S`` so each starts in a few milliseconds (no site-packages, no
svcnet import); images are not imported by the daemon.

An image has a Docker-style ``entrypoint`` and default ``cmd``, and the pod
spec combines them the way Kubernetes does: ``command`` replaces the
entrypoint (and drops cmd), ``args`` replaces cmd.

Images that know when they are serving (``signals_ready``) get a pipe in
``SVCNET_READY_FD`` and write one line to it once their port is bound; the
agent marks the container started on that line instead of guessing.

Names match the way a user thinks of them: the registry host, a
``library/`` prefix, the tag and the digest are ignored, so
``docker.io/gihyodocker/echo:latest`` is ``gihyodocker/echo``. Extra images
come from ``agent.images`` in config/svcnet.yaml: an image name -> its argv, or
-> ``{command, args, workingDir, env}`` as an image's ENTRYPOINT, CMD, WORKDIR
and ENV would be.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from svcnet.k8s.names import normalize_image as normalize

_HERE = Path(__file__).resolve().parent

READY_FD_ENV = "SVCNET_READY_FD"
"""The environment variable naming the fd an image writes its ready line to."""


@dataclass(frozen=True)
class Image:
    name: str
    """The normalized name (`gihyodocker/echo`)."""
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    signals_ready: bool
    """The image writes a line to SVCNET_READY_FD once it is serving."""
    working_dir: str = ""
    """The image's WORKDIR; empty: the container's own directory (the agent's)."""
    env: tuple[tuple[str, str], ...] = ()
    """The image's ENV, under what the pod spec sets."""
    script: str = ""
    """For a built-in image: the script its entrypoint runs (``python -I -S script``),
    which the agent's fork server may run in-process instead (agent/forkserver.py)."""

    @property
    def image_id(self) -> str:
        """A stable digest of what runs, shown as the container's imageID."""
        digest = hashlib.sha256("\0".join(self.entrypoint + self.cmd).encode()).hexdigest()
        return f"svcnet://{self.name}@sha256:{digest}"

    def argv(self, command: Sequence[str], args: Sequence[str]) -> list[str]:
        """Kubernetes' rule for combining the image with the container's command/args."""
        if command:
            return [*command, *args]
        return [*self.entrypoint, *(args or self.cmd)]


class MappingError(ValueError):
    pass


def mapped(name: str, spec: Mapping[str, object] | Sequence[str]) -> Image:
    """An image from an `agent.images` entry: an argv, or command/args/workingDir/env."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"command", "args", "workingDir", "env"}
        if unknown:
            raise MappingError(
                f"agent.images[{name}]: unknown field(s) {', '.join(sorted(unknown))} "
                "(known: command, args, workingDir, env)"
            )
        env = spec.get("env") or {}
        if not isinstance(env, Mapping):
            raise MappingError(f"agent.images[{name}].env: expected a mapping of NAME: value")
        return Image(
            name,
            _strings(spec.get("command"), f"agent.images[{name}].command"),
            _strings(spec.get("args"), f"agent.images[{name}].args"),
            False,
            str(spec.get("workingDir") or ""),
            tuple((str(k), str(v)) for k, v in env.items()),
        )
    return Image(name, _strings(spec, f"agent.images[{name}]"), (), False)


def mappings(value: object, where: str = "agent.images") -> dict[str, Image]:
    """A whole `agent.images` mapping (image name -> argv or spec), checked."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MappingError(f"{where}: expected a mapping of image name to command")
    out = {}
    for name, spec in value.items():
        n = normalize(str(name))
        if not isinstance(spec, Mapping | list):
            raise MappingError(f"{where}[{name}]: expected a list of strings or a mapping")
        out[n] = mapped(n, spec)
    return out


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise MappingError(f"{where}: expected a list of strings")
    return tuple(str(v) for v in value)


def _script(file: str) -> tuple[str, ...]:
    return (*INTERPRETER, str(_HERE / file))


INTERPRETER = (sys.executable, "-I", "-S")
"""How a built-in image's script is run: stdlib only, no site-packages, no svcnet."""


def builtin_scripts() -> list[str]:
    """Every built-in image's script, for the fork server to load once."""
    return sorted({img.script for img in builtin_images().values() if img.script})


def _path(file: str) -> str:
    return str(_HERE / file)


_REDIS_62 = (("REDIS_VERSION", "6.2.17"),)


def _google_samples(image: str) -> tuple[str, ...]:
    """The sample's names: Artifact Registry's (the tutorial's) and the older gcr.io one."""
    return (f"google-samples/containers/gke/{image}", f"google-samples/{image}")


def builtin_images() -> dict[str, Image]:
    return {
        "gihyodocker/echo": Image(
            "gihyodocker/echo", _script("echo.py"), (), True, script=_path("echo.py")
        ),
        "gihyodocker/nginx": Image(
            "gihyodocker/nginx", _script("nginx.py"), (), True, script=_path("nginx.py")
        ),
        # The official image as it starts unconfigured; its CMD is the real one's.
        "nginx": Image(
            "nginx",
            (*_script("nginx.py"), "--welcome"),
            ("nginx", "-g", "daemon off;"),
            True,
            script=_path("nginx.py"),
        ),
        # registry.k8s.io/nginx-slim, the StatefulSet tutorial's (web.yaml): nginx built
        # small, the same welcome page. Registry hosts are not part of the key (normalize).
        "nginx-slim": Image(
            "nginx-slim",
            (*_script("nginx.py"), "--welcome"),
            ("nginx", "-g", "daemon off;"),
            True,
            script=_path("nginx.py"),
        ),
        # The Kubernetes website's guestbook tutorial: Redis (its leader runs the
        # official image), the sample's follower (the official image plus a run.sh
        # that replicates redis-leader) and its PHP frontend. REDIS_VERSION is the
        # official image's ENV; the follower is built FROM redis:6.2.
        "redis": Image(
            "redis",
            _script("redis.py"),
            ("redis-server",),
            True,
            env=(("REDIS_VERSION", "6.0.5"),),
            script=_path("redis.py"),
        ),
        **{
            name: Image(
                name,
                _script("redis.py"),
                ("/run.sh",),
                True,
                env=_REDIS_62,
                script=_path("redis.py"),
            )
            for name in _google_samples("gb-redis-follower")
        },
        **{
            name: Image(
                name,
                _script("guestbook.py"),
                ("apache2-foreground",),
                True,
                script=_path("guestbook.py"),
            )
            for name in _google_samples("gb-frontend")
        },
        # A debug image: whatever the container asks for, on the host's tools.
        # Its WORKDIR is /, as the real image's: the seed's shell prompt shows it.
        "gihyodocker/fundamental": Image("gihyodocker/fundamental", (), ("sh",), False, "/"),
        # busybox (kubectl debug's and the docs' usual image): no ENTRYPOINT, CMD sh, and
        # its applets are this machine's commands of the same names.
        "busybox": Image("busybox", (), ("sh",), False, "/"),
    }


class ImageRegistry:
    """Built-in images plus the `agent.images` mappings (which win)."""

    def __init__(self, extra: Mapping[str, Mapping[str, object] | Sequence[str]] | None = None):
        self._images = builtin_images()
        self._images.update(mappings(extra or {}))
        self._runtime: dict[str, Image] = {}
        """Mappings changed while svcnet runs (the svcnet-images ConfigMap); they win."""

    def set_runtime(self, images: Mapping[str, Image]) -> None:
        """Replace the run-time mappings; pods created afterwards use them."""
        self._runtime = dict(images)

    def resolve(self, image: str) -> Image | None:
        n = normalize(image)
        return self._runtime.get(n) or self._images.get(n)

    def names(self) -> list[str]:
        return sorted({*self._images, *self._runtime})


__all__ = [
    "INTERPRETER",
    "READY_FD_ENV",
    "Image",
    "ImageRegistry",
    "builtin_images",
    "builtin_scripts",
    "normalize",
]

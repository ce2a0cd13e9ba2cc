"""Object names as the API server generates them (generateName)."""

from __future__ import annotations

import secrets

# k8s.io/apimachinery/pkg/util/rand: no vowels (no words), no 0/1/3 (look-alikes).
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
MAX_GENERATED_NAME_LENGTH = 63 - 5


def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: each character mapped into ALPHANUMS, so a hash
    printed in a name (pod-template-hash) spells no words."""
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in s)


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(ALPHANUMS) for _ in range(n))


def generate_name(base: str) -> str:
    """SimpleNameGenerator: cut the base to 58 characters, add 5 random ones."""
    return base[:MAX_GENERATED_NAME_LENGTH] + random_suffix()


def normalize_image(image: str) -> str:
    """`docker.io/library/nginx:1.25@sha256:..` -> `nginx`; `gihyodocker/echo:latest` ->
    `gihyodocker/echo`."""
    name = image.strip().partition("@")[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    first, sep, rest = name.partition("/")
    # A first component with a dot or port, or `localhost`, is a registry host.
    if sep and ("." in first or ":" in first or first == "localhost"):
        name = rest
    if name.startswith("library/"):
        name = name[len("library/") :]
    return name.lower()

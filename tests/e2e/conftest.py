from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, start, stop


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for tool in ("dig", "curl"):
        assert shutil.which(tool), f"{tool} is required (apt-get install dnsutils curl)"
    c = start(tmp_path_factory.mktemp("home"), "160")
    try:
        yield c
    finally:
        if c.proc.poll() is None:
            stop(c)

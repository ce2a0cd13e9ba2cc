"""The gb-frontend stand-in's guestbook.php against the redis stand-ins, with
GET_HOSTS_FROM=env naming them (its HTTP side, and the names resolved through cluster
DNS, are covered end to end in tests/kubectl/test_guestbook_kubectl.py)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.images.servers import SCRIPTS, Resp, free_address, script, wait_for


def load() -> ModuleType:
    # The daemon never imports an image; a test may, to call it without port 80.
    spec = importlib.util.spec_from_file_location("guestbook_image", SCRIPTS / "guestbook.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def php(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, str, str]]:
    """guestbook.php with a leader and a follower on loopback addresses of their own."""
    leader_ip, follower_ip = free_address(6379), free_address(6379)
    monkeypatch.setenv("GET_HOSTS_FROM", "env")
    monkeypatch.setenv("REDIS_LEADER_SERVICE_HOST", leader_ip)
    monkeypatch.setenv("REDIS_FOLLOWER_SERVICE_HOST", follower_ip)
    with script("redis.py", env={"POD_IP": leader_ip}):
        env = {"POD_IP": follower_ip, "GET_HOSTS_FROM": "env",
               "REDIS_LEADER_SERVICE_HOST": leader_ip}  # fmt: skip
        with script("redis.py", "/run.sh", env=env):
            yield load(), leader_ip, follower_ip


def test_set_writes_the_leader_and_get_reads_the_follower(
    php: tuple[ModuleType, str, str],
) -> None:
    gb, leader_ip, follower_ip = php
    run = gb.guestbook_php
    assert run(gb.query_params("cmd=get")) == (b'{"data": ""}', "application/json")
    # `key` is ignored, as the PHP now ignores it; the value is URL-decoded as PHP does.
    assert run(gb.query_params("cmd=set&key=messages&value=hi%2C+there")) == (
        b'{"message": "Updated"}',
        "application/json",
    )
    assert Resp(leader_ip).bulk("GET", "guestbook") == b"hi, there"
    wait_for(
        lambda: run(gb.query_params("cmd=get"))[0] == b'{"data": "hi, there"}',
        "the read through the follower",
    )
    # The value is pasted into the JSON unescaped, exactly as the PHP prints it.
    run(gb.query_params('cmd=set&value=say+"hi"'))
    wait_for(
        lambda: run(gb.query_params("cmd=x"))[0] == b'{"data": "say "hi""}',
        "the raw value through the follower",
    )
    # A missing value is PHP's notice, then an empty string is stored.
    body, _ = run(gb.query_params("cmd=set"))
    assert body == (
        b"<br />\n<b>Notice</b>:  Undefined index: value in "
        b"<b>/var/www/html/guestbook.php</b> on line <b>37</b><br />\n"
        b'{"message": "Updated"}'
    )
    wait_for(lambda: Resp(follower_ip).bulk("GET", "guestbook") == b"", "the empty value")


def test_no_cmd_is_phpinfo_and_a_dead_redis_is_a_fatal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gb = load()
    body, ctype = gb.guestbook_php(gb.query_params("x=1"))
    assert ctype == "text/html; charset=UTF-8"
    assert b"<title>PHP 7.4.33 - phpinfo()</title>" in body
    nobody = free_address(6379)
    monkeypatch.setenv("GET_HOSTS_FROM", "env")
    monkeypatch.setenv("REDIS_LEADER_SERVICE_HOST", nobody)
    body, ctype = gb.guestbook_php(gb.query_params("cmd=set&value=a"))
    assert ctype == "application/json"
    assert body.startswith(
        b"<br />\n<b>Fatal error</b>:  Uncaught Predis\\Connection\\ConnectionException: "
        b"Connection refused [tcp://" + nobody.encode() + b":6379] in "
    )
    assert b"{main}" in body and b"Updated" not in body


def test_query_strings_as_php_reads_them() -> None:
    gb = load()
    assert gb.query_params("cmd=set&value=a+b%26c&value=last&&x[]=1") == {
        "cmd": b"set",
        "value": b"last",
    }
    assert gb.query_params("cmd=&value=%FF") == {"cmd": b"", "value": b"\xff"}

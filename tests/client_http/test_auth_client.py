"""The client maps the server's auth answers to Unauthorized / Forbidden, naming the namespace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import ServerProcess, running_server

from botwire import Forbidden, Memory, Unauthorized

SECRET = "test-secret-0123456789abcdef0123456789"


def _token(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "botwire_server", "token", "create", "--secret", SECRET, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(
        "--token-secret", SECRET, database=tmp_path_factory.mktemp("auth") / "s.db"
    ) as s:
        yield s


def test_tokens_scope_what_the_client_can_do(server: ServerProcess, tmp_path: Path) -> None:
    writer = Memory("tenant-1-alice", url=server.url, token=_token("--ns", "tenant-1-*"))
    writer.append("h", "hi")
    reader = Memory(
        "tenant-1-alice", url=server.url, token=_token("--ns", "tenant-1-*", "--read-only")
    )
    assert reader.get("h") == ["hi"]
    with pytest.raises(Forbidden) as info:
        reader.append("h", "no")
    assert info.value.namespace == "tenant-1-alice"
    outsider = Memory("tenant-2-bob", url=server.url, token=_token("--ns", "tenant-1-*"))
    with pytest.raises(Forbidden):
        outsider.get("h")
    with pytest.raises(Unauthorized):
        Memory("tenant-1-alice", url=server.url).get("h")
    with pytest.raises(Unauthorized):
        Memory("tenant-1-alice", url=server.url, token="not.a.jwt").get("h")
    assert writer.get("h") == ["hi"]

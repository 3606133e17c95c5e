"""Migrating from server-memory: ``botwire-mcp import memory.jsonl`` (a fresh process, as a user
runs it), then the graph tools serve exactly the file's graph; a second import adds nothing; a
malformed file is refused whole, naming the line, with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session
from mcp_helpers import mcp_env

from botwire import Memory
from botwire_mcp import ServerConfig, build_server

# What the reference server's saveGraph writes: entities first, then relations, one per line.
ENTITIES = [
    {"name": "Alice", "entityType": "person", "observations": ["likes tea", "lives in Lyon"]},
    {"name": "Acme", "entityType": "company", "observations": []},
    {"name": "a/b #1", "entityType": "weird", "observations": ["🧠"]},
]
RELATIONS = [
    {"from": "Alice", "to": "Acme", "relationType": "works at"},
    {"from": "Acme", "to": "a/b #1", "relationType": "owns"},
]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def _import(memory_url: str, namespace: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botwire_mcp", "--namespace", namespace, "import", str(path)],
        env=mcp_env(memory_url, namespace),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.asyncio
async def test_import_memory_jsonl_then_serve_it(
    memory_url: str, namespace: str, tmp_path: Path
) -> None:
    file = _write(
        tmp_path / "memory.jsonl",
        [{"type": "entity", **e} for e in ENTITIES]
        + [{"type": "relation", **r} for r in RELATIONS],
    )
    first = _import(memory_url, namespace, file)
    assert first.returncode == 0, first.stderr
    assert "3 entities and 2 relations created" in first.stdout

    server = build_server(ServerConfig(namespace=namespace, url=memory_url))
    async with create_connected_server_and_client_session(server) as s:
        graph = (await s.call_tool("read_graph", {})).structuredContent
        assert graph == {"entities": ENTITIES, "relations": RELATIONS}
        # an agent adds to it; re-importing the old file must not undo or duplicate anything
        await s.call_tool(
            "add_observations",
            {"observations": [{"entityName": "Alice", "contents": ["joined botwire"]}]},
        )

    again = _import(memory_url, namespace, file)
    assert again.returncode == 0, again.stderr
    assert "0 entities and 0 relations created, 0 observations added" in again.stdout
    with Memory(namespace, url=memory_url) as m:
        assert m.get("graph/e/Alice")["observations"] == [
            "likes tea",
            "lives in Lyon",
            "joined botwire",
        ]


def test_a_malformed_file_is_refused_whole(memory_url: str, namespace: str, tmp_path: Path) -> None:
    file = tmp_path / "memory.jsonl"
    file.write_text(
        json.dumps({"type": "entity", **ENTITIES[0]})
        + "\n\n"
        + '{"type": "entity", "name": "Broken", "entityType": 7, "observations": []}\n',
        encoding="utf-8",
    )
    proc = _import(memory_url, namespace, file)
    assert proc.returncode == 2
    assert "line 3" in proc.stderr and "'entityType' must be a string" in proc.stderr
    with Memory(namespace, url=memory_url) as m:
        assert m.list() == []  # validated before the first write

"""The knowledge graph stays whole under races, failed calls and stray values in its keys.

- a relation created while one of its ends is deleted never outlives that end (two botwire-mcp
  processes on one store, as two desktop clients would be);
- a create call that fails writes nothing (a name or relation too long for a key);
- a value of the wrong shape under ``graph/`` (one ``memory_set`` away for any client) is
  skipped by the readers with a warning naming it, and refused by the writers with an error
  naming it and the fix; the key, not a stored ``name`` field, is an entity's name.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from mcp.shared.memory import create_connected_server_and_client_session
from mcp_helpers import mcp_env, stdio_session

from botwire import Memory
from botwire_mcp import ServerConfig, build_server


def _entity(name: str, *observations: str) -> dict[str, Any]:
    return {"name": name, "entityType": "t", "observations": list(observations)}


async def _call(session: Any, tool: str, **args: Any) -> tuple[bool, Any, str]:
    result = await session.call_tool(tool, args)
    return result.isError, result.structuredContent, result.content[0].text


@pytest.mark.asyncio
async def test_a_relation_racing_the_deletion_of_its_end_never_dangles(
    memory_url: str, namespace: str
) -> None:
    # Before the fix, 17 to 33 of 40 single races left a relation to a deleted entity.
    env = mcp_env(memory_url, namespace)
    rounds, pairs = 6, 5
    async with stdio_session(env) as a, stdio_session(env) as b:
        for i in range(rounds):
            xs, ys = [f"X{i}.{j}" for j in range(pairs)], [f"Y{i}.{j}" for j in range(pairs)]
            err, _, text = await _call(a, "create_entities", entities=[_entity(n) for n in xs + ys])
            assert not err, text
            outcomes = await asyncio.gather(
                *(
                    _call(
                        a, "create_relations", relations=[{"from": x, "to": y, "relationType": "r"}]
                    )
                    for x, y in zip(xs, ys, strict=True)
                ),
                *(_call(b, "delete_entities", entityNames=[x]) for x in xs),
            )
            for x, (err, _, text) in zip(xs, outcomes[:pairs], strict=True):
                # the relation came first (and went with X), or X was gone when it was checked
                assert not err or f"Entity with name {x} not found" in text
            assert not any(err for err, _, _ in outcomes[pairs:])
    with Memory(namespace, url=memory_url) as m:
        assert m.list("graph/r/") == []
        assert all(k.startswith("graph/e/Y") for k in m.list("graph/e/"))
        assert len(m.list("graph/e/")) == rounds * pairs


@pytest.mark.asyncio
async def test_a_create_call_that_fails_writes_nothing(memory_url: str, namespace: str) -> None:
    server = build_server(ServerConfig(namespace=namespace, url=memory_url))
    async with create_connected_server_and_client_session(server) as s:
        err, _, text = await _call(
            s,
            "create_entities",
            entities=[_entity("First", "kept?"), _entity("L" * 1020), _entity("Third")],
        )
        assert err
        assert "entity name 'LLLL" in text and "too long" in text and "1016" in text
        assert "Nothing was created" in text

        # both ends fit a key, the relation's key ('graph/r/' + JSON of both) does not
        a, b = "A" * 507, "B" * 507
        err, _, text = await _call(s, "create_entities", entities=[_entity(a), _entity(b)])
        assert not err, text
        err, _, text = await _call(
            s,
            "create_relations",
            relations=[
                {"from": a, "to": b, "relationType": "short"},
                {"from": b, "to": a, "relationType": "x" * 10},
            ],
        )
        assert err
        assert "relation 'AAAA" in text and "1024" in text and "[from, to, relationType]" in text

        err, graph, _ = await _call(s, "read_graph")
        assert [e["name"] for e in graph["entities"]] == [a, b] and graph["relations"] == []
        # nothing half-done: the first batch can be created afterwards, whole
        err, out, _ = await _call(s, "create_entities", entities=[_entity("First")])
        assert out == {"entities": [_entity("First")]}
    with Memory(namespace, url=memory_url) as m:
        assert m.list("graph/r/") == []


@pytest.mark.asyncio
async def test_stray_values_in_the_graph_keys_are_skipped_and_named(
    memory_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = build_server(ServerConfig(namespace=namespace, url=memory_url))
    alice = _entity("Alice", "likes tea")
    knows = {"from": "Alice", "to": "Alice", "relationType": "knows"}
    async with create_connected_server_and_client_session(server) as s:
        await _call(s, "create_entities", entities=[alice])
        await _call(s, "create_relations", relations=[knows])
        # what any client of the namespace can do with the key-value tools
        for key, value in [
            ("graph/e/note", "just a string"),
            ("graph/e/Half", {"name": "Half", "entityType": "t", "observations": [1]}),
            ("graph/r/not json", {"from": "a", "to": "b", "relationType": "c"}),
            ('graph/r/["Alice", "Alice", "likes"]', 5),
        ]:
            err, _, text = await _call(s, "memory_set", key=key, value=value)
            assert not err, text

        caplog.set_level(logging.WARNING, logger="botwire_mcp")
        for tool, args in [
            ("read_graph", {}),
            ("search_nodes", {"query": "tea"}),
            ("open_nodes", {"names": ["Alice", "note"]}),
        ]:
            err, out, text = await _call(s, tool, **args)
            assert not err, f"{tool}: {text}"
            assert out == {"entities": [alice], "relations": [knows]}, tool
        warned = caplog.text
        for key in (
            "graph/e/note",
            "graph/e/Half",
            "graph/r/not json",
            'graph/r/["Alice", "Alice", "likes"]',
        ):
            assert repr(key) in warned
        assert repr(namespace) in warned

        # writers name the key and the fix instead of failing with an AttributeError
        for tool, args in [
            ("add_observations", {"observations": [{"entityName": "note", "contents": ["x"]}]}),
            ("create_entities", {"entities": [_entity("note")]}),
            ("create_relations", {"relations": [{**knows, "to": "note"}]}),
        ]:
            err, _, text = await _call(s, tool, **args)
            assert err, tool
            assert "'graph/e/note'" in text and namespace in text and "memory_delete" in text

        # and the delete tools clean up
        err, out, text = await _call(s, "delete_entities", entityNames=["note", "Half"])
        assert out["message"] == "Entities deleted successfully", text
        err, graph, _ = await _call(s, "read_graph")
        assert graph == {"entities": [alice], "relations": [knows]}


@pytest.mark.asyncio
async def test_an_entity_is_named_by_its_key(memory_url: str, namespace: str) -> None:
    """A value whose stored 'name' differs from its key: every tool uses the key's name."""
    server = build_server(ServerConfig(namespace=namespace, url=memory_url))
    stored = {"name": "Other", "entityType": "t", "observations": [], "seq": 1}
    async with create_connected_server_and_client_session(server) as s:
        await _call(s, "memory_set", key="graph/e/Mismatch", value=stored)
        err, out, text = await _call(
            s, "add_observations", observations=[{"entityName": "Mismatch", "contents": ["o"]}]
        )
        assert not err, text
        err, out, _ = await _call(s, "read_graph")
        assert out["entities"] == [_entity("Mismatch", "o")]
        err, out, _ = await _call(s, "open_nodes", names=["Mismatch"])
        assert [e["name"] for e in out["entities"]] == ["Mismatch"]
        err, out, _ = await _call(s, "open_nodes", names=["Other"])
        assert out["entities"] == []
    with Memory(namespace, url=memory_url) as m:  # the rewrite stored the key's name
        assert m.get("graph/e/Mismatch")["name"] == "Mismatch"

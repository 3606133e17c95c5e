"""The nine knowledge-graph tools give the reference server-memory's results.

Expected results are written from the reference implementation's documented behaviour
(modelcontextprotocol/servers src/memory: KnowledgeGraphManager and the tool handlers): duplicate
names within a call are skipped, existing entities and relations are not re-created, a relation
needs both ends, add_observations keeps only contents the entity lacks (checked against the
entity as it was) and fails whole when an entity is missing, the delete tools answer
{success, message} with the reference's messages, search is case-insensitive over name, type and
observations, and search/open include every relation with at least one end among the results.
The session is a real MCP client session on the real server object, on both backends.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp.shared.memory import create_connected_server_and_client_session

from botwire import Memory
from botwire_mcp import ServerConfig, build_server

A = {"name": "Alice", "entityType": "person", "observations": ["likes tea"]}
B = {"name": "Bob", "entityType": "person", "observations": []}
C = {"name": "Carol", "entityType": "robot", "observations": ["beeps"]}
AB = {"from": "Alice", "to": "Bob", "relationType": "knows"}
BA = {"from": "Bob", "to": "Alice", "relationType": "knows"}


async def _ok(session: Any, tool: str, **args: Any) -> tuple[Any, str]:
    result = await session.call_tool(tool, args)
    assert not result.isError, result.content
    return result.structuredContent, result.content[0].text


async def _error(session: Any, tool: str, **args: Any) -> str:
    result = await session.call_tool(tool, args)
    assert result.isError
    return result.content[0].text


@pytest.mark.asyncio
async def test_graph_tools_match_the_reference_server(memory_url: str, namespace: str) -> None:
    server = build_server(ServerConfig(namespace=namespace, url=memory_url))
    async with create_connected_server_and_client_session(server) as s:
        out, text = await _ok(
            s,
            "create_entities",
            entities=[A, B, {"name": "Alice", "entityType": "other", "observations": ["dup"]}],
        )
        assert out == {"entities": [A, B]}
        assert text == json.dumps([A, B], indent=2)  # JSON.stringify(result, null, 2)
        out, _ = await _ok(s, "create_entities", entities=[{**A, "observations": ["ignored"]}, C])
        assert out == {"entities": [C]}

        out, text = await _ok(s, "create_relations", relations=[AB, AB, BA])
        assert out == {"relations": [AB, BA]} and json.loads(text) == [AB, BA]
        assert (await _ok(s, "create_relations", relations=[AB]))[0] == {"relations": []}
        err = await _error(
            s,
            "create_relations",
            relations=[
                {"from": "Carol", "to": "Bob", "relationType": "mentors"},
                {"from": "Alice", "to": "Zed", "relationType": "knows"},
            ],
        )
        assert "Entity with name Zed not found" in err

        out, _ = await _ok(
            s,
            "add_observations",
            observations=[
                {
                    "entityName": "Alice",
                    "contents": ["likes tea", "speaks French", "speaks French"],
                },
                {"entityName": "Bob", "contents": ["plays chess"]},
            ],
        )
        assert out == {
            "results": [
                {"entityName": "Alice", "addedObservations": ["speaks French", "speaks French"]},
                {"entityName": "Bob", "addedObservations": ["plays chess"]},
            ]
        }
        err = await _error(
            s,
            "add_observations",
            observations=[
                {"entityName": "Bob", "contents": ["never stored"]},
                {"entityName": "Nobody", "contents": ["x"]},
            ],
        )
        assert "Entity with name Nobody not found" in err

        out, text = await _ok(
            s,
            "delete_observations",
            deletions=[
                {"entityName": "Alice", "observations": ["speaks French", "not there"]},
                {"entityName": "Ghost", "observations": ["x"]},
            ],
        )
        message = "Deleted 2 of 3 observations. Entities not found: Ghost"
        assert out == {"success": True, "message": message} and text == message
        out, _ = await _ok(
            s,
            "delete_observations",
            deletions=[{"entityName": "Bob", "observations": ["plays chess"]}],
        )
        assert out["message"] == "Observations deleted successfully"

        out, text = await _ok(
            s, "delete_relations", relations=[BA, {"from": "X", "to": "Y", "relationType": "z"}]
        )
        assert text == "Deleted 1 of 2 relations. The rest matched nothing."
        assert (
            await _ok(
                s,
                "create_relations",
                relations=[{"from": "Carol", "to": "Bob", "relationType": "mentors"}],
            )
        )[0]["relations"]

        found, _ = await _ok(s, "search_nodes", query="TEA")
        assert found == {"entities": [A], "relations": [AB]}
        found, _ = await _ok(s, "search_nodes", query="person")
        assert [e["name"] for e in found["entities"]] == ["Alice", "Bob"]
        assert found["relations"] == [AB, {"from": "Carol", "to": "Bob", "relationType": "mentors"}]
        opened, text = await _ok(s, "open_nodes", names=["Bob", "Nobody"])
        assert opened == {
            "entities": [B],
            "relations": [AB, {"from": "Carol", "to": "Bob", "relationType": "mentors"}],
        }
        assert json.loads(text) == opened

        out, text = await _ok(s, "delete_entities", entityNames=["Bob", "Ghost"])
        assert text == "Deleted 1 of 2 entities. Not found: Ghost" and out["success"] is True
        out, _ = await _ok(s, "delete_entities", entityNames=["Carol"])
        assert out["message"] == "Entities deleted successfully"

        graph, text = await _ok(s, "read_graph")
        assert graph == {"entities": [A], "relations": []}  # Bob's relations went with him
        assert json.loads(text) == graph

    with Memory(namespace, url=memory_url) as m:  # nothing half-written by the failed calls
        assert not [k for k in m.list("graph/") if "Zed" in k or "Nobody" in k]
        assert m.list("graph/r/") == []


@pytest.mark.asyncio
async def test_graph_names_round_trip_exactly(memory_url: str, namespace: str) -> None:
    """Names with '/', '#', '?', '%', spaces, quotes and emoji are keys like any other."""
    names = ["a/b", "a#b", "q?x=1", "100%", "two words", 'say "hi"', "🧠 memory", "élan"]
    server = build_server(ServerConfig(namespace=namespace, url=memory_url))
    async with create_connected_server_and_client_session(server) as s:
        entities = [{"name": n, "entityType": "t", "observations": [n]} for n in names]
        assert (await _ok(s, "create_entities", entities=entities))[0]["entities"] == entities
        await _ok(
            s,
            "create_relations",
            relations=[{"from": names[0], "to": n, "relationType": "r/"} for n in names[1:]],
        )
        graph, _ = await _ok(s, "open_nodes", names=names)
        assert graph["entities"] == entities and len(graph["relations"]) == len(names) - 1


@pytest.mark.asyncio
async def test_bad_graph_input_is_refused_by_schema(memory_url: str, namespace: str) -> None:
    server = build_server(ServerConfig(namespace=namespace, url=memory_url))
    async with create_connected_server_and_client_session(server) as s:
        err = await _error(s, "create_entities", entities=[{"name": "NoType"}])
        assert "entityType" in err
        err = await _error(s, "search_nodes", query="x" * 2049)
        assert "2048" in err
        err = await _error(s, "memory_set", key="", value=1)
        assert "key" in err.lower()
    with Memory(namespace, url=memory_url) as m:
        assert m.list() == []


@pytest.mark.asyncio
async def test_allow_namespace_arg_lets_a_call_pick_its_namespace(
    memory_url: str, namespace: str
) -> None:
    other = namespace + "-other"
    server = build_server(
        ServerConfig(namespace=namespace, url=memory_url, allow_namespace_arg=True)
    )
    async with create_connected_server_and_client_session(server) as s:
        out, _ = await _ok(s, "memory_set", key="k", value=[1, 2], namespace=other)
        assert out["namespace"] == other
        got, _ = await _ok(s, "memory_get", key="k")
        assert got["found"] is False  # the default namespace is untouched
        err = await _error(s, "memory_set", key="k", value=1, namespace="bad/namespace")
        assert "bad/namespace" in err
    with Memory(other, url=memory_url) as m:
        assert m.get("k") == [1, 2]

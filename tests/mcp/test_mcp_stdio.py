"""A real MCP client over stdio: the tools' schemas, every tool called, and a second fresh
botwire-mcp process that sees what the first stored (embedded store and a real botwire-server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session
from mcp_helpers import call, mcp_env, stdio_session, structured
from pydantic import AnyUrl

from botwire import Memory
from botwire_mcp import ServerConfig, build_server, resource_uri

KV_TOOLS = {
    "memory_get",
    "memory_set",
    "memory_append",
    "memory_tail",
    "memory_list",
    "memory_delete",
}
GRAPH_TOOLS = {
    "create_entities",
    "create_relations",
    "add_observations",
    "delete_entities",
    "delete_observations",
    "delete_relations",
    "read_graph",
    "search_nodes",
    "open_nodes",
}


@pytest.mark.asyncio
async def test_stdio_session_lists_tools_calls_every_tool_and_a_fresh_process_sees_it(
    memory_url: str, namespace: str
) -> None:
    env = mcp_env(memory_url, namespace)
    async with stdio_session(env) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == KV_TOOLS | GRAPH_TOOLS
        # typed input schemas, as a model sees them
        set_schema = tools["memory_set"].inputSchema
        assert set_schema["required"] == ["key", "value"]
        assert {"ttl", "if_version"} <= set(set_schema["properties"])
        assert set(tools["memory_append"].inputSchema["required"]) == {"key", "items"}
        entity = tools["create_entities"].inputSchema
        assert entity["required"] == ["entities"]
        assert tools["delete_entities"].inputSchema["required"] == ["entityNames"]
        assert tools["read_graph"].inputSchema.get("required", []) == []
        assert all(t.outputSchema for t in tools.values())
        assert tools["read_graph"].annotations.readOnlyHint is True
        assert tools["delete_entities"].annotations.destructiveHint is True

        # every key-value tool
        value = {"step": 3, "done": ["research", "outline"], "ratio": 0.5, "ok": None}
        v1 = structured(await call(s, "memory_set", key="workflow/state", value=value))
        assert v1["version"] > 0 and v1["namespace"] == namespace
        got = structured(await call(s, "memory_get", key="workflow/state"))
        assert got["found"] and got["value"] == value and got["version"] == v1["version"]
        stale = await s.call_tool(
            "memory_set", {"key": "workflow/state", "value": 1, "if_version": v1["version"] - 1}
        )
        assert stale.isError and "workflow/state" in stale.content[0].text
        await call(s, "memory_set", key="tmp", value="x", ttl=3600)
        assert structured(await call(s, "memory_get", key="tmp"))["expires_at"] is not None
        assert (
            structured(await call(s, "memory_append", key="chat", items=["a", "b"]))["length"] == 2
        )
        assert (
            structured(await call(s, "memory_append", key="chat", items=[{"c": 1}], max_len=2))[
                "length"
            ]
            == 2
        )
        assert structured(await call(s, "memory_tail", key="chat", n=5))["items"] == ["b", {"c": 1}]
        page1 = structured(await call(s, "memory_list", limit=2))
        assert page1["keys"] == ["chat", "tmp"] and page1["cursor"] == "tmp"
        page2 = structured(await call(s, "memory_list", cursor=page1["cursor"], limit=2))
        assert page2 == {"namespace": namespace, "keys": ["workflow/state"], "cursor": None}
        assert structured(await call(s, "memory_list", prefix="work"))["keys"] == ["workflow/state"]
        assert structured(await call(s, "memory_delete", key="tmp"))["deleted"] is True
        assert structured(await call(s, "memory_delete", key="tmp"))["deleted"] is False
        missing = structured(await call(s, "memory_get", key="tmp"))
        assert missing["found"] is False and missing["value"] is None

        # the namespace is the operator's: a call may not pick another one
        other = await s.call_tool("memory_get", {"key": "x", "namespace": "someone-else"})
        assert other.isError
        assert "--allow-namespace-arg" in other.content[0].text
        assert "someone-else" in other.content[0].text

        # every graph tool
        await call(
            s,
            "create_entities",
            entities=[
                {"name": "Alice", "entityType": "person", "observations": ["likes tea"]},
                {"name": "Bob", "entityType": "person", "observations": []},
            ],
        )
        await call(
            s,
            "create_relations",
            relations=[{"from": "Alice", "to": "Bob", "relationType": "knows"}],
        )
        await call(
            s, "add_observations", observations=[{"entityName": "Bob", "contents": ["plays chess"]}]
        )
        await call(
            s,
            "create_entities",
            entities=[{"name": "Tmp", "entityType": "note", "observations": ["x", "y"]}],
        )
        await call(
            s, "delete_observations", deletions=[{"entityName": "Tmp", "observations": ["x"]}]
        )
        await call(
            s,
            "create_relations",
            relations=[{"from": "Tmp", "to": "Bob", "relationType": "mentions"}],
        )
        await call(
            s,
            "delete_relations",
            relations=[{"from": "Tmp", "to": "Bob", "relationType": "mentions"}],
        )
        await call(s, "delete_entities", entityNames=["Tmp"])
        found = structured(await call(s, "search_nodes", query="CHESS"))
        assert [e["name"] for e in found["entities"]] == ["Bob"]
        opened = structured(await call(s, "open_nodes", names=["Alice"]))
        assert opened["relations"] == [{"from": "Alice", "to": "Bob", "relationType": "knows"}]

    # a second, fresh server process on the same backend sees everything
    async with stdio_session(env) as s2:
        got = structured(await call(s2, "memory_get", key="workflow/state"))
        assert got["value"] == value
        graph = structured(await call(s2, "read_graph"))
        assert graph == {
            "entities": [
                {"name": "Alice", "entityType": "person", "observations": ["likes tea"]},
                {"name": "Bob", "entityType": "person", "observations": ["plays chess"]},
            ],
            "relations": [{"from": "Alice", "to": "Bob", "relationType": "knows"}],
        }
        # resources: memory://{namespace}/{key}, the key percent-encoded
        templates = (await s2.list_resource_templates()).resourceTemplates
        assert [t.uriTemplate for t in templates] == ["memory://{namespace}/{key}"]
        res = await s2.read_resource(AnyUrl(f"memory://{namespace}/workflow%2Fstate"))
        assert json.loads(res.contents[0].text) == value
        assert res.contents[0].mimeType == "application/json"

    # and so does a plain botwire client: one store behind every door
    with Memory(namespace, url=memory_url) as m:
        assert m.get("chat") == ["b", {"c": 1}]


@pytest.mark.asyncio
async def test_resources_address_every_namespace_and_key(memory_url: str, namespace: str) -> None:
    """Namespaces may hold ':' and '@', which an unencoded URI authority reads as a port or a
    user: 'user:0042' became 'user:42' (another tenant's data) and 'chat:main' no URI at all."""
    keys = ["k", "a/b", "hé 🎉", "q?x=1#f", "100%", "a%2Fb", "sp ace", "../x"]
    spaces = [f"{namespace}:0042", f"{namespace}:42", f"{namespace}@b", f"chat:{namespace}"]
    for ns in spaces:
        with Memory(ns, url=memory_url) as m:
            for key in keys:
                m.set(key, {"ns": ns, "key": key})
    env = mcp_env(memory_url, spaces[0])
    async with stdio_session(env, "--allow-namespace-arg") as s:
        for ns in spaces:
            for key in keys:
                res = await s.read_resource(AnyUrl(resource_uri(ns, key)))
                assert json.loads(res.contents[0].text) == {"ns": ns, "key": key}
    assert resource_uri("user:0042", "a/b") == "memory://user%3A0042/a%2Fb"
    for key in (".", ".."):  # URI parsers drop dot segments, even encoded: no URI for these
        with pytest.raises(ValueError, match="memory_get"):
            resource_uri(namespace, key)


@pytest.mark.asyncio
async def test_a_value_too_deep_for_a_tool_result_points_to_its_resource(
    memory_url: str, namespace: str
) -> None:
    deep: object = "leaf"
    for _ in range(300):  # legal for botwire, too deep for the SDK's JSON in a tool result
        deep = [deep]
    with Memory(namespace, url=memory_url) as m:
        m.set("doc", deep)
        m.set("fine", [[[["leaf"]]]])
        m.append("log", deep)
    async with stdio_session(mcp_env(memory_url, namespace)) as s:
        for tool, what in [("memory_get", "the value of"), ("memory_tail", "the tail of")]:
            key = "doc" if tool == "memory_get" else "log"
            result = await s.call_tool(tool, {"key": key})
            assert result.isError, tool
            text = result.content[0].text
            assert f"{what} key {key!r} in namespace {namespace!r}" in text
            assert "at most 190" in text and f"memory://{namespace}/{key}" in text
        res = await s.read_resource(AnyUrl(resource_uri(namespace, "doc")))
        assert json.loads(res.contents[0].text) == deep
        assert structured(await call(s, "memory_get", key="fine"))["value"] == [[[["leaf"]]]]


@pytest.mark.asyncio
async def test_schemas_bound_ttl_and_offer_namespace_only_when_allowed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    for allowed in (False, True):
        server = build_server(ServerConfig(namespace="mine", url=url, allow_namespace_arg=allowed))
        async with create_connected_server_and_client_session(server) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            for name in KV_TOOLS:
                assert ("namespace" in tools[name].inputSchema["properties"]) is allowed, name
            for name in ("memory_set", "memory_append"):  # botwire refuses ttl >= 1e10
                ttl = tools[name].inputSchema["properties"]["ttl"]["anyOf"][0]
                assert ttl["exclusiveMinimum"] == 0 and ttl["exclusiveMaximum"] == 1e10
            too_long = await s.call_tool("memory_set", {"key": "k", "value": 1, "ttl": 1e10})
            assert too_long.isError and "less than 10000000000" in too_long.content[0].text
            # a namespace passed anyway is refused by name, never silently ignored
            other = await s.call_tool("memory_set", {"key": "k", "value": 1, "namespace": "other"})
            assert other.isError is not allowed
            if not allowed:
                assert "--allow-namespace-arg" in other.content[0].text

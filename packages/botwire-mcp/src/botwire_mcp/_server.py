"""The botwire MCP server: key-value tools, the reference knowledge-graph tools, resources."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, unquote

from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from botwire import AsyncMemory, Forbidden, InvalidArgument, Unauthorized

from ._auth import Principal, current_principal, require
from ._compat import Context, ResourceError, ToolError, new_server
from ._errors import CallerRefused, anticipated, check_depth, public_url
from ._graph import KnowledgeGraph

# The SDK resolves the tools' (string) annotations in this module: the models are imported here.
from ._models import (
    AppendResult,
    DeleteResult,
    EntitiesOut,
    Entity,
    GetResult,
    GraphOut,
    ListResult,
    ObservationAdd,
    ObservationDelete,
    Relation,
    RelationsOut,
    ResultsOut,
    SetResult,
    StatusOut,
    TailResult,
)

__all__ = ["ServerConfig", "build_server", "resource_uri"]

INSTRUCTIONS = (
    "Persistent memory backed by botwire: it survives restarts and is shared by every client of "
    "this namespace. memory_* tools read and write JSON values by key; the knowledge-graph tools "
    "(create_entities, add_observations, search_nodes, ...) are those of the reference "
    "server-memory."
)


@dataclass
class ServerConfig:
    """How the server reaches memory and whom it lets in."""

    namespace: str = "mcp"
    url: str | None = None  # None: BOTWIRE_URL, else the embedded store
    token: str | None = None  # botwire-server token of the operator (BOTWIRE_TOKEN)
    allow_namespace_arg: bool = False
    auth: bool = False  # HTTP with a token secret: every call must carry a verified token


def resource_uri(namespace: str, key: str) -> str:
    """``memory://{namespace}/{key}``, both percent-encoded: the key may hold ``/`` or ``?``,
    the namespace ``:`` or ``@``, which a URI parser would read as a port or a user.

    Keys ``.`` and ``..`` have no such URI (URI parsers drop dot segments, even encoded ones):
    :class:`ValueError`; read them with ``memory_get``."""
    if key in (".", ".."):
        raise ValueError(
            f"botwire-mcp: key {key!r} of namespace {namespace!r} cannot be addressed as a "
            "memory:// resource (URI parsers remove '.' and '..' path segments); read it with "
            "the memory_get tool."
        )
    return f"memory://{quote(namespace, safe='')}/{quote(key, safe='')}"


def _result(text_of: Any, structured: dict[str, Any], *, raw: bool = False) -> CallToolResult:
    """The reference server's result: text = JSON.stringify(result, null, 2) (or a message)."""
    text = text_of if raw else json.dumps(text_of, indent=2, ensure_ascii=False)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structuredContent=structured
    )


_READ = ToolAnnotations(
    readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False
)
_ADD = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
)
_DESTROY = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
)

NamespaceArg = Annotated[
    str | None,
    Field(description="Namespace to use instead of the server's (only if the operator allows it)"),
]
# Without --allow-namespace-arg the argument is left out of the tools' schemas, but still
# accepted, so a call passing one is refused by name instead of served from another namespace.
HiddenNamespaceArg = Annotated[SkipJsonSchema[str | None], Field(description="not offered")]


class _Memories:
    """One ``AsyncMemory`` per namespace, created on first use inside the server's event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._by_ns: dict[str, AsyncMemory] = {}

    def resolve(self, namespace: str | None, ctx: Any, *, write: bool) -> AsyncMemory:
        config = self.config
        if (
            namespace is not None
            and namespace != config.namespace
            and not config.allow_namespace_arg
        ):
            raise InvalidArgument(
                f"botwire-mcp: this server serves namespace {config.namespace!r} only; "
                f"it was asked for {namespace!r}. Omit 'namespace', or start the server "
                "with --allow-namespace-arg."
            )
        ns = namespace or config.namespace
        principal = _principal(ctx)
        try:
            if config.auth and principal is None:  # fail closed: never serve an unchecked call
                raise Unauthorized("botwire-mcp: this call carried no verified token.")
            require(ns, write=write, principal=principal)
        except (Unauthorized, Forbidden) as exc:  # the caller's token: the caller's to fix
            raise CallerRefused(str(exc)) from exc
        memory = self._by_ns.get(ns)
        if memory is None:
            memory = AsyncMemory(ns, url=config.url, token=config.token)
            self._by_ns[ns] = memory
        return memory

    def backend(self) -> str:
        """The botwire backend's URL, without credentials (for messages)."""
        url = next((m.url for m in self._by_ns.values()), None) or self.config.url
        return public_url(url)


def _principal(ctx: Any) -> Principal | None:
    """The verified token of this HTTP call (set by the auth middleware); None on stdio."""
    principal = current_principal()
    if principal is not None or ctx is None:
        return principal
    try:
        request = ctx.request_context.request
    except (AttributeError, LookupError, ValueError):
        return None
    scope = getattr(request, "scope", None) or {}
    verified: Principal | None = scope.get("state", {}).get("botwire_principal")
    return verified


def _tool(server: Any, memories: _Memories, **options: Any) -> Callable[[Any], Any]:
    """``server.tool(**options)`` around a tool whose anticipated errors reach the client."""

    def register(fn: Callable[..., Awaitable[Any]]) -> Any:
        return server.tool(**options)(anticipated(ToolError, memories.backend)(fn))

    return register


def _kv_tool(server: Any, memories: _Memories, **options: Any) -> Callable[[Any], Any]:
    """:func:`_tool` for a key-value tool: its ``namespace`` argument is in the schema only
    with --allow-namespace-arg."""

    def register(fn: Callable[..., Awaitable[Any]]) -> Any:
        visible = memories.config.allow_namespace_arg
        fn.__annotations__["namespace"] = NamespaceArg if visible else HiddenNamespaceArg
        return _tool(server, memories, **options)(fn)

    return register


def _resource(server: Any, memories: _Memories, uri: str, **options: Any) -> Callable[[Any], Any]:
    """``server.resource(uri, **options)`` around a resource whose anticipated errors reach
    the client."""

    def register(fn: Callable[..., Awaitable[Any]]) -> Any:
        return server.resource(uri, **options)(anticipated(ResourceError, memories.backend)(fn))

    return register


def _result_uri(namespace: str, key: str) -> str | None:
    try:
        return resource_uri(namespace, key)
    except ValueError:
        return None


def build_server(config: ServerConfig) -> Any:
    """An MCP server object (FastMCP on mcp 1.x, MCPServer on 2.x) with every tool registered."""
    server = new_server("botwire-memory", INSTRUCTIONS)
    memories = _Memories(config)
    _register_kv(server, memories)
    _register_graph(server, memories)
    _register_resources(server, memories)
    return server


def _register_kv(server: Any, memories: _Memories) -> None:
    @_kv_tool(
        server,
        memories,
        description="Read the JSON value stored under a key (found=false if absent).",
        annotations=_READ,
    )
    async def memory_get(key: str, ctx: Context, namespace: NamespaceArg = None) -> GetResult:
        m = memories.resolve(namespace, ctx, write=False)
        e = await m.entry(key)
        if e is None:
            return GetResult(namespace=m.namespace, key=key, found=False)
        uri = _result_uri(m.namespace, key)
        check_depth(e.value, what="the value of", namespace=m.namespace, key=key, uri=uri)
        return GetResult(
            namespace=m.namespace,
            key=key,
            found=True,
            value=e.value,
            version=e.version,
            expires_at=e.expires_at,
        )

    @_kv_tool(
        server,
        memories,
        description=(
            "Store any JSON value under a key. ttl: seconds until it expires. "
            "if_version: write only if the key is still at that version "
            "(compare-and-set); returns the new version."
        ),
        annotations=_ADD,
    )
    async def memory_set(
        key: str,
        value: Annotated[Any, Field(description="any JSON value")],
        ctx: Context,
        ttl: Annotated[float | None, Field(gt=0, lt=1e10, description="seconds to live")] = None,
        if_version: Annotated[int | None, Field(description="expected current version")] = None,
        namespace: NamespaceArg = None,
    ) -> SetResult:
        m = memories.resolve(namespace, ctx, write=True)
        version = await m.set(key, value, ttl=ttl, if_version=if_version)
        return SetResult(namespace=m.namespace, key=key, version=version)

    @_kv_tool(
        server,
        memories,
        description=(
            "Append items to the list under a key (created if absent), "
            "atomically: concurrent appends all land. max_len keeps only the "
            "newest items. Returns the new length."
        ),
        annotations=_ADD,
    )
    async def memory_append(
        key: str,
        items: Annotated[list[Any], Field(min_length=1, description="JSON values to append")],
        ctx: Context,
        max_len: Annotated[int | None, Field(gt=0)] = None,
        ttl: Annotated[float | None, Field(gt=0, lt=1e10, description="seconds to live")] = None,
        namespace: NamespaceArg = None,
    ) -> AppendResult:
        m = memories.resolve(namespace, ctx, write=True)
        length = await m.append(key, *items, max_len=max_len, ttl=ttl)
        return AppendResult(namespace=m.namespace, key=key, length=length)

    @_kv_tool(
        server,
        memories,
        description="The last n items of the list under a key (oldest first).",
        annotations=_READ,
    )
    async def memory_tail(
        key: str,
        ctx: Context,
        n: Annotated[int, Field(gt=0, le=10_000)] = 20,
        namespace: NamespaceArg = None,
    ) -> TailResult:
        m = memories.resolve(namespace, ctx, write=False)
        items = await m.tail(key, n)
        uri = _result_uri(m.namespace, key)
        check_depth(items, what="the tail of", namespace=m.namespace, key=key, uri=uri)
        return TailResult(namespace=m.namespace, key=key, items=items)

    @_kv_tool(
        server,
        memories,
        description=(
            "Keys in UTF-8 byte order, optionally under a prefix; pass the "
            "returned cursor back for the next page."
        ),
        annotations=_READ,
    )
    async def memory_list(
        ctx: Context,
        prefix: str = "",
        cursor: Annotated[str | None, Field(description="from the previous page")] = None,
        limit: Annotated[int, Field(gt=0, le=1000)] = 100,
        namespace: NamespaceArg = None,
    ) -> ListResult:
        m = memories.resolve(namespace, ctx, write=False)
        keys: list[str] = []
        after = cursor.encode() if cursor is not None else None
        more = False
        # The public client follows pages itself; the cursor here is "the last key returned".
        async for k in m.iter_keys(prefix):
            if after is not None and k.encode() <= after:
                continue
            if len(keys) == limit:
                more = True
                break
            keys.append(k)
        return ListResult(namespace=m.namespace, keys=keys, cursor=keys[-1] if more else None)

    @_kv_tool(
        server,
        memories,
        description="Delete a key (deleted=false if it did not exist).",
        annotations=_DESTROY,
    )
    async def memory_delete(
        key: str,
        ctx: Context,
        if_version: int | None = None,
        namespace: NamespaceArg = None,
    ) -> DeleteResult:
        m = memories.resolve(namespace, ctx, write=True)
        deleted = await m.delete(key, if_version=if_version)
        return DeleteResult(namespace=m.namespace, key=key, deleted=deleted)


def _register_graph(server: Any, memories: _Memories) -> None:
    """The nine tools of @modelcontextprotocol/server-memory: names, arguments and results."""

    def graph(ctx: Any, *, write: bool) -> KnowledgeGraph:
        return KnowledgeGraph(memories.resolve(None, ctx, write=write))

    @_tool(
        server,
        memories,
        title="Create Entities",
        description="Create multiple new entities in the knowledge graph",
        annotations=_ADD,
    )
    async def create_entities(
        entities: list[Entity], ctx: Context
    ) -> Annotated[CallToolResult, EntitiesOut]:
        created = await graph(ctx, write=True).create_entities([e.model_dump() for e in entities])
        return _result(created, {"entities": created})

    @_tool(
        server,
        memories,
        title="Create Relations",
        description=(
            "Create multiple new relations between entities in the knowledge "
            "graph. Relations should be in active voice"
        ),
        annotations=_ADD,
    )
    async def create_relations(
        relations: list[Relation], ctx: Context
    ) -> Annotated[CallToolResult, RelationsOut]:
        created = await graph(ctx, write=True).create_relations([r.plain() for r in relations])
        return _result(created, {"relations": created})

    @_tool(
        server,
        memories,
        title="Add Observations",
        description="Add new observations to existing entities in the knowledge graph",
        annotations=_ADD,
    )
    async def add_observations(
        observations: list[ObservationAdd], ctx: Context
    ) -> Annotated[CallToolResult, ResultsOut]:
        results = await graph(ctx, write=True).add_observations(
            [o.model_dump() for o in observations]
        )
        return _result(results, {"results": results})

    @_tool(
        server,
        memories,
        title="Delete Entities",
        description=(
            "Delete multiple entities and their associated relations from the knowledge graph"
        ),
        annotations=_DESTROY,
    )
    async def delete_entities(
        entityNames: Annotated[list[str], Field(description="An array of entity names to delete")],
        ctx: Context,
    ) -> Annotated[CallToolResult, StatusOut]:
        deleted, not_found = await graph(ctx, write=True).delete_entities(entityNames)
        message = (
            "Entities deleted successfully"
            if not not_found
            else f"Deleted {len(deleted)} of {len(entityNames)} entities. "
            f"Not found: {', '.join(not_found)}"
        )
        return _result(message, {"success": True, "message": message}, raw=True)

    @_tool(
        server,
        memories,
        title="Delete Observations",
        description="Delete specific observations from entities in the knowledge graph",
        annotations=_DESTROY,
    )
    async def delete_observations(
        deletions: list[ObservationDelete], ctx: Context
    ) -> Annotated[CallToolResult, StatusOut]:
        count, missing = await graph(ctx, write=True).delete_observations(
            [d.model_dump() for d in deletions]
        )
        requested = sum(len(d.observations) for d in deletions)
        message = (
            "Observations deleted successfully"
            if count == requested
            else f"Deleted {count} of {requested} observations."
            + (f" Entities not found: {', '.join(missing)}" if missing else "")
        )
        return _result(message, {"success": True, "message": message}, raw=True)

    @_tool(
        server,
        memories,
        title="Delete Relations",
        description="Delete multiple relations from the knowledge graph",
        annotations=_DESTROY,
    )
    async def delete_relations(
        relations: Annotated[list[Relation], Field(description="An array of relations to delete")],
        ctx: Context,
    ) -> Annotated[CallToolResult, StatusOut]:
        count = await graph(ctx, write=True).delete_relations([r.plain() for r in relations])
        message = (
            "Relations deleted successfully"
            if count == len(relations)
            else f"Deleted {count} of {len(relations)} relations. The rest matched nothing."
        )
        return _result(message, {"success": True, "message": message}, raw=True)

    @_tool(
        server,
        memories,
        title="Read Graph",
        description="Read the entire knowledge graph",
        annotations=_READ,
    )
    async def read_graph(ctx: Context) -> Annotated[CallToolResult, GraphOut]:
        g = await graph(ctx, write=False).read_graph()
        return _result(g, g)

    @_tool(
        server,
        memories,
        title="Search Nodes",
        description="Search for nodes in the knowledge graph based on a query",
        annotations=_READ,
    )
    async def search_nodes(
        query: Annotated[
            str,
            Field(
                max_length=2048,
                description=(
                    "The search query to match against entity names, types, and observation content"
                ),
            ),
        ],
        ctx: Context,
    ) -> Annotated[CallToolResult, GraphOut]:
        g = await graph(ctx, write=False).search_nodes(query)
        return _result(g, g)

    @_tool(
        server,
        memories,
        title="Open Nodes",
        description="Open specific nodes in the knowledge graph by their names",
        annotations=_READ,
    )
    async def open_nodes(
        names: Annotated[list[str], Field(description="An array of entity names to retrieve")],
        ctx: Context,
    ) -> Annotated[CallToolResult, GraphOut]:
        g = await graph(ctx, write=False).open_nodes(names)
        return _result(g, g)


def _register_resources(server: Any, memories: _Memories) -> None:
    @_resource(
        server,
        memories,
        "memory://{namespace}/{key}",
        name="botwire-value",
        description=(
            "The JSON value stored under {key} in {namespace}; percent-encode both "
            "('/' as %2F, ':' as %3A). Keys '.' and '..' are not addressable."
        ),
        mime_type="application/json",
    )
    async def read_value(namespace: str, key: str) -> str:
        ns = unquote(namespace)
        memory = memories.resolve(ns, None, write=False)
        name = unquote(key)
        entry = await memory.entry(name)
        if entry is None:
            raise ValueError(f"botwire-mcp: namespace {ns!r} has no key {name!r} (or it expired).")
        return json.dumps(entry.value, ensure_ascii=False)

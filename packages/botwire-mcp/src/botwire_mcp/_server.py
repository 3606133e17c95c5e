"""The botwire MCP server: key-value tools, the reference knowledge-graph tools, resources."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, unquote

from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from botwire import AsyncMemory, BotWireError, InvalidArgument, Unauthorized

from ._auth import Principal, current_principal, require
from ._compat import Context, ResourceError, ToolError, new_server
from ._graph import KnowledgeGraph

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
    """``memory://{namespace}/{key}``, the key percent-encoded (it may hold ``/`` or ``?``)."""
    return f"memory://{namespace}/{quote(key, safe='')}"


# --- result models (they become the tools' output schemas) ---------------------------------


class GetResult(BaseModel):
    namespace: str
    key: str
    found: bool
    value: Any = None
    version: int | None = None
    expires_at: float | None = Field(
        default=None, description="seconds since the epoch; null: never"
    )


class SetResult(BaseModel):
    namespace: str
    key: str
    version: int


class AppendResult(BaseModel):
    namespace: str
    key: str
    length: int


class TailResult(BaseModel):
    namespace: str
    key: str
    items: list[Any]


class ListResult(BaseModel):
    namespace: str
    keys: list[str]
    cursor: str | None = Field(None, description="pass back to get the next page; null: done")


class DeleteResult(BaseModel):
    namespace: str
    key: str
    deleted: bool


class Entity(BaseModel):
    name: Annotated[str, Field(description="The name of the entity")]
    entityType: Annotated[str, Field(description="The type of the entity")]
    observations: Annotated[
        list[str], Field(description="An array of observation contents associated with the entity")
    ]


class Relation(BaseModel):
    from_: Annotated[
        str, Field(alias="from", description="The name of the entity where the relation starts")
    ]
    to: Annotated[str, Field(description="The name of the entity where the relation ends")]
    relationType: Annotated[str, Field(description="The type of the relation")]

    model_config = {"populate_by_name": True}

    def plain(self) -> dict[str, str]:
        return {"from": self.from_, "to": self.to, "relationType": self.relationType}


class ObservationAdd(BaseModel):
    entityName: Annotated[
        str, Field(description="The name of the entity to add the observations to")
    ]
    contents: Annotated[list[str], Field(description="An array of observation contents to add")]


class ObservationDelete(BaseModel):
    entityName: Annotated[
        str, Field(description="The name of the entity containing the observations")
    ]
    observations: Annotated[list[str], Field(description="An array of observations to delete")]


class AddedObservations(BaseModel):
    entityName: str
    addedObservations: list[str]


class EntitiesOut(BaseModel):
    entities: list[Entity]


class RelationsOut(BaseModel):
    relations: list[Relation]


class ResultsOut(BaseModel):
    results: list[AddedObservations]


class StatusOut(BaseModel):
    success: bool
    message: str


class GraphOut(BaseModel):
    entities: list[Entity]
    relations: list[Relation]


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
        if config.auth and principal is None:  # fail closed: never serve an unchecked call
            raise Unauthorized("botwire-mcp: this call carried no verified token.")
        require(ns, write=write, principal=principal)
        memory = self._by_ns.get(ns)
        if memory is None:
            memory = AsyncMemory(ns, url=config.url, token=config.token)
            self._by_ns[ns] = memory
        return memory


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


def _anticipated(error: type[Exception]) -> Callable[[Any], Any]:
    """Re-raise botwire's errors (and the graph's 'Entity ... not found') as the SDK's
    ToolError/ResourceError, so the client reads the message on every SDK version; anything
    else stays a crash the SDK logs (and, on mcp 2.x, does not reveal)."""

    def wrap(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except (BotWireError, ValueError) as exc:
                raise error(str(exc)) from exc

        return wrapper

    return wrap


def _tool(server: Any, **options: Any) -> Callable[[Any], Any]:
    """``server.tool(**options)`` around a tool whose anticipated errors reach the client."""

    def register(fn: Callable[..., Awaitable[Any]]) -> Any:
        return server.tool(**options)(_anticipated(ToolError)(fn))

    return register


def _resource(server: Any, uri: str, **options: Any) -> Callable[[Any], Any]:
    """``server.resource(uri, **options)`` around a resource whose anticipated errors reach
    the client."""

    def register(fn: Callable[..., Awaitable[Any]]) -> Any:
        return server.resource(uri, **options)(_anticipated(ResourceError)(fn))

    return register


def build_server(config: ServerConfig) -> Any:
    """An MCP server object (FastMCP on mcp 1.x, MCPServer on 2.x) with every tool registered."""
    server = new_server("botwire-memory", INSTRUCTIONS)
    memories = _Memories(config)
    _register_kv(server, memories)
    _register_graph(server, memories)
    _register_resources(server, memories)
    return server


def _register_kv(server: Any, memories: _Memories) -> None:
    @_tool(
        server,
        description="Read the JSON value stored under a key (found=false if absent).",
        annotations=_READ,
    )
    async def memory_get(key: str, ctx: Context, namespace: NamespaceArg = None) -> GetResult:
        m = memories.resolve(namespace, ctx, write=False)
        e = await m.entry(key)
        if e is None:
            return GetResult(namespace=m.namespace, key=key, found=False)
        return GetResult(
            namespace=m.namespace,
            key=key,
            found=True,
            value=e.value,
            version=e.version,
            expires_at=e.expires_at,
        )

    @_tool(
        server,
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
        ttl: Annotated[float | None, Field(gt=0, description="seconds to live")] = None,
        if_version: Annotated[int | None, Field(description="expected current version")] = None,
        namespace: NamespaceArg = None,
    ) -> SetResult:
        m = memories.resolve(namespace, ctx, write=True)
        version = await m.set(key, value, ttl=ttl, if_version=if_version)
        return SetResult(namespace=m.namespace, key=key, version=version)

    @_tool(
        server,
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
        ttl: Annotated[float | None, Field(gt=0)] = None,
        namespace: NamespaceArg = None,
    ) -> AppendResult:
        m = memories.resolve(namespace, ctx, write=True)
        length = await m.append(key, *items, max_len=max_len, ttl=ttl)
        return AppendResult(namespace=m.namespace, key=key, length=length)

    @_tool(
        server,
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
        return TailResult(namespace=m.namespace, key=key, items=await m.tail(key, n))

    @_tool(
        server,
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

    @_tool(
        server,
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
        server, title="Read Graph", description="Read the entire knowledge graph", annotations=_READ
    )
    async def read_graph(ctx: Context) -> Annotated[CallToolResult, GraphOut]:
        g = await graph(ctx, write=False).read_graph()
        return _result(g, g)

    @_tool(
        server,
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
        "memory://{namespace}/{key}",
        name="botwire-value",
        description=(
            "The JSON value stored under {key} in {namespace}; percent-encode the key ('/' as %2F)."
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

"""LangGraph ``BaseStore`` batches as one sans-I/O plan (see ``_io``).

A batch costs: one ``entry`` read per GetOp, one ``get_many`` for the PutOps' current records
(to keep ``created_at``), one key listing per SearchOp / ListNamespacesOp, one ``get_many`` for
all search candidates, one guarded write for the GetOps' TTL refreshes and one atomic write for
the puts, deletes and the search results' TTL refreshes. Reads see the store as it was
before the batch's own puts, as in LangGraph's ``InMemoryStore``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    validate_op_namespace,
)

from botwire import Conflict

from . import _keys as K
from ._io import Atomic, GetEntry, ListKeys, Plan, TxOp, get_many_chunked

__all__ = ["batch_plan", "matches_filter"]

_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _ttl_seconds(minutes: float | None) -> float | None:
    return None if minutes is None else float(minutes) * 60.0


def _apply(value: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return bool(value == operand)
    if operator == "$ne":
        return bool(value != operand)
    if value is None or isinstance(value, (dict, list)):
        return False
    try:
        if operator == "$gt":
            return bool(value > operand)
        if operator == "$gte":
            return bool(value >= operand)
        if operator == "$lt":
            return bool(value < operand)
        return bool(value <= operand)  # $lte
    except TypeError:  # e.g. "a" > 1: no match rather than an error, as in SQL
        return False


def _matches(value: Any, condition: Any) -> bool:
    if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
        for operator, operand in condition.items():
            if operator not in _OPERATORS:
                raise ValueError(
                    f"unsupported filter operator {operator!r}; BotWireStore supports "
                    + ", ".join(_OPERATORS)
                )
            if not _apply(value, operator, operand):
                return False
        return True
    if isinstance(condition, dict):
        return isinstance(value, dict) and all(
            _matches(value.get(k), sub) for k, sub in condition.items()
        )
    return bool(value == condition)


def matches_filter(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """Whether an item value satisfies a LangGraph search filter (``{"field": x}`` for equality,
    ``{"field": {"$gt": 3}}`` for comparisons, nested dicts for nested fields)."""
    return all(_matches(value.get(k), c) for k, c in (filter or {}).items())


def _ns_matches(ns: tuple[str, ...], condition: MatchCondition) -> bool:
    path = tuple(condition.path)
    if len(ns) < len(path):
        return False
    part = ns[: len(path)] if condition.match_type == "prefix" else ns[len(ns) - len(path) :]
    return all(p == "*" or p == n for p, n in zip(path, part, strict=False))


def _list_prefix(op: ListNamespacesOp) -> str:
    """The longest literal key prefix every matching namespace shares."""
    for condition in op.match_conditions or ():
        if condition.match_type == "prefix":
            literal: list[str] = []
            for label in condition.path:
                if label == "*":
                    break
                literal.append(label)
            return K.item_prefix(tuple(literal))
    return "i/"


def _item(cls: type[Item], ns: tuple[str, ...], key: str, record: dict[str, Any]) -> Any:
    return cls(
        value=record["value"],
        key=key,
        namespace=ns,
        created_at=record["created_at"],
        updated_at=record["updated_at"],
    )


def _refresh_ops(key: str, record: dict[str, Any], version: int) -> list[TxOp]:
    return [("check", key, version), ("set", key, record, _ttl_seconds(record["ttl"]))]


def batch_plan(ops: Iterable[Op], ttl_config: TTLConfig | None) -> Plan[list[Result]]:
    ops = list(ops)
    for op in ops:
        validate_op_namespace(op)
        if isinstance(op, (GetOp, PutOp)) and not op.namespace:
            raise InvalidNamespaceError(
                f"BotWireStore: {type(op).__name__} for key {op.key!r} has an empty namespace; "
                "items live in a namespace tuple such as ('users', 'alice')"
            )
        # SearchOp.query is ignored, as InMemoryStore, SqliteStore and PostgresStore ignore it
        # when built without an index: the same filter/limit/offset results, score None.
        # Agents' tools (langmem, create_manage_memory_tool...) pass a query to any store.
        if not isinstance(op, (GetOp, PutOp, SearchOp, ListNamespacesOp)):
            raise TypeError(f"BotWireStore.batch got an unknown operation {type(op).__name__}")

    puts: dict[str, PutOp] = {}
    for op in ops:
        if isinstance(op, PutOp):
            puts[K.item_key(op.namespace, op.key)] = op  # the last put of a key wins

    # 1. point reads: GetOps by entry (value + version, so a TTL refresh can be guarded), and
    #    the current records of the keys being put (to keep created_at)
    current: dict[str, Any] = {}
    versions: dict[str, int] = {}
    for op in ops:
        if isinstance(op, GetOp):
            key = K.item_key(op.namespace, op.key)
            if key not in versions and key not in current:
                entry = yield GetEntry(key)
                if entry is not None:
                    current[key], versions[key] = entry.value, entry.version
    put_reads = sorted(k for k, op in puts.items() if op.value is not None and k not in current)
    if put_reads:
        current.update((yield from get_many_chunked(put_reads)))

    # 2. listings for searches and namespace listings
    listed: dict[int, list[str]] = {}
    for i, op in enumerate(ops):
        if isinstance(op, SearchOp):
            listed[i] = yield ListKeys(K.item_prefix(op.namespace_prefix))
        elif isinstance(op, ListNamespacesOp):
            listed[i] = yield ListKeys(_list_prefix(op))
    candidates = sorted(
        {k for i, keys in listed.items() if isinstance(ops[i], SearchOp) for k in keys}
        - set(current)
    )
    if candidates:
        current.update((yield from get_many_chunked(candidates)))

    # 3. results, and which items to refresh
    refresh: dict[str, dict[str, Any]] = {}
    results: list[Result] = []
    for i, op in enumerate(ops):
        if isinstance(op, GetOp):
            key = K.item_key(op.namespace, op.key)
            record = current.get(key)
            if record is None:
                results.append(None)
                continue
            if op.refresh_ttl and record.get("ttl") is not None:
                refresh[key] = record
            results.append(_item(Item, tuple(op.namespace), op.key, record))
        elif isinstance(op, SearchOp):
            found: list[tuple[str, tuple[str, ...], str, dict[str, Any]]] = []
            for key in listed[i]:
                parsed = K.parse_item_key(key)
                record = current.get(key)
                if parsed is None or record is None:
                    continue
                if matches_filter(record["value"], op.filter):
                    found.append((key, parsed[0], parsed[1], record))
            found.sort(key=lambda f: (f[3]["updated_at"], f[0]), reverse=True)
            page = found[op.offset : op.offset + op.limit]
            for key, _, _, record in page:
                if op.refresh_ttl and record.get("ttl") is not None:
                    refresh[key] = record
            results.append([_item(SearchItem, ns, k, rec) for _, ns, k, rec in page])
        elif isinstance(op, ListNamespacesOp):
            spaces: set[tuple[str, ...]] = set()
            for key in listed[i]:
                parsed = K.parse_item_key(key)
                if parsed is None:
                    continue
                ns = parsed[0]
                if all(_ns_matches(ns, c) for c in op.match_conditions or ()):
                    spaces.add(ns[: op.max_depth] if op.max_depth is not None else ns)
            results.append(sorted(spaces)[op.offset : op.offset + op.limit])
        else:
            results.append(None)

    # 4. TTL refreshes of items read by GetOps, each guarded by the version read: if the item
    #    changed meanwhile, whoever changed it set its TTL, and the refresh is dropped
    guarded = [k for k in refresh if k in versions and k not in puts]
    if guarded:
        try:
            yield Atomic([op for k in guarded for op in _refresh_ops(k, refresh[k], versions[k])])
        except Conflict:
            for k in guarded if len(guarded) > 1 else ():
                with contextlib.suppress(Conflict):
                    yield Atomic(_refresh_ops(k, refresh[k], versions[k]))

    # 5. one atomic write: the other refreshes (search results), then the puts and deletes
    tx: list[TxOp] = [
        ("set", key, record, _ttl_seconds(record["ttl"]))
        for key, record in refresh.items()
        if key not in puts and key not in versions
    ]
    now = _now()
    for key, op in puts.items():
        if op.value is None:
            tx.append(("delete", key))
            continue
        ttl = op.ttl
        if isinstance(ttl, NotProvided):
            ttl = (ttl_config or {}).get("default_ttl")
        old = current.get(key)
        record = {
            "value": dict(op.value),
            "created_at": old["created_at"] if old is not None else now,
            "updated_at": now,
            "ttl": ttl,
        }
        tx.append(("set", key, record, _ttl_seconds(ttl)))
    if tx:
        yield Atomic(tx)
    return results

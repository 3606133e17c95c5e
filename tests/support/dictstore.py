"""A third party's store, as small as the contract allows: the six required methods of
``botwire.store.Store`` over plain dicts, stdlib ``json`` and one lock, and no optional
capability. It declares no limits. ``tests/conformance/test_third_party_store.py`` runs the
conformance kit (``botwire.testing``) against it, as its author would.

It uses only botwire's public names (the records, the errors), never its engine.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from botwire import Conflict, Entry, InvalidArgument, KeyInfo, TypeMismatch, Usage
from botwire.store import KeyPage, Op

DAY = 86400


def _size(key: str, value: Any) -> int:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(key.encode()) + len(text.encode())


class _Item:
    __slots__ = ("created", "expires", "updated", "value", "version")

    def __init__(self, value: Any, version: int, created: float, expires: float | None) -> None:
        self.value, self.version, self.created, self.expires = value, version, created, expires
        self.updated = created


class DictStore:
    """Every namespace a dict of key → item; a batch works on a copy, swapped in on success."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._data: dict[str, dict[str, _Item]] = {}
        self._writes: dict[str, tuple[int, int]] = {}  # ns -> (day, writes that day)
        self._done: dict[tuple[str, str], list[dict[str, Any]]] = {}  # idempotency records
        self._version = 0
        self._lock = threading.Lock()

    # -- the six methods -------------------------------------------------------------------------

    def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        with self._lock:
            item = self._live(self._data.get(namespace, {}), key, self.clock())
            if item is None:
                return None
            value = copy.deepcopy(item.value)
            if tail is not None:
                self._need_list(namespace, key, item, "tail")
                value = value[len(value) - tail :] if tail else []
            return Entry(key, value, item.version, item.created, item.updated, item.expires)

    def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        with self._lock:
            if idempotency_key is not None and (namespace, idempotency_key) in self._done:
                return copy.deepcopy(self._done[(namespace, idempotency_key)])
            now = self.clock()
            day = int(now // DAY)
            state = {"data": dict(self._data.get(namespace, {})), "version": None}
            writes = self._writes.get(namespace, (day, 0))
            writes = writes if writes[0] == day else (day, 0)
            results: list[dict[str, Any]] = []
            for op in ops:
                saved = (dict(state["data"]), state["version"])
                try:
                    results.append(self._apply(namespace, state, op, now))
                except (Conflict, TypeMismatch, InvalidArgument) as exc:
                    if atomic:
                        raise  # nothing of the batch is kept: state is a copy
                    state["data"], state["version"] = saved
                    results.append(exc.to_payload())
                    continue
                if op.kind in ("set", "append", "incr", "pop"):
                    writes = (day, writes[1] + 1)
            self._data[namespace] = state["data"]
            self._writes[namespace] = writes
            if idempotency_key is not None:
                self._done[(namespace, idempotency_key)] = copy.deepcopy(results)
            return results

    def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        with self._lock:
            now, data = self.clock(), self._data.get(namespace, {})
            after = (cursor or "").encode()
            keys = sorted(
                (k for k in data if k.startswith(prefix) and self._live(data, k, now)),
                key=lambda k: k.encode(),
            )
            keys = [k for k in keys if cursor is None or k.encode() > after]
            page = [
                KeyInfo(
                    k, data[k].version, _size(k, data[k].value), data[k].updated, data[k].expires
                )
                for k in keys[:limit]
            ]
            return KeyPage(page, page[-1].key if len(keys) > limit else None)

    def clear(self, namespace: str) -> int:
        with self._lock:
            now, data = self.clock(), self._data.pop(namespace, {})
            return sum(1 for k in data if self._live(data, k, now))

    def usage(self, namespace: str) -> Usage:
        with self._lock:
            now, data = self.clock(), self._data.get(namespace, {})
            live = [k for k in data if self._live(data, k, now)]
            day, writes = self._writes.get(namespace, (int(now // DAY), 0))
            writes = writes if day == int(now // DAY) else 0
            size = sum(_size(k, data[k].value) for k in live)
            return Usage(namespace, len(live), size, writes, (int(now // DAY) + 1) * DAY)

    def close(self) -> None:
        with self._lock:
            self._data.clear()

    # -- one op ----------------------------------------------------------------------------------

    def _apply(self, ns: str, state: dict[str, Any], op: Op, now: float) -> dict[str, Any]:
        data: dict[str, _Item] = state["data"]
        item = self._live(data, op.key, now)
        current = item.version if item else None

        def version() -> int:  # one version per batch, taken at its first write
            if state["version"] is None:
                self._version += 1
                state["version"] = self._version
            return int(state["version"])

        def conflict(wanted: str) -> Conflict:
            return Conflict(
                f"{op.kind} of key {op.key!r} in namespace {ns!r} expected {wanted} but the "
                f"current version is {current}",
                namespace=ns,
                key=op.key,
                current_version=current,
            )

        def write(value: Any, expires: float | None) -> int:
            new = _Item(value, version(), item.created if item else now, expires)
            new.updated = now
            data[op.key] = new
            return new.version

        expires = None if op.ttl is None else now + op.ttl
        if op.kind == "get":
            if item is None:
                return {"found": False, "value": None, "version": None, "created_at": None,
                        "updated_at": None, "expires_at": None}  # fmt: skip
            return {"found": True, "value": copy.deepcopy(item.value), "version": item.version,
                    "created_at": item.created, "updated_at": item.updated,
                    "expires_at": item.expires}  # fmt: skip
        if op.kind == "check":
            if current != op.version:
                raise conflict(f"version {op.version}")
            return {"ok": True}
        if op.kind == "set":
            if op.if_absent and item is not None:
                raise conflict("no entry")
            if op.if_version is not None and current != op.if_version:
                raise conflict(f"version {op.if_version}")
            return {"version": write(json.loads(op.value or "null"), expires)}
        if op.kind == "delete":
            if op.if_version is not None and current != op.if_version:
                raise conflict(f"version {op.if_version}")
            data.pop(op.key, None)
            return {"deleted": item is not None}
        if op.kind == "append":
            if item:
                self._need_list(ns, op.key, item, "append")
            items = list(item.value) if item else []
            items += [json.loads(i) for i in op.items]
            if op.max_len is not None:
                items = items[-op.max_len :]
            keep = item.expires if item and op.ttl is None else expires
            return {"version": write(items, keep), "length": len(items)}
        if op.kind == "incr":
            number = item.value if item else 0
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise TypeMismatch(
                    f"incr needs a number, but key {op.key!r} in namespace {ns!r} holds {number!r}",
                    namespace=ns,
                    key=op.key,
                )
            number += op.by
            return {"version": write(number, item.expires if item else None), "value": number}
        if op.kind == "pop":
            if item is None or item.value == []:
                if item is not None:
                    self._need_list(ns, op.key, item, "pop")
                return {"found": False, "value": None, "version": current}
            self._need_list(ns, op.key, item, "pop")
            items = list(item.value)
            last = items.pop()
            return {"found": True, "value": last, "version": write(items, item.expires)}
        raise InvalidArgument(f"unknown operation {op.kind!r}", namespace=ns, key=op.key)

    @staticmethod
    def _live(data: dict[str, _Item], key: str, now: float) -> _Item | None:
        item = data.get(key)
        return None if item is None or (item.expires is not None and item.expires <= now) else item

    @staticmethod
    def _need_list(ns: str, key: str, item: _Item, what: str) -> None:
        if not isinstance(item.value, list):
            raise TypeMismatch(
                f"{what} needs a list, but key {key!r} in namespace {ns!r} holds "
                f"{type(item.value).__name__}",
                namespace=ns,
                key=key,
            )

"""Maintenance plans of the checkpointer (sans-I/O, see ``_io``): deleting a thread or a run's
checkpoints, pruning a thread to its latest checkpoint, copying a thread. Each touches every key
of a thread, so none of them sits on the hot path that ``_checkpoint_plans`` keeps to one round
trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from botwire import Conflict

from . import _keys as K
from ._checkpoint_plans import dedupe_ids, open_record, pointer_of
from ._io import (
    MAX_BATCH,
    Atomic,
    DeleteMany,
    Get,
    GetEntry,
    GetMany,
    ListKeys,
    Plan,
    TxOp,
    get_many_chunked,
)
from ._serde import load_doc

__all__ = ["copy_thread_plan", "delete_for_runs_plan", "delete_thread_plan", "prune_plan"]

_COPY_CHUNK = 200
_CAS_RETRIES = 10


def _delete_keys(keys: Sequence[str]) -> Plan[None]:
    for i in range(0, len(keys), MAX_BATCH):
        yield DeleteMany(keys[i : i + MAX_BATCH])


def delete_thread_plan(thread_id: str) -> Plan[None]:
    keys = yield ListKeys(K.thread_prefix(thread_id))
    runs = {K.unesc(p[3]) for p in (k.split("/") for k in keys) if len(p) > 3 and p[2] == "run"}
    # the pointers go first, so a concurrent reader never follows one to a deleted record
    ordered = sorted(keys, key=lambda k: k.split("/")[2] != "latest")
    yield from _delete_keys(ordered + [K.run_marker_key(r, thread_id) for r in sorted(runs)])


def _latest_id(latest: dict[str, Any]) -> str:
    """The checkpoint id a "latest" value names (a pointer, or an old layout's record copy)."""
    return str(latest["ptr"] if "ptr" in latest else latest["id"])


def _remove_from_index(
    serde: SerializerProtocol, thread_id: str, ns: str, victims: set[str]
) -> Plan[None]:
    """Drop ``victims`` from the index of (thread, ns) and move the latest pointer back if it
    pointed at one of them; compare-and-set on the index so a concurrent put is never lost."""
    idx_key, latest_key = K.index_key(thread_id, ns), K.latest_key(thread_id, ns)
    for _ in range(_CAS_RETRIES):
        entry = yield GetEntry(idx_key)
        latest = yield Get(latest_key)
        ids = dedupe_ids(entry.value) if entry is not None else []
        remaining = [c for c in ids if c not in victims]
        ops: list[TxOp] = [("check", idx_key, entry.version if entry is not None else None)]
        ops.append(("set", idx_key, remaining, None) if remaining else ("delete", idx_key))
        if latest is not None and _latest_id(latest) in victims:
            newest = max(remaining) if remaining else None
            record = (yield Get(K.checkpoint_key(thread_id, ns, newest))) if newest else None
            ops.append(
                ("set", latest_key, pointer_of(serde, record), None)
                if record is not None
                else ("delete", latest_key)
            )
        try:
            yield Atomic(ops)
        except Conflict:
            continue
        return None
    raise Conflict(  # pragma: no cover - needs a pathological write storm
        f"could not update the checkpoint index of thread {thread_id!r} (namespace {ns!r}): "
        f"it kept changing under {_CAS_RETRIES} attempts; retry the call"
    )


def _run_of(serde: SerializerProtocol, record: dict[str, Any]) -> str | None:
    run_id = load_doc(serde, open_record(record)["metadata"]).get("run_id")
    return str(run_id) if run_id else None


def delete_for_runs_plan(serde: SerializerProtocol, run_ids: Sequence[str]) -> Plan[None]:
    """The run markers ``r/R/T`` name the threads; in each, the checkpoints of run R are the ones
    the old layout's ``t/T/run/R/N/C`` keys name and, since ``t/T/run/R`` (the new layout, one
    key per run), the ones whose metadata says run R (the thread's records are read: a rare,
    maintenance-time call pays that instead of every ``put`` writing a key)."""
    victims: dict[tuple[str, str], set[str]] = {}
    doomed: list[str] = []
    for run_id in map(str, run_ids):
        markers = yield ListKeys(K.run_marker_prefix(run_id))
        for marker in markers:
            thread_id = K.unesc(marker.split("/")[2])
            keys = yield ListKeys(K.thread_prefix(thread_id))
            run_key = K.thread_run_key(thread_id, run_id)
            cps: list[str] = []
            for key in keys:
                p = key.split("/")
                if p[2] == "run" and len(p) == 6 and K.unesc(p[3]) == run_id:  # the old layout
                    victims.setdefault((thread_id, K.unesc(p[4])), set()).add(K.unesc(p[5]))
                    doomed.append(key)
                elif p[2] == "cp":
                    cps.append(key)
            if run_key in keys:
                records = yield from get_many_chunked(cps)
                for key, record in records.items():
                    if _run_of(serde, record) == run_id:
                        p = key.split("/")
                        victims.setdefault((thread_id, K.unesc(p[3])), set()).add(K.unesc(p[4]))
                doomed.append(run_key)
            doomed.append(marker)
    for (thread_id, ns), cids in victims.items():
        doomed += [k for c in sorted(cids) for k in _checkpoint_keys(thread_id, ns, c)]
        yield from _remove_from_index(serde, thread_id, ns, cids)
    yield from _delete_keys(doomed)


def _checkpoint_keys(thread_id: str, ns: str, cid: str) -> tuple[str, str]:
    return K.checkpoint_key(thread_id, ns, cid), K.writes_key(thread_id, ns, cid)


def prune_plan(serde: SerializerProtocol, thread_ids: Sequence[str], strategy: str) -> Plan[None]:
    if strategy == "delete":
        for thread_id in thread_ids:
            yield from delete_thread_plan(thread_id)
        return None
    if strategy != "keep_latest":
        raise ValueError(
            f"unknown prune strategy {strategy!r}: BotWireSaver supports 'keep_latest' and 'delete'"
        )
    for thread_id in thread_ids:
        keys = yield ListKeys(K.thread_prefix(thread_id))
        latest_keys = [k for k in keys if k.split("/")[2] == "latest"]
        latest = yield from get_many_chunked(latest_keys)
        kept: dict[str, dict[str, Any]] = {}  # ns -> the record kept
        pointed: dict[str, str] = {}  # ns -> the record key a pointer names
        for key, value in latest.items():
            ns = K.unesc(key.rsplit("/", 1)[1])
            if "ptr" in value:  # a pointer's packed part is not needed here
                pointed[ns] = K.checkpoint_key(thread_id, ns, str(value["ptr"]))
            else:  # the old layout: the record itself
                kept[ns] = value
        if pointed:
            records = yield from get_many_chunked(sorted(pointed.values()))
            kept.update((ns, records[k]) for ns, k in pointed.items() if k in records)
        keep: dict[str, tuple[str, dict[str, str]]] = {}  # ns -> (id, {channel: version token})
        runs_kept: set[str] = set()
        for ns, record in kept.items():
            record = open_record(record)
            versions = load_doc(serde, record["checkpoint"]).get("channel_versions") or {}
            keep[ns] = (record["id"], {ch: K.version_token(v) for ch, v in versions.items()})
            runs_kept.add(_run_of(serde, record) or "")
        doomed: list[str] = []
        runs_left: set[str] = set()
        runs_seen: set[str] = set()
        ops: list[TxOp] = []
        for key in keys:
            p = key.split("/")
            kind = p[2]
            if kind in ("cp", "w"):
                ns, cid = K.unesc(p[3]), K.unesc(p[4])
                if ns in keep and cid != keep[ns][0]:
                    doomed.append(key)
            elif kind == "b":
                ns, channel = K.unesc(p[3]), K.unesc(p[4])
                if ns in keep and keep[ns][1].get(channel) != p[5]:
                    doomed.append(key)
            elif kind == "run" and len(p) == 4:  # t/T/run/R: kept while a kept record is R's
                run_id = K.unesc(p[3])
                runs_seen.add(run_id)
                if run_id in runs_kept or len(keep) < len(latest_keys):
                    runs_left.add(run_id)
                else:
                    doomed.append(key)
            elif kind == "run":  # the old layout: t/T/run/R/N/C
                run_id, ns, cid = K.unesc(p[3]), K.unesc(p[4]), K.unesc(p[5])
                runs_seen.add(run_id)
                if ns in keep and cid != keep[ns][0]:
                    doomed.append(key)
                else:
                    runs_left.add(run_id)
            elif kind == "idx":
                ns = K.unesc(p[3])
                if ns in keep:
                    ops.append(("set", key, [keep[ns][0]], None))
        doomed += [K.run_marker_key(r, thread_id) for r in sorted(runs_seen - runs_left)]
        yield Atomic(ops)
        yield from _delete_keys(doomed)
    return None


def copy_thread_plan(source_thread_id: str, target_thread_id: str) -> Plan[None]:
    src, dst = K.thread_prefix(source_thread_id), K.thread_prefix(target_thread_id)
    keys = yield ListKeys(src)
    # pointers last, so the target never shows a "latest" whose record is not there yet
    keys = sorted(keys, key=lambda k: k.split("/")[2] == "latest")
    runs = {K.unesc(p[3]) for p in (k.split("/") for k in keys) if p[2] == "run"}
    for i in range(0, len(keys), _COPY_CHUNK):
        chunk = keys[i : i + _COPY_CHUNK]
        values = yield GetMany(chunk)
        yield Atomic([("set", dst + k[len(src) :], values[k], None) for k in chunk if k in values])
    yield Atomic([("set", K.run_marker_key(r, target_thread_id), 1, None) for r in sorted(runs)])
    return None

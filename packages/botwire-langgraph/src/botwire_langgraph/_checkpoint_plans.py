"""Checkpointer logic as sans-I/O plans (see ``_io``); the key layout is described in ``_keys``.

Round trips, whatever the length of the thread's history:

* ``put``: 1 (one atomic batch: changed channel blobs, the record, the "latest" pointer and an
  append of the id to the thread's index; a run's first put in the process adds its markers).
* ``put_writes``: 1 (an append to the checkpoint's writes list).
* ``get_tuple`` of the latest checkpoint: 2 (the "latest" pointer, then record + writes + the
  blobs it names).
* ``get_tuple`` of a given checkpoint id: 2 (record + writes, then blobs; 1 when no value of
  the checkpoint is a blob).
* ``list(limit=n)``: 3 (tail of the index, records + writes, blobs; 2 without blobs); with
  ``before`` or a ``filter`` the whole index (one value) is read instead of its tail.

Only the blobs that exist are asked for: a record and its pointer name the channels whose
values are blobs (``"stored"``), not every channel with a version (``_blob_channels``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from botwire import ValueTooLarge

from . import _keys as K
from ._io import (
    Atomic,
    Get,
    GetMany,
    ListKeys,
    Plan,
    Tail,
    TxOp,
    get_many_chunked,
)
from ._pending import Ref, Taken, writes_item, writes_ops
from ._serde import (
    dump,
    dump_doc,
    dump_value,
    inline_value,
    load,
    load_doc,
    load_value,
    pack,
    unpack,
)

__all__ = [
    "Ref",
    "fetch_tuples_plan",
    "get_tuple_plan",
    "list_refs_plan",
    "put_plan",
    "put_writes_plan",
    "store_writes_plan",
]

_EMPTY = "empty"
_MISSING = object()
_MARKED_MAX = 10_000  # threads whose current run a saver remembers
_KNOWN_MAX = 10_000  # (thread, checkpoint namespace) pairs whose "latest" a saver remembers
#: (thread id, checkpoint namespace) -> the "latest" pointer a saver last wrote or read there
Known = dict[tuple[str, str], dict[str, Any]]


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


# -- writes --------------------------------------------------------------------------------


def put_plan(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
    marked: dict[str, str] | None = None,
    parent_writes: Sequence[dict[str, Any]] = (),
    known: Known | None = None,
) -> Plan[RunnableConfig]:
    """Save a checkpoint in one atomic batch. ``marked`` (thread id -> run id) remembers the
    runs whose markers this process wrote already, so a run's later puts skip them;
    ``parent_writes`` are pending-writes items of the parent checkpoint stored in the same
    batch (``_pending``); ``known`` remembers the "latest" pointer written (``get_tuple_plan``)."""
    thread_id, ns = K.thread_and_ns(config)
    parent = get_checkpoint_id(config)
    body: dict[str, Any] = dict(checkpoint)
    values: dict[str, Any] = body.pop("channel_values", None) or {}
    cid = str(checkpoint["id"])
    # Small primitive values live in the record (copied into each checkpoint, as PostgresSaver
    # does); the others are written once per version as blobs. A channel without a value needs
    # nothing stored: a missing blob reads as "no value". Inline values go through the serde
    # unless it is the default one (an encrypting serde must see them: ``_serde.plain``).
    inline = {ch: dump_value(serde, v) for ch, v in values.items() if inline_value(v)}
    # The channels whose values are blobs, named so that readers fetch those only: a graph's
    # trigger channels (one per node) have versions but no value at checkpoint time, and a
    # reader that named a blob per version read one missing key per node (``_blob_channels``).
    stored = sorted(ch for ch in values if ch not in inline)
    held = set(stored)
    ops: list[TxOp] = []
    for channel, version in new_versions.items():
        if channel in held:
            blob = dump(serde, values[channel])
            ops.append(("set", K.blob_key(thread_id, ns, channel, version), blob, None))
    md = get_serializable_checkpoint_metadata(config, metadata)
    fields: dict[str, Any] = {
        "checkpoint": dump_doc(serde, body),
        "metadata": dump_doc(serde, dict(md)),
    }
    if inline:
        fields["values"] = inline
    fields["stored"] = stored
    record = {"id": cid, "parent": parent, **pack(fields)}
    ops.append(("set", K.checkpoint_key(thread_id, ns, cid), record, None))
    ops.append(("append", K.index_key(thread_id, ns), [cid]))
    run_id = str(md.get("run_id") or "")
    mark = bool(run_id) and (marked is None or marked.get(thread_id) != run_id)
    if mark:  # r/R/T finds the thread from the run, t/T/run/R the run from the thread
        ops.append(("set", K.thread_run_key(thread_id, run_id), 1, None))
        ops.append(("set", K.run_marker_key(run_id, thread_id), 1, None))
    pointer = _pointer(cid, body, inline, stored)
    ops.append(("set", K.latest_key(thread_id, ns), pointer, None))
    # Repeat-safe: a retry that applies it again sets the same values and appends the id to
    # the index again, which every reader dedupes (``dedupe_ids``). Only a put of another
    # checkpoint of this thread between the two could be undone ("latest" set back), and that
    # needs a second writer of the thread, whose puts already race each other.
    waiting: Taken = {(thread_id, ns, parent): list(parent_writes)} if parent else {}
    if not any(waiting.values()):
        yield Atomic(ops, repeat_safe=True)
    else:
        try:  # the parent's writes first, in the same batch
            yield Atomic([*writes_ops(waiting), *ops], repeat_safe=True)
        except ValueTooLarge:  # too large together: the writes (which fit alone), then the put
            yield from store_writes_plan(waiting)
            yield Atomic(ops, repeat_safe=True)
    if mark and marked is not None:
        if len(marked) >= _MARKED_MAX:
            marked.clear()
        marked[thread_id] = run_id
    _remember(known, (thread_id, ns), pointer)
    return _config(thread_id, ns, cid)


def _remember(known: Known | None, pair: tuple[str, str], pointer: dict[str, Any]) -> None:
    if known is None:
        return
    if len(known) >= _KNOWN_MAX and pair not in known:
        known.clear()
    known[pair] = pointer


def _pointer(
    cid: str, body: dict[str, Any], inline: dict[str, Any], stored: list[str] | None
) -> dict[str, Any]:
    """The "latest" value: the newest checkpoint's id and the versions of the channels not
    inlined in its record (``"blobs"``, which ``get_tuple`` checks against the record), and of
    those the ones whose values are blobs (``"stored"``; ``None``: unknown, a record of before
    it), so ``get_tuple`` fetches record, writes and blobs in one round trip without a second
    copy of the record."""
    versions = body.get("channel_versions") or {}
    fields: dict[str, Any] = {"blobs": {ch: v for ch, v in versions.items() if ch not in inline}}
    if stored is not None:
        fields["stored"] = stored
    return {"ptr": cid, **pack(fields)}


def _blob_channels(
    versions: dict[str, Any], inline: dict[str, Any], stored: list[str] | None
) -> Iterator[tuple[str, Any]]:
    """The (channel, version) pairs whose blobs a reader fetches: the channels a record or
    pointer names as ``stored``, else (written before it) every channel not inlined, whose
    missing blobs read as "no value"."""
    if stored is None:
        return ((ch, v) for ch, v in versions.items() if ch not in inline)
    return ((ch, versions[ch]) for ch in stored if ch in versions)


def open_record(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored record or pointer with its packed fields (``"z"``) unpacked; records of the old
    layout (never packed) come back as they are."""
    if "z" not in stored:
        return stored
    out = {k: v for k, v in stored.items() if k != "z"}
    out.update(unpack({"z": stored["z"]}))
    return out


def pointer_of(serde: SerializerProtocol, record: dict[str, Any]) -> dict[str, Any]:
    """:func:`_pointer` of a stored record (either layout)."""
    record = open_record(record)
    return _pointer(
        record["id"],
        load_doc(serde, record["checkpoint"]),
        record.get("values") or {},
        record.get("stored"),
    )


def put_writes_plan(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> Plan[None]:
    """A task's writes sent on their own (the saver usually lets them ride with the next put:
    ``_pending``)."""
    found = writes_item(serde, config, writes, task_id, task_path)
    if found is not None:
        ref, item, _, _ = found
        yield from store_writes_plan({ref: [item]})
    return None


def store_writes_plan(taken: Taken) -> Plan[None]:
    """Store pending-writes items in one atomic batch; one per item when the server finds
    them too large together (each was a ``put_writes`` call of its own)."""
    # Repeat-safe: a repeated item is dropped by ``_decode_writes`` (first of a task/idx)
    ops = writes_ops(taken)
    if not ops:
        return None
    try:
        yield Atomic(ops, repeat_safe=True)
    except ValueTooLarge:
        if sum(len(items) for items in taken.values()) <= 1:
            raise
        for ref, items in taken.items():
            for item in items:
                yield Atomic(writes_ops({ref: [item]}), repeat_safe=True)
    return None


def _flat_writes(raw: Iterable[Any]) -> Iterator[list[Any]]:
    """Stored write items as ``[task_id, idx, channel, encoded value, task_path]``: items of
    the old layout are already that; new ones hold one call's writes each."""
    for item in raw:
        if isinstance(item, dict):
            item = unpack(item)
            for idx, channel, value in item["w"]:
                yield [item["t"], idx, channel, value, item["p"]]
        else:
            yield item


def _decode_writes(serde: SerializerProtocol, raw: Iterable[Any]) -> list[tuple[str, str, Any]]:
    """Pending writes in ``writes_sort_key`` order. A repeated ``(task_id, idx)`` keeps its first
    write (put_writes is idempotent), except special channels (negative idx) where the last wins,
    as in LangGraph's own savers."""
    chosen: dict[tuple[str, int], list[Any]] = {}
    for item in _flat_writes(raw):
        task_id, idx = item[0], int(item[1])
        if idx >= 0 and (task_id, idx) in chosen:
            continue
        chosen[(task_id, idx)] = item
    ordered = sorted(chosen.values(), key=lambda w: writes_sort_key(w[4], w[0], int(w[1])))
    return [(w[0], w[2], load_value(serde, w[3])) for w in ordered]


# -- reads ---------------------------------------------------------------------------------


def fetch_tuples_plan(
    serde: SerializerProtocol,
    refs: Sequence[Ref],
    *,
    records: dict[Ref, dict[str, Any]] | None = None,
    filter: dict[str, Any] | None = None,
    limit: int | None = None,
) -> Plan[list[CheckpointTuple]]:
    """Tuples for ``refs`` (in order, missing ones skipped): two round trips in all."""
    writes_raw: dict[Ref, list[Any]] = {}
    writes_known = records is None
    if records is None:
        keys: list[str] = []
        for t, n, c in refs:
            keys += [K.checkpoint_key(t, n, c), K.writes_key(t, n, c)]
        got = yield GetMany(keys)
        records = {}
        for ref in refs:
            rec = got.get(K.checkpoint_key(*ref))
            if rec is not None:
                records[ref] = open_record(rec)
                writes_raw[ref] = got.get(K.writes_key(*ref)) or []

    selected: list[tuple[Ref, dict[str, Any], dict[str, Any], Any]] = []
    for ref in refs:
        rec = records.get(ref)
        if rec is None:
            continue
        md = load_doc(serde, rec["metadata"])
        if filter and not all(md.get(k) == v for k, v in filter.items()):
            continue
        selected.append((ref, rec, load_doc(serde, rec["checkpoint"]), md))
        if limit is not None and len(selected) >= limit:
            break
    if not selected:
        return []

    blob_keys: set[str] = set()
    for (t, n, _), rec, ckpt, _ in selected:
        versions = ckpt.get("channel_versions") or {}
        for channel, version in _blob_channels(
            versions, rec.get("values") or {}, rec.get("stored")
        ):
            blob_keys.add(K.blob_key(t, n, channel, version))
    second = sorted(blob_keys)
    if not writes_known:
        second += [K.writes_key(*ref) for ref, *_ in selected]
    got = (yield GetMany(second)) if second else {}
    if not writes_known:
        writes_raw = {ref: got.get(K.writes_key(*ref)) or [] for ref, *_ in selected}
    return [
        _tuple(serde, ref, rec, ckpt, md, got, writes_raw.get(ref, []))
        for ref, rec, ckpt, md in selected
    ]


def _tuple(
    serde: SerializerProtocol,
    ref: Ref,
    rec: dict[str, Any],
    ckpt: dict[str, Any],
    md: Any,
    blobs: dict[str, Any],
    writes: list[Any],
) -> CheckpointTuple:
    """One tuple from its decoded record, the fetched blobs and its raw writes."""
    t, n, c = ref
    inline = rec.get("values") or {}
    versions = ckpt.get("channel_versions") or {}
    held = dict(_blob_channels(versions, inline, rec.get("stored")))
    values: dict[str, Any] = {}
    for channel, version in versions.items():
        if channel in inline:
            values[channel] = load_value(serde, inline[channel])
            continue
        if channel not in held:
            continue  # a version without a value: no blob was stored (``put_plan``)
        blob = blobs.get(K.blob_key(t, n, channel, version))
        if blob is not None and blob[0] != _EMPTY:  # "empty": the old layout's "no value"
            values[channel] = load(serde, blob)
    ckpt["channel_values"] = values
    parent = rec.get("parent")
    return CheckpointTuple(
        config=_config(t, n, c),
        # ckpt is the stored checkpoint dict rebuilt key by key: LangGraph's Checkpoint
        # TypedDict in value, a plain dict to the type checker.
        checkpoint=ckpt,  # type: ignore[arg-type]
        metadata=md,
        parent_config=_config(t, n, parent) if parent else None,
        pending_writes=_decode_writes(serde, writes),
    )


def get_tuple_plan(
    serde: SerializerProtocol, config: RunnableConfig, known: Known | None = None
) -> Plan[CheckpointTuple | None]:
    """The checkpoint ``config`` names, else the thread's latest: its "latest" pointer, then
    the record, writes and blobs it names (two round trips). ``known`` holds the pointer this
    saver last wrote or read for the thread: then the pointer and what *that* pointer names are
    read in one batch (one snapshot), used if the pointer read is still the one known (a warm
    process reading the thread it wrote: one round trip), else read again as named."""
    thread_id, ns = K.thread_and_ns(config)
    cid = get_checkpoint_id(config)
    if cid:
        found = yield from fetch_tuples_plan(serde, [(thread_id, ns, cid)])
        return found[0] if found else None
    pair, key = (thread_id, ns), K.latest_key(thread_id, ns)
    guess = known.get(pair) if known is not None else None
    got: dict[str, Any] | None = None
    if guess is not None:
        got = yield GetMany([key, *_named(thread_id, ns, open_record(guess))])
        stored = got.get(key)
        if stored != guess:  # another put, a deletion: what it named is not this one's
            got = None
    else:
        stored = yield Get(key)
    if stored is None:
        if known is not None:
            known.pop(pair, None)
        return None
    latest = open_record(stored)
    if "ptr" not in latest:  # the old layout: "latest" holds a copy of the record
        ref = (thread_id, ns, latest["id"])
        found = yield from fetch_tuples_plan(serde, [ref], records={ref: latest})
        return found[0] if found else None
    _remember(known, pair, stored)
    # a pointer: record, writes and the blobs it names in one round trip
    ref = (thread_id, ns, str(latest["ptr"]))
    rec_key, w_key = K.checkpoint_key(*ref), K.writes_key(*ref)
    if got is None:
        got = yield GetMany(_named(thread_id, ns, latest))
    rec = got.get(rec_key)
    if rec is None:  # deleted meanwhile (delete_thread removes the pointer first)
        return None
    rec = open_record(rec)
    ckpt = load_doc(serde, rec["checkpoint"])
    if any(
        ch not in (rec.get("values") or {}) and latest["blobs"].get(ch, _MISSING) != v
        for ch, v in (ckpt.get("channel_versions") or {}).items()
    ):  # the pointer does not match its record (a concurrent put): read the record's own way
        found = yield from fetch_tuples_plan(serde, [ref])
        return found[0] if found else None
    md = load_doc(serde, rec["metadata"])
    return _tuple(serde, ref, rec, ckpt, md, got, got.get(w_key) or [])


def _named(thread_id: str, ns: str, pointer: dict[str, Any]) -> list[str]:
    """The keys an (opened) "latest" pointer names: its record, its writes, its blobs."""
    ref = (thread_id, ns, str(pointer["ptr"]))
    pairs = _blob_channels(pointer["blobs"], {}, pointer.get("stored"))
    blobs = [K.blob_key(thread_id, ns, ch, v) for ch, v in pairs]
    return [K.checkpoint_key(*ref), K.writes_key(*ref), *blobs]


def dedupe_ids(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def list_refs_plan(
    config: RunnableConfig | None,
    *,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
) -> Plan[list[Ref]]:
    """Candidate checkpoints, newest first (before metadata filtering)."""
    conf = (config or {}).get("configurable") or {}
    if config is None or "thread_id" not in conf:
        keys = yield ListKeys("t/")
        pairs = [
            (K.unesc(p[1]), K.unesc(p[3]))
            for p in (k.split("/") for k in keys)
            if len(p) == 4 and p[2] == "latest"
        ]
    elif "checkpoint_ns" not in conf or conf["checkpoint_ns"] is None:
        thread_id = str(conf["thread_id"])
        keys = yield ListKeys(K.latest_prefix(thread_id))
        pairs = [(thread_id, K.unesc(k.rsplit("/", 1)[1])) for k in keys]
    else:
        pairs = [K.thread_and_ns(config)]
    before_id = get_checkpoint_id(before) if before else None
    wanted = conf.get("checkpoint_id")
    if wanted:
        refs = [(t, n, str(wanted)) for t, n in pairs]
    elif len(pairs) == 1 and limit is not None and not filter and not before_id:
        t, n = pairs[0]
        ids = yield Tail(K.index_key(t, n), limit)
        if len(set(ids)) < len(ids):  # a checkpoint was put twice: read the whole index
            ids = (yield Get(K.index_key(t, n))) or []
        refs = [(t, n, c) for c in dedupe_ids(ids)]
    else:
        got = yield from get_many_chunked([K.index_key(t, n) for t, n in pairs])
        refs = [(t, n, c) for t, n in pairs for c in dedupe_ids(got.get(K.index_key(t, n)) or [])]
    if before_id:
        refs = [r for r in refs if r[2] < before_id]
    refs.sort(key=lambda r: r[2], reverse=True)
    return refs

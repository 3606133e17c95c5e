"""``botwire export`` and ``botwire import``: a namespace as JSON Lines, expiry included.

One object per line: ``{"key": ..., "value": ...}`` plus ``"expires_at"`` (seconds since the
epoch, UTC) for a key with a TTL. The deadline is absolute, so an entry expires when it would
have in the source, however long the file waited; ``import`` turns it back into a TTL.

``import`` validates and writes the input in atomic chunks (all of a chunk or none of it) and,
on a failure, says exactly what was written before it. It only ever *sets* keys, so re-running the
same command after a failure gives the same result as one clean run.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ._common import TTL_MAX
from ._errors import BotWireError, InvalidArgument, Unavailable

if TYPE_CHECKING:
    from ._memory import Memory

__all__ = ["CHUNK_LINES", "EXPORT_HELP", "IMPORT_HELP", "export_entries", "import_entries"]

CHUNK_LINES = 100  # lines per atomic chunk: a failure re-sends at most this many
CHUNK_BYTES = 1 << 20  # ... or fewer, when their values pass 1 MiB (one request body)
READ_BATCH = 100  # keys read per round trip by export
_PROGRESS_SECONDS = 0.25  # redraw period of the progress line on a terminal
FIELDS = ("key", "value", "expires_at", "ttl")

_FORMAT = """\
Format (JSON Lines, UTF-8): one JSON object per line, e.g.
  {"key": "profile", "value": {"tone": "brief"}}
  {"key": "session", "value": [1, 2], "expires_at": 1767225600.0}
fields:
  key         the key (a string)
  value       any JSON value, stored with exactly its type
  expires_at  optional: when the key expires, in seconds since the epoch (UTC)
  ttl         optional, import only: expire this many seconds after the import
              (hand-written files; not with expires_at)
"""
EXPORT_HELP = (
    "Write every entry of NAMESPACE to stdout as JSON Lines, in key order. A key with a TTL\n"
    "carries its absolute expires_at, so `botwire import` keeps the same deadline. Versions and\n"
    "created/updated times are not exported (an import writes new versions). Keys that expire\n"
    "or are deleted while the export runs are left out and named on stderr.\n\n" + _FORMAT
)
IMPORT_HELP = (
    "Set the keys read as JSON Lines from stdin in NAMESPACE (existing keys are overwritten,\n"
    f"others are kept). Lines are validated and written in atomic chunks of {CHUNK_LINES}: a bad\n"
    "line stops the import before its chunk is written, and stderr says which lines and how\n"
    "many keys were written before it. Re-running the same command after fixing the input\n"
    "gives the same result as one clean run. Entries whose expires_at has passed are skipped\n"
    "(counted on stderr).\n\n" + _FORMAT
)


class _Progress:
    """One self-rewriting line on a terminal (count, rate, ETA); nothing on a pipe or file,
    where scripts read stderr. The summary line is always written."""

    def __init__(self, err: IO[str], verb: str) -> None:
        self._err = err
        self._verb = verb
        self.on = err.isatty()
        self._start = self._last = time.monotonic()
        self._drawn = False

    def update(self, done: int, fraction: float | None) -> None:
        now = time.monotonic()
        if not self.on or (self._drawn and now - self._last < _PROGRESS_SECONDS):
            return
        self._last, self._drawn = now, True
        elapsed = max(now - self._start, 1e-6)
        line = f"botwire: {self._verb} {done:,} entries, {done / elapsed:,.0f}/s"
        if fraction is not None and 0 < fraction <= 1:
            line += f", {fraction:.0%}, ETA {elapsed * (1 - fraction) / fraction:.0f}s"
        self._err.write(f"\r{line}\x1b[K")
        self._err.flush()

    def finish(self, summary: str) -> None:
        if self._drawn:
            self._err.write("\r\x1b[K")
        elapsed = time.monotonic() - self._start
        self._err.write(f"{summary} [{elapsed:.1f}s]\n" if self.on else f"{summary}\n")
        self._err.flush()


def export_entries(memory: Memory, out: IO[str], err: IO[str]) -> None:
    """Write every entry of ``memory`` to ``out`` (see the module docstring)."""
    progress = _Progress(err, "exported")
    total = memory.usage().keys if progress.on else 0  # the ETA's denominator, terminals only
    done = with_expiry = 0
    vanished: list[str] = []
    batch: list[str] = []

    def flush() -> None:
        nonlocal done, with_expiry
        entries = memory.entries(batch)
        for key in batch:
            entry = entries.get(key)
            if entry is None:  # listed, then expired or deleted before this read
                vanished.append(key)
                continue
            record: dict[str, Any] = {"key": key, "value": entry.value}
            if entry.expires_at is not None:
                record["expires_at"] = entry.expires_at
                with_expiry += 1
            out.write(json.dumps(record, ensure_ascii=False))
            out.write("\n")
            done += 1
        batch.clear()
        progress.update(done, done / total if total else None)

    for key in memory.iter_keys():
        batch.append(key)
        if len(batch) == READ_BATCH:
            flush()
    flush()
    out.flush()
    summary = f"botwire: exported {done} entries ({with_expiry} with expires_at)"
    if vanished:
        shown = ", ".join(repr(k) for k in vanished[:10]) + (" ..." if len(vanished) > 10 else "")
        summary += (
            f"; {len(vanished)} keys expired or were deleted during the export and are not in "
            f"it: {shown}"
        )
    progress.finish(summary)


def _input_size(stream: IO[bytes]) -> int:
    """Bytes in ``stream`` when it is a regular file (for the ETA), else 0."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _parse(ns: str, number: int, raw: bytes, now: float) -> tuple[str, Any, float | None] | None:
    """``(key, value, ttl)`` of one input line; ``None`` for an entry that already expired.
    Raises :class:`InvalidArgument` naming the line and the rule it breaks."""

    def bad(rule: str, key: Any = None) -> InvalidArgument:
        key = key if isinstance(key, str) else None
        return InvalidArgument(f"botwire: line {number}: {rule}", namespace=ns, key=key)

    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad("is not UTF-8 text") from None
    except ValueError as exc:
        raise bad(f"is not JSON ({exc}); each line must be one JSON object") from None
    except RecursionError:
        raise bad("nests JSON too deeply to read (thousands of levels)") from None
    if not isinstance(record, dict):
        raise bad(f"is a JSON {type(record).__name__}, not an object with 'key' and 'value'")
    key = record.get("key")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise bad(f"unknown field(s) {unknown}; the fields are {', '.join(FIELDS)}", key)
    if "key" not in record or "value" not in record:
        raise bad("needs both 'key' and 'value' (the format `botwire export` writes)", key)
    if not isinstance(key, str):
        raise bad(f"'key' must be a string, got {json.dumps(key)}")
    expires_at, ttl = record.get("expires_at"), record.get("ttl")
    if expires_at is not None and ttl is not None:
        raise bad("has both 'expires_at' and 'ttl'; keep one", key)
    if expires_at is not None:
        if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
            raise bad(f"'expires_at' must be seconds since the epoch, got {expires_at!r}", key)
        try:
            ttl = float(expires_at) - now
        except OverflowError:
            ttl = math.inf
        if ttl <= 0:
            return None
        if not ttl < TTL_MAX:  # the store's own check would blame a 'ttl' the line lacks
            raise bad(
                f"'expires_at' {expires_at!r} is not a time before {TTL_MAX:g} s (~317 "
                "years) from now; give a nearer expiry, or leave 'expires_at' out for none",
                key,
            )
    return key, record["value"], ttl


class _Report:
    """What an import has written so far, for its summary and for its failure message."""

    def __init__(self) -> None:
        self.written = 0  # entries committed
        self.keys: set[str] = set()
        self.expired = 0

    def before(self, first_line: int, rest: str = "") -> str:
        """What was written before the chunk starting at ``first_line``; ``rest`` says what
        became of that chunk (default: nothing of it or after it was written)."""
        if not self.written and not rest:
            return "nothing was written"
        done = (
            f"lines 1-{first_line - 1} were written ({self.written} entries, "
            f"{len(self.keys)} distinct keys)"
            if self.written
            else "nothing before them was written"
        )
        return f"{done}; {rest or f'nothing from line {first_line} on was written'}"


def import_entries(
    memory: Memory, stream: IO[bytes], err: IO[str], exit_code: Callable[[BaseException], int]
) -> int:
    """Read JSON Lines from ``stream`` into ``memory`` in atomic chunks; returns the exit code."""
    ns = memory.namespace
    progress = _Progress(err, "imported")
    size = _input_size(stream) if progress.on else 0
    report = _Report()
    tx = memory.atomic()
    chunk_keys: list[str] = []
    chunk_bytes = 0
    first = 1  # the first line of the chunk being built
    read = number = 0

    committing = False  # for an interrupt: was a chunk on its way to the store?

    def commit(next_line: int) -> None:
        nonlocal tx, chunk_bytes, first, committing
        if tx.ops:
            committing = True
            tx.commit()
            committing = False
            report.written += len(chunk_keys)
            report.keys.update(chunk_keys)
        tx, chunk_bytes, first = memory.atomic(), 0, next_line
        chunk_keys.clear()
        progress.update(report.written, read / size if size else None)

    def fail(exc: BaseException, where: str, what: str = "", rule: str = "") -> int:
        err.write(f"botwire: import into {ns!r} stopped at {where}: {rule or exc}\n")
        err.write(
            f"botwire: {report.before(first, what)}. The import only sets keys: fix the cause "
            "and re-run the same command to finish it.\n"
        )
        return exit_code(exc)

    try:
        for number, raw in enumerate(stream, 1):
            read += len(raw)
            if not raw.strip():
                continue
            key = None
            try:
                parsed = _parse(ns, number, raw, time.time())
                if parsed is None:
                    report.expired += 1
                    continue
                key, value, ttl = parsed
                tx.set(key, value, ttl=ttl)  # checks the key, the value and the TTL: no I/O
            except (ValueError, TypeError) as exc:  # InvalidArgument, InvalidKey, NotSerializable
                key = key if key is not None else getattr(exc, "key", None)
                where = f"line {number}" + (f" (key {key!r})" if key is not None else "")
                rule = str(exc).removeprefix("botwire: ").removeprefix(f"line {number}: ")
                return fail(exc, where, rule=rule)
            chunk_keys.append(key)
            chunk_bytes += len(tx.ops[-1].value or "")
            if len(chunk_keys) == CHUNK_LINES or chunk_bytes >= CHUNK_BYTES:
                commit(number + 1)
        commit(number + 1)
    except BotWireError as exc:  # a commit: the store refused the chunk or did not answer
        what = (
            f"lines {first}-{number} may or may not have been written (the store stopped "
            "answering during their commit); nothing after them was"
            if isinstance(exc, Unavailable)
            else f"nothing from line {first} on was written (a chunk is all-or-nothing)"
        )
        return fail(exc, f"the chunk of lines {first}-{number}", what)
    except KeyboardInterrupt:  # Ctrl-C: still say exactly what is in the store
        what = (
            f"lines {first}-{number} may or may not have been written (interrupted during "
            "their commit); nothing after them was"
            if committing
            else ""
        )
        err.write(f"\nbotwire: import into {ns!r} interrupted at line {number}\n")
        err.write(
            f"botwire: {report.before(first, what)}. The import only sets keys: re-run the "
            "same command to finish it.\n"
        )
        return 130  # the shell's code for SIGINT
    summary = f"botwire: imported {report.written} entries into {ns!r}"
    if report.expired:
        summary += f"; skipped {report.expired} whose expires_at had passed"
    progress.finish(summary)
    return 0

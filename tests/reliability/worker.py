"""A client process for the reliability tests: ``python worker.py '<json spec>'``.

It writes through ``botwire.Memory`` and records every *acknowledged* write (a call that
returned) as one line in its ack file, with one ``os.write`` on an ``O_APPEND`` descriptor, so a
line is either wholly there or absent even when this process or the server is killed.

Modes:

- ``append``: ``count`` appends of ``"<wid>:<i>"`` to one list; ack line ``a <wid>:<i>``.
- ``update``: ``count`` read-modify-writes of one counter object ``{"total": n, "<wid>": i}``
  (the function checks that this writer's last value is ``i - 1``: per-writer order);
  ack line ``u <wid>:<i>``.
- ``storm``: until ``stop_file`` exists or ``count`` rounds are done: append ``"<wid>:<i>"`` to
  ``log``, ``incr`` the counter ``c-<wid>``, and every third round ``set`` ``k-<wid>-<i>``.
  Ack lines ``a <id>``, ``i <wid> <new value>``, ``s <key>``; a call that fails with
  ``Unavailable`` (the server is down for longer than the client's deadline) is logged as
  ``x <what>`` and the worker moves on to a *new* item, so an item id is never sent twice by
  two different calls: any duplicate in the list would be the client's own retry applied twice.
- ``qput``: ``count`` puts of ``{"w": wid, "i": i}`` to queue ``queue``; ack line
  ``p <id> <wid>:<i>``.
- ``qwork``: a queue consumer (``_queue_consumer``); a ``victim`` claims once and waits to be
  killed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from botwire import ClaimExpired, Memory, Unavailable


class Acks:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())


def _bump(wid: str, i: int) -> Any:
    def fn(value: Any) -> Any:
        value = dict(value or {"total": 0})
        last = value.get(wid, -1)
        if last != i - 1:
            raise AssertionError(f"writer {wid} saw its own last value {last}, expected {i - 1}")
        value[wid] = i
        value["total"] = value["total"] + 1
        return value

    return fn


def _queue_consumer(m: Memory, spec: dict[str, Any], ack: Acks) -> None:
    """Claim and ack until ``stop_file`` exists and nothing is claimable. Lines: ``c <id>
    <claims> <w:i>`` when claimed, ``a <id> <w:i>`` when acked, ``x <id>`` for a late ack. A
    ``victim`` logs its first claim and then waits to be killed (``kill -9`` before its ack)."""
    q = m.queue(spec["queue"])
    stop = Path(spec["stop_file"])
    while True:
        c = q.claim(visibility=spec["visibility"], wait=0.5)
        if c is None:
            if stop.exists():
                return
            continue
        label = f"{c.item['w']}:{c.item['i']}"
        ack(f"c {c.id} {c.claims} {label}")
        if spec.get("victim"):
            time.sleep(600)  # claimed, never acked: the parent kill -9s us here
        try:
            q.ack(c)
            ack(f"a {c.id} {label}")
        except ClaimExpired:
            ack(f"x {c.id}")


def main(spec: dict[str, Any]) -> int:
    wid = str(spec["wid"])
    ack = Acks(spec["acks"])
    m = Memory(
        spec["ns"],
        url=spec["url"],
        timeout=spec.get("timeout", 10.0),
        retries=spec.get("retries", 3),
    )
    key = spec.get("key", "k")
    count = int(spec["count"])
    mode = spec["mode"]
    start_file = spec.get("start_file")
    if start_file:  # all workers start together: wait for the parent's go signal
        deadline = time.monotonic() + 60
        while not os.path.exists(start_file):
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.005)
    if mode == "append":
        for i in range(count):
            m.append(key, f"{wid}:{i}")
            ack(f"a {wid}:{i}")
    elif mode == "update":
        for i in range(count):
            m.update(key, _bump(wid, i))
            ack(f"u {wid}:{i}")
    elif mode == "storm":
        stop = Path(spec["stop_file"])
        for i in range(count):
            if stop.exists():
                break
            item = f"{wid}:{i}"
            try:
                m.append("log", item)
                ack(f"a {item}")
            except Unavailable:
                ack(f"x a {item}")
            try:
                ack(f"i {wid} {m.incr(f'c-{wid}')}")
            except Unavailable:
                ack(f"x i {wid}")
            if i % 3 == 0:
                try:
                    m.set(f"k-{item}", i)
                    ack(f"s k-{item}")
                except Unavailable:
                    ack(f"x s k-{item}")
    elif mode == "qput":
        q = m.queue(spec["queue"])
        for i in range(count):
            ack(f"p {q.put({'w': wid, 'i': i})} {wid}:{i}")
    elif mode == "qwork":
        _queue_consumer(m, spec, ack)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    m.close()
    ack("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))

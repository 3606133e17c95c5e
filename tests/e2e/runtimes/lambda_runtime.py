"""A stand-in for the AWS Lambda Python runtime: one process = one container.

Usage: ``python lambda_runtime.py TASK_ROOT MODULE.FUNCTION EVENTS_JSON``

Like the real runtime it puts the task root on ``sys.path``, imports the handler module once
(the cold start) and then calls the handler once per event (the warm invocations), each with a
fresh context. It prints one JSON line per invocation — ``{"ok": result}`` or
``{"error": ..., "message": ..., "namespace": ...}`` — and a last line describing the shared
HTTP backend (``connections_opened``), so a test can see that warm invocations reuse it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class LambdaContext:
    """The attributes of the real context object the handlers use."""

    function_name: str = "botwire-example"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def backend_stats() -> dict[str, Any]:
    """The shared backend that every ``Memory`` with these settings uses."""
    from botwire import Memory

    probe = Memory("runtime-probe")  # same settings -> same shared store; opens no connection
    store = probe._store
    while hasattr(store, "_store"):  # BOTWIRE_DEBUG wraps the store
        store = store._store
    return {
        "backend": type(store).__name__,
        "connections_opened": getattr(store, "connections_opened", None),
        "connections_open": open_connections(getattr(store, "url", "")),
    }


def open_connections(url: str) -> int | None:
    """How many TCP connections this process holds open to ``url``'s port (Linux /proc)."""
    port = urlsplit(url).port
    if port is None or not os.path.exists("/proc/net/tcp"):
        return None
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                remote_port = int(cols[2].rsplit(":", 1)[1], 16)
                # 01 ESTABLISHED, 08 CLOSE_WAIT (the server closed it, we never did)
                if cols[9] in inodes and remote_port == port and cols[3] in ("01", "08"):
                    count += 1
    return count


def main(task_root: str, handler_name: str, events_json: str) -> int:
    sys.path.insert(0, task_root)
    module_name, func_name = handler_name.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), func_name)
    failed = 0
    for event in json.loads(events_json):
        try:
            out: dict[str, Any] = {"ok": handler(event, LambdaContext())}
        except Exception as exc:
            failed += 1
            out = {
                "error": type(exc).__name__,
                "error_module": type(exc).__module__,
                "message": str(exc),
                "namespace": getattr(exc, "namespace", None),
            }
        print(json.dumps(out), flush=True)
    print(json.dumps({"stats": backend_stats()}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))

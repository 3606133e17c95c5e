"""A WSGI app as users deploy one: ``Memory`` / ``AsyncMemory`` built at import time, which
gunicorn ``--preload`` runs in the master before forking the workers (``BOTWIRE_TEST_KIND``
``postgres``: ``Memory(ns, store=PostgresStore(url))``, no server). ``GET /?user=U`` answers
the stored value of key ``U`` and the worker's pid. Configured by environment variables."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from botwire import AsyncMemory, Memory

URL = os.environ["BOTWIRE_TEST_URL"]
NS = os.environ["BOTWIRE_TEST_NS"]
KIND = os.environ["BOTWIRE_TEST_KIND"]

if KIND == "postgres":  # no server: the PostgreSQL store in the app's own process
    from botwire_server.storage.postgres import PostgresStore

    memory = Memory(NS, store=PostgresStore(URL, min_size=2))
    memory.get("warm-up")  # the master holds pooled connections now
else:
    memory = Memory(NS, url=URL, timeout=10, retries=1)
    amemory = AsyncMemory(NS, url=URL, timeout=10, retries=1)
    # The master uses both before forking: each holds a pooled keep-alive connection now.
    memory.get("warm-up")
    _master_loop = asyncio.new_event_loop()
    _master_loop.run_until_complete(amemory.get("warm-up"))


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    user = environ.get("QUERY_STRING", "").partition("user=")[2]
    value = memory.get(user) if KIND != "async" else asyncio.run(amemory.get(user))
    body = json.dumps({"user": user, "value": value, "pid": os.getpid()}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]

"""Two processes append to one ADK session at once: no event is lost, and exactly the loser of
the race gets ``StaleSessionError`` (ADK #3717 reports false positives; #4751 lost events).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest

from botwire_adk import BotWireSessionService
from support.adapters import race_processes
from support.backends import ADAPTER_BACKENDS

HERE = Path(__file__).resolve().parent
KEY = {"app_name": "shop", "user_id": "alice"}


@pytest.mark.parametrize(
    "memory_url",
    [pytest.param(b, marks=[] if b == "http" else [pytest.mark.slow]) for b in ADAPTER_BACKENDS],
    indirect=True,
)
def test_two_processes_append_at_once(memory_url: str, namespace: str, tmp_path: Path) -> None:
    sid = f"race-{uuid.uuid4().hex[:6]}"
    service = BotWireSessionService(namespace, url=memory_url)
    asyncio.run(service.create_session(session_id=sid, **KEY))
    go = tmp_path / "go"
    env = dict(os.environ, BOTWIRE_URL=memory_url, PYTHONUNBUFFERED="1")
    outs = {tag: tmp_path / f"{tag}.json" for tag in ("p1", "p2")}
    race_processes(
        HERE / "_race.py",
        [[namespace, sid, str(go), t, str(outs[t])] for t in outs],
        env,
        go,
    )
    results = {t: json.loads(p.read_text()) for t, p in outs.items()}
    stale = sorted(r["stale"] for r in results.values())
    print(f"FIGURE adk race: stale errors per writer {stale}")
    # Exactly one writer lost the race, once; the winner never saw a StaleSessionError.
    assert stale == [0, 1]
    session = asyncio.run(service.get_session(session_id=sid, **KEY))
    assert session is not None
    ids = [e.id for e in session.events]
    # Both events are stored exactly once: the loser's retry landed after the winner's.
    assert sorted(ids) == sorted(r["event"] for r in results.values())
    loser = next(t for t, r in results.items() if r["stale"])
    assert session.events[-1].author == loser
    assert session.state["by_p1"] is True and session.state["by_p2"] is True
    assert session.state["last"] == loser

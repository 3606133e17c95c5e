"""``from botwire import BotWireHistoryProvider`` works, or names the pip command."""

from __future__ import annotations

import subprocess
import sys
import warnings

import botwire
from botwire_agent_framework import BotWireHistoryProvider


def test_names_resolve_lazily_from_botwire() -> None:
    assert botwire.BotWireHistoryProvider is BotWireHistoryProvider
    with warnings.catch_warnings():  # the framework's SessionStore is experimental and says so
        warnings.filterwarnings("ignore", message=r"\[SESSION_STORE\]")
        store = botwire.BotWireSessionStore
    assert store.__module__ == "botwire_agent_framework._store"
    assert {"BotWireHistoryProvider", "BotWireSessionStore"} <= set(dir(botwire))


def test_missing_extra_names_the_pip_command() -> None:
    code = (
        "import sys\n"
        "sys.modules['botwire_agent_framework'] = None\n"  # as if the extra were not installed
        "for name in ('BotWireHistoryProvider', 'BotWireSessionStore'):\n"
        "    try:\n"
        "        exec(f'from botwire import {name}')\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert len(out) == 2
    assert all('pip install "botwire[agent-framework]"' in line for line in out)

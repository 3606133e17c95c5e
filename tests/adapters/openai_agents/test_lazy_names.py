"""``from botwire import BotWireSession`` (and the pydantic-ai names) resolve lazily, or say
which extra to install."""

from __future__ import annotations

import subprocess
import sys

import botwire
import botwire_openai_agents
import botwire_pydantic_ai


def test_names_resolve_to_the_adapter_classes() -> None:
    assert botwire.BotWireSession is botwire_openai_agents.BotWireSession
    assert botwire.BotWireRunStore is botwire_openai_agents.BotWireRunStore
    assert botwire.BotWireConversationStore is botwire_pydantic_ai.BotWireConversationStore
    assert botwire.BotWireMessageHistory is botwire_pydantic_ai.BotWireMessageHistory


def test_missing_extra_names_the_pip_command() -> None:
    code = (
        "import sys\n"
        "sys.modules['botwire_openai_agents'] = None\n"  # as if the extra were not installed
        "sys.modules['botwire_pydantic_ai'] = None\n"
        "for stmt in ('from botwire import BotWireSession',"
        " 'from botwire import BotWireConversationStore'):\n"
        "    try:\n        exec(stmt)\n    except ImportError as exc:\n        print(exc)\n"
        "print('agents' in sys.modules, 'pydantic_ai' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert 'pip install "botwire[openai-agents]"' in out
    assert 'pip install "botwire[pydantic-ai]"' in out
    assert out.splitlines()[-1] == "False False"  # import botwire never imports a framework

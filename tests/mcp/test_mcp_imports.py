"""``from botwire import ...`` never imports the MCP SDK; ``botwire-mcp import`` needs none."""

from __future__ import annotations

from support.proc import run_python


def test_botwire_and_the_importer_stay_free_of_mcp() -> None:
    code = (
        "import sys\n"
        "import botwire\n"
        "from botwire import Memory, AsyncMemory, BotWireError, Conflict\n"
        "assert not [m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', "
        "'botwire_mcp'))], 'botwire imported mcp'\n"
        "import botwire_mcp.cli, botwire_mcp._importer, botwire_mcp._graph\n"
        "from botwire_mcp import import_jsonl, KnowledgeGraph\n"
        "assert not [m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')], "
        "'the importer imported the mcp SDK'\n"
        "print('OK')\n"
    )
    assert run_python(code).stdout.strip() == "OK"

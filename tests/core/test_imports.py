"""``import botwire`` is cheap: nothing heavy loads until an operation needs it."""

from __future__ import annotations

import json

from support.proc import run_python

HEAVY = [
    "sqlite3",
    "http.client",
    "ssl",
    "socket",
    "httpx",
    "json",
    "email.parser",
    "langchain_core",
    "crewai",
    "urllib.request",
]


def _loaded(code: str) -> list[str]:
    probe = (
        code + f"\nimport sys\nloaded = [m for m in {HEAVY!r} if m in sys.modules]"
        "\nimport json\nprint(json.dumps(loaded))"
    )
    return json.loads(run_python(probe).stdout.strip().splitlines()[-1])


def test_import_botwire_loads_nothing_heavy() -> None:
    assert _loaded("import botwire") == []


def test_memory_class_loads_no_backend() -> None:
    assert _loaded("from botwire import Memory, AsyncMemory, Conflict") == ["json"]


def test_embedded_store_loads_sqlite_but_no_network() -> None:
    loaded = _loaded("from botwire import Memory\nMemory('x', url=':memory:').get('k')")
    assert "sqlite3" in loaded
    assert not {"socket", "ssl", "http.client", "httpx"} & set(loaded)


def test_http_backend_loads_socket_but_no_ssl_for_http() -> None:
    loaded = _loaded("from botwire import Memory\nMemory('x', url='http://127.0.0.1:9')")
    assert "socket" in loaded
    assert not {"ssl", "http.client", "sqlite3", "httpx", "email.parser"} & set(loaded)


def test_adapter_names_resolve_lazily_or_name_the_pip_command() -> None:
    out = run_python(
        "import sys\n"
        "sys.modules['botwire_langchain'] = None\n"  # as if the extra were not installed
        "sys.modules['botwire_crewai'] = None\n"
        "for stmt in ('from botwire import BotWireChatHistory',"
        " 'from botwire.memory import memory_tools'):\n"
        "    try:\n"
        "        exec(stmt)\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    ).stdout
    assert 'pip install "botwire[langchain]"' in out
    assert 'pip install "botwire[crewai]"' in out


def test_unknown_attribute_is_an_attribute_error() -> None:
    out = run_python(
        "import botwire\ntry:\n    botwire.Nope\nexcept AttributeError as e:\n    print('ok', e)"
    ).stdout
    assert out.startswith("ok")


def test_cold_http_path_skips_costly_stdlib_modules() -> None:
    # Each of these cost a cold start milliseconds (benchmarks/run.py, P1 and P6); the client
    # does without them: typing only for type checkers, records without dataclasses (inspect),
    # its own percent-encoding and URL split (urllib.parse), tempfile and random only when used.
    probe = (
        "from botwire import Memory\n"
        "m = Memory('x', url='http://127.0.0.1:9')\n"
        "import botwire.backends._http_sync\n"
        "import sys\n"
        "costly = ['typing', 'dataclasses', 'inspect', 'tempfile', 'urllib.parse', 'random']\n"
        "print(','.join(name for name in costly if name in sys.modules))\n"
    )
    assert run_python(probe).stdout.strip().splitlines()[-1:] in ([], [""])

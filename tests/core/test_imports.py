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
    assert _loaded("from botwire import Memory, AsyncMemory, Conflict") == []


def test_embedded_store_loads_sqlite_but_no_network() -> None:
    loaded = _loaded("from botwire import Memory\nMemory('x', url=':memory:').get('k')")
    assert "sqlite3" in loaded
    assert not {"socket", "ssl", "http.client", "httpx"} & set(loaded)


def test_http_backend_loads_neither_socket_module_nor_ssl_for_http() -> None:
    # _socket (the C module) is enough for plain HTTP; socket.py builds enums at import.
    loaded = _loaded("from botwire import Memory\nMemory('x', url='http://127.0.0.1:9')")
    assert not {"socket", "ssl", "http.client", "sqlite3", "httpx", "email.parser"} & set(loaded)


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


# Each of these costs a cold start time (benchmarks/run.py, P1 and P6) and the client does without
# them: typing only for type checkers; records without dataclasses (inspect); its own
# percent-encoding and URL split (urllib.parse); _json without json (which compiles regexes: re,
# enum); _thread without threading; _socket without socket (enums); _collections_abc without
# collections.abc (collections); an IP literal or ASCII bytes to getaddrinfo, never the idna codec
# (unicodedata); tempfile, random, warnings, contextlib and importlib only when used.
COSTLY = [
    "typing",
    "dataclasses",
    "inspect",
    "tempfile",
    "urllib.parse",
    "random",
    "json",
    "re",
    "enum",
    "threading",
    "socket",
    "selectors",
    "collections",
    "functools",
    "contextlib",
    "warnings",
    "importlib",
    "math",
    "encodings.idna",
    "unicodedata",
    "botwire._atomic",
]


def test_cold_http_invocation_skips_costly_stdlib_modules(shared_server_url: str) -> None:
    probe = (
        "from botwire import Memory\n"
        f"m = Memory('cold-imports', url={shared_server_url!r})\n"
        "m.get('profile')\n"
        "m.set('profile', {'seen': True, 'n': [1, 2.5, None]})\n"
        "assert m.get('profile') == {'seen': True, 'n': [1, 2.5, None]}\n"
        "import sys\n"
        f"print(','.join(name for name in {COSTLY!r} if name in sys.modules))\n"
    )
    assert run_python(probe).stdout.strip().splitlines()[-1:] in ([], [""])


def test_cold_http_invocation_by_host_name_skips_the_idna_codec(shared_server_url: str) -> None:
    url = shared_server_url.replace("127.0.0.1", "localhost")
    probe = (
        "from botwire import Memory\n"
        f"Memory('cold-imports', url={url!r}).set('k', 1)\n"
        "import sys\n"
        "print([m for m in ('encodings.idna', 'unicodedata', 'socket') if m in sys.modules])\n"
    )
    assert run_python(probe).stdout.strip().splitlines()[-1] == "[]"

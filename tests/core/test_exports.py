"""Every exported name resolves, and ``botwire``'s adapter table is derived from the adapters'
``__all__`` (issue 19 item 7, issue 21 item 2).

``uv run python tests/core/test_exports.py --write`` regenerates the table in
``botwire/__init__.py`` after an adapter package changes its ``__all__``.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INIT = ROOT / "packages/botwire-core/src/botwire/__init__.py"
NOT_ADAPTERS = {"botwire-core", "botwire-server"}
# Re-exported besides the BotWire* classes: botwire re-exported it before the table was derived.
ALSO_REEXPORTED = {"InvocationGuard"}
BEGIN = "# name -> (adapter module, extra that installs it)\n"
END = "# END GENERATED\n"


def _literal_all(init: Path) -> list[str]:
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{init} has no literal __all__")


def adapter_packages() -> dict[str, str]:
    """module -> extra, for every adapter package in the workspace."""
    out = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        dist = pyproject.parent.name
        if dist not in NOT_ADAPTERS:
            out[dist.replace("-", "_")] = dist.removeprefix("botwire-")
    return out


def render() -> str:
    """The generated block of ``botwire/__init__.py``."""
    owners: dict[str, list[tuple[str, str]]] = {}
    for module, extra in adapter_packages().items():
        init = ROOT / "packages" / module.replace("_", "-") / "src" / module / "__init__.py"
        for name in _literal_all(init):
            if name.startswith("BotWire") or name in ALSO_REEXPORTED:
                owners.setdefault(name, []).append((module, extra))
    single = {n: w[0] for n, w in sorted(owners.items()) if len(w) == 1}
    clashes = {n: tuple(w) for n, w in sorted(owners.items()) if len(w) > 1}
    lines = [BEGIN, "ADAPTERS: dict[str, tuple[str, str]] = {\n"]
    lines += [f"    {n!r}: {w!r},\n".replace("'", '"') for n, w in single.items()]
    lines += [
        "}\n",
        "# names that several adapters export: never resolved to one of them (docs/design.md,"
        ' "Re-exports")\n',
        "CLASHES: dict[str, tuple[tuple[str, str], ...]] = {\n",
    ]
    lines += [f"    {n!r}: {w!r},\n".replace("'", '"') for n, w in clashes.items()]
    lines += ["}\n", END]
    return "".join(lines)


def _current_block() -> str:
    text = INIT.read_text()
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def write() -> None:
    text = INIT.read_text()
    INIT.write_text(text.replace(_current_block(), render()))


def test_adapter_table_is_derived_from_the_adapters_all() -> None:
    assert _current_block() == render(), (
        "botwire/__init__.py's adapter table is stale: run "
        "`uv run python tests/core/test_exports.py --write`"
    )


def test_the_table_holds_the_known_adapters_and_clashes() -> None:
    block = render()
    assert '"BotWireSaver": ("botwire_langgraph", "langgraph")' in block
    assert '"BotWireMemory": ("botwire_autogen", "autogen")' in block
    assert '"BotWireStorage": (("botwire_crewai", "crewai"), ("botwire_strands", "strands"))' in (
        block
    )
    assert '"BotWireStore": (("botwire_langchain", "langchain"), ("botwire_langgraph", ' in block


def _run(code: str) -> str:
    from support.proc import run_python

    # Importing every framework takes ~46 s alone and far longer on a loaded machine.
    return run_python(code, timeout=280).stdout.strip().splitlines()[-1]


def test_every_name_in_every_all_resolves() -> None:
    # One process (importing every framework is slow) imports every module of every package
    # under packages/*/src (but no __main__, which runs a command) and resolves every name of
    # its __all__; then every name of botwire, lazy adapters included.
    roots = sorted(str(p) for p in ROOT.glob("packages/*/src/*") if p.is_dir())
    probe = f"""
import importlib, json, pkgutil, sys, os
missing, checked = [], 0
for root in {roots!r}:
    pkg = os.path.basename(root)
    names = [pkg] + [m.name for m in pkgutil.walk_packages([root], pkg + ".")]
    for modname in names:
        if modname.rsplit(".", 1)[-1] == "__main__":
            continue
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", ()):
            checked += 1
            try:
                getattr(module, name)
            except Exception as exc:
                missing.append(f"{{modname}}.{{name}}: {{type(exc).__name__}}: {{exc}}")
import botwire
ns = {{}}
exec("from botwire import *", ns)
lazy = sorted(set(botwire.__all__) | set(botwire.ADAPTERS))
for name in lazy:
    try:
        exec(f"from botwire import {{name}}", {{}})
    except Exception as exc:
        missing.append(f"botwire.{{name}}: {{type(exc).__name__}}: {{exc}}")
missing += [f"botwire.{{n}}: not bound by import *" for n in botwire.__all__ if n not in ns]
missing += [f"botwire.{{n}} is not {{m}}.{{n}}" for n, (m, _) in botwire.ADAPTERS.items()
            if getattr(botwire, n) is not getattr(importlib.import_module(m), n)]
from botwire import BotWireSaver
assert BotWireSaver.__module__ == "botwire_langgraph._saver", BotWireSaver
print(json.dumps({{"missing": missing, "checked": checked, "lazy": lazy}}))
"""
    result = json.loads(_run(probe))
    print(f"FIGURE exports: {result['checked']} names of __all__, {len(result['lazy'])} of botwire")
    assert result["missing"] == []
    assert {"BotWireSaver", "BotWireMemory", "BotWireKVStore", "Memory", "Conflict"} <= set(
        result["lazy"]
    )
    assert "error_from_payload" not in result["lazy"] and "BotWireStore" not in result["lazy"]


def test_errors_are_every_error_class_of_errors_all_and_nothing_else() -> None:
    probe = """
import json, botwire, botwire._errors as e
names = [n for n in botwire.__all__ if isinstance(getattr(botwire, n), type)
         and issubclass(getattr(botwire, n), BaseException)]
print(json.dumps({"exported": sorted(names), "defined": sorted(
    n for n in e.__all__ if isinstance(getattr(e, n), type))}))
"""
    out = json.loads(_run(probe))
    assert out["exported"] == sorted([*out["defined"], "BotWireWarning"])


def test_a_missing_adapter_names_the_pip_command_for_every_lazy_name() -> None:
    probe = """
import json, sys, botwire
for module, _ in botwire.ADAPTERS.values():
    sys.modules[module] = None  # as if the extra were not installed
out = {}
for name, (module, extra) in botwire.ADAPTERS.items():
    try:
        exec(f"from botwire import {name}")
        out[name] = "imported"
    except ImportError as exc:
        out[name] = str(exc) if f'pip install "botwire[{extra}]"' in str(exc) else repr(exc)
print(json.dumps(out))
"""
    out = json.loads(_run(probe))
    assert out and all("pip install" in why for why in out.values()), out


def test_a_clashing_name_is_refused_with_both_imports() -> None:
    probe = """
import json
out = []
for name in ("BotWireStore", "BotWireStorage"):
    try:
        exec(f"from botwire import {name}")
        out.append("imported")
    except ImportError as exc:
        out.append(str(exc))
print(json.dumps(out))
"""
    store, storage = json.loads(_run(probe))
    assert "from botwire_langchain import BotWireStore" in store
    assert "from botwire_langgraph import BotWireStore" in store
    assert 'pip install "botwire[langgraph]"' in store
    assert "from botwire_crewai import BotWireStorage" in storage
    assert "from botwire_strands import BotWireStorage" in storage


def test_listing_botwire_loads_no_adapter_and_nothing_heavy() -> None:
    probe = """
import sys, botwire
names = dir(botwire)
heavy = [m for m in ("typing", "json", "sqlite3", "socket", "ssl", "importlib", "botwire._memory")
         if m in sys.modules]
exec("from botwire import *", {})
adapters = [m for m in ("langgraph", "crewai", "botwire_langgraph", "botwire_crewai")
            if m in sys.modules]
print(repr((heavy, adapters, len(names))))
"""
    heavy, adapters, n = ast.literal_eval(_run(probe))
    assert heavy == [] and adapters == [] and n > 40


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
        print(re.sub(r"\n+", "\n", _current_block()))
    else:
        sys.exit("usage: python tests/core/test_exports.py --write")

"""What users install: the wheels and extras, built and installed as pip would."""

from __future__ import annotations

import socket
import subprocess
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from support.server import running_server
from support.sockets import keepalive_nodelay, loaded_libraries

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = {
    "langchain": "botwire_langchain",
    "langgraph": "botwire_langgraph",
    "crewai": "botwire_crewai",
    "autogen": "botwire_autogen",
    "llamaindex": "botwire_llamaindex",
    "agent-framework": "botwire_agent_framework",
    "mcp": "botwire_mcp",
    "openai-agents": "botwire_openai_agents",
    "pydantic-ai": "botwire_pydantic_ai",
    "adk": "botwire_adk",
    "strands": "botwire_strands",
    "server": "botwire_server",
}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        ["uv", "build", "--all-packages", "-o", str(out), "-q"], cwd=ROOT, check=True, timeout=600
    )
    return out


def _wheel(dist: Path, name: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(dist / f"{name}-0.3.0-py3-none-any.whl")


def _metadata(dist: Path, name: str) -> tuple[dict[str, str], list[str]]:
    with _wheel(dist, name) as whl:
        text = whl.read(f"{name}-0.3.0.dist-info/METADATA").decode()
    msg = Parser().parsestr(text)
    return dict(msg.items()), msg.get_all("Requires-Dist") or []


def test_umbrella_ships_no_code_and_forwards_every_extra(dist: Path) -> None:
    with _wheel(dist, "botwire") as whl:
        assert all(n.startswith("botwire-0.3.0.dist-info/") for n in whl.namelist())
    _, requires = _metadata(dist, "botwire")
    assert "botwire-core==0.3.0" in requires
    for extra in ADAPTERS:
        assert f"botwire-{extra}==0.3.0; extra == '{extra}'" in requires
        assert f"botwire-{extra}==0.3.0; extra == 'all'" in requires
    assert "botwire-core[async]==0.3.0; extra == 'async'" in requires


def test_core_has_no_runtime_dependencies(dist: Path) -> None:
    _, requires = _metadata(dist, "botwire_core")
    assert requires == ["httpx>=0.27; extra == 'async'"]
    with _wheel(dist, "botwire_core") as whl:
        names = whl.namelist()
        entry_points = whl.read("botwire_core-0.3.0.dist-info/entry_points.txt").decode()
    assert "botwire/py.typed" in names and "botwire/__init__.py" in names
    assert "botwire = botwire.cli:main" in entry_points


@pytest.mark.parametrize("extra", list(ADAPTERS))
def test_each_package_ships_its_code_and_pins_core(dist: Path, extra: str) -> None:
    module = ADAPTERS[extra]
    wheel = "botwire_" + extra.replace("-", "_")  # a wheel's name never has a hyphen
    _, requires = _metadata(dist, wheel)
    assert any(r.startswith("botwire-core") and "==0.3.0" in r for r in requires)
    with _wheel(dist, wheel) as whl:
        names = whl.namelist()
    assert f"{module}/__init__.py" in names and f"{module}/py.typed" in names
    assert not any(n.startswith("botwire/") for n in names)  # never overwrites the core


def test_pip_install_botwire_gives_a_working_client(dist: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-index", "--find-links", dist, "botwire"],
        check=True,
        timeout=300,
    )
    freeze = subprocess.run(
        [python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(freeze) == ["botwire-core==0.3.0", "botwire==0.3.0"]  # nothing else
    code = (
        "from botwire import Memory\n"
        f"m = Memory('u1', url={str(tmp_path / 'm.db')!r})\n"
        "m.set('n', 5); print(type(m.get('n')).__name__)\n"
        "try:\n    from botwire import BotWireChatHistory\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.splitlines()[0] == "int"
    assert 'pip install "botwire[langchain]"' in out
    cli = subprocess.run(
        [env_dir / "bin" / "botwire", "--url", str(tmp_path / "m.db"), "get", "u1", "n"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.stdout.strip() == "5"


def test_pip_install_botwire_server_runs_what_was_tested(dist: Path, tmp_path: Path) -> None:
    """The server as the Dockerfile installs it (its locked dependencies, then the two wheels):
    it runs on uvloop with the bounded httptools protocol, as every test and benchmark does, and
    not on plain asyncio and h11 (which a package without them got: 44 ms per keep-alive
    request, and no head deadline, so a slowloris client held a connection for ever)."""
    requirements = tmp_path / "requirements.txt"
    export = ["uv", "export", "--frozen", "--no-dev", "--no-emit-workspace", "--quiet"]
    subprocess.run(
        [*export, "--package", "botwire-server", "--output-file", str(requirements)],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir)
    python = env_dir / "bin" / "python"
    install = ["uv", "pip", "install", "--quiet", "--python", str(python)]
    subprocess.run([*install, "-r", str(requirements)], check=True, timeout=600)
    wheels = [
        dist / "botwire_core-0.3.0-py3-none-any.whl",
        dist / "botwire_server-0.3.0-py3-none-any.whl",
    ]
    subprocess.run([*install, "--no-deps", *map(str, wheels)], check=True, timeout=120)
    where = subprocess.run(
        [python, "-c", "import botwire_server; print(botwire_server.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(env_dir))  # the wheel, not the workspace's tree
    with running_server(
        database=tmp_path / "bw.db", python=python, env={"BOTWIRE_HEADER_TIMEOUT": "1"}
    ) as server:
        loaded = loaded_libraries(server.proc.pid)
        assert any("/uvloop/" in p for p in loaded) and any("/httptools/" in p for p in loaded)
        nodelay = keepalive_nodelay(server.proc.pid, server.port, "p")  # keep-alive requests
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never ends
            answer = slow.recv(200)
    assert nodelay != 0
    assert answer.startswith(b"HTTP/1.1 408 "), answer  # the bounded protocol's head deadline

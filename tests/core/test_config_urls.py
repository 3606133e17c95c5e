"""One rule for where memory lives, the same in the client, ``botwire --url`` and
``botwire-server --database``: ``sqlite:///rel.db`` (and ``rel.db``) relative to the working
directory, ``sqlite:////abs.db`` (and ``/abs.db``) absolute; what is surely no file name (a server
address without its scheme, a mistyped scheme) is refused with a suggestion, creating nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from botwire import InvalidArgument, Memory


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize(
    ("url", "meant"),
    [
        ("127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("localhost:8765", "http://localhost:8765"),
        ("botwire.internal:80/", "http://botwire.internal:80/"),
        ("[::1]:8765", "http://[::1]:8765"),
        ("localhost", "http://localhost:8765"),
        ("10.0.0.7", "http://10.0.0.7:8765"),
        ("http:/127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http//127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("https:botwire.example.com", "https://botwire.example.com"),
        ("htp://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("htps://botwire.example.com", "https://botwire.example.com"),
    ],
)
def test_an_address_without_a_usable_scheme_gets_a_suggestion(
    cwd: Path, url: str, meant: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        Memory("ns", url=url)
    assert f"did you mean {meant}?" in str(err.value)
    assert repr(url) in str(err.value)
    assert list(cwd.iterdir()) == []  # no file named after the address


def test_the_environment_variable_is_named(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTWIRE_URL", "127.0.0.1:8765\n")
    with pytest.raises(InvalidArgument, match=r"BOTWIRE_URL '127\.0\.0\.1:8765' has no scheme"):
        Memory("ns")


def test_a_database_url_is_refused_without_echoing_its_password(cwd: Path) -> None:
    with pytest.raises(InvalidArgument) as err:
        Memory("ns", url="postgresql://bot:hunter2@db:5432/botwire")
    assert "hunter2" not in str(err.value)
    assert "botwire-server --database" in str(err.value) and "http(s)://host:port" in str(err.value)
    assert "store=PostgresStore(url)" in str(err.value)  # the way without a server


@pytest.mark.parametrize(
    "url",
    [
        "host=db port=5432 dbname=botwire user=bot password=hunter2",
        "user=postgres dbname=botwire host=127.0.0.1 port=5432 password=hunter2",
        "dbname=botwire password=hunter2",
    ],
)
def test_a_database_connection_string_is_refused_not_made_a_file(cwd: Path, url: str) -> None:
    """A libpq ``key=value`` string (what psycopg's ``make_conninfo`` returns) was taken for a
    SQLite file name: the client made a file of that name in the working directory and ran on
    it, without a word (found writing issue 22's direct-watch test)."""
    with pytest.raises(InvalidArgument) as err:
        Memory("ns", url=url)
    assert "hunter2" not in str(err.value)
    assert "connection string" in str(err.value) and "store=PostgresStore(url)" in str(err.value)
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("notes.db", "notes.db"),
        ("sqlite:///notes.db", "notes.db"),
        ("sub/notes.db", "sub/notes.db"),
        ("sqlite:///sub/notes.db", "sub/notes.db"),
        ("sqlite:///./127.0.0.1:8765", "127.0.0.1:8765"),  # the way to name such a file
        ("my:notes.db", "my:notes.db"),
        ("  sqlite:///notes.db\n", "notes.db"),
    ],
)
def test_relative_files_are_relative_to_the_working_directory(
    cwd: Path, url: str, file: str
) -> None:
    (cwd / "sub").mkdir()
    with Memory("ns", url=url) as memory:
        memory.set("k", 1)
    assert (cwd / file).is_file()


def test_four_slashes_are_absolute(cwd: Path, tmp_path: Path) -> None:
    target = tmp_path / "abs" / "notes.db"
    with Memory("ns", url=f"sqlite:///{target}") as memory:  # sqlite:/// + /abs... = 4 slashes
        memory.set("k", 1)
    assert target.is_file() and not (cwd / str(target).lstrip("/")).exists()


def test_three_slashes_before_a_root_folder_is_refused_with_both_spellings(
    cwd: Path, tmp_path: Path
) -> None:
    """``sqlite:///tmp/x.db`` means ``./tmp/x.db``; when ``./tmp`` does not exist but ``/tmp``
    does, that is almost surely a mistake: say both spellings, create nothing."""
    with pytest.raises(InvalidArgument) as err:
        Memory("ns", url="sqlite:///tmp/botwire-x.db")
    message = str(err.value)
    assert "names ./tmp/botwire-x.db relative to the working directory" in message
    assert "sqlite:////tmp/botwire-x.db" in message and "sqlite:///./tmp/botwire-x.db" in message
    assert list(cwd.iterdir()) == []
    with Memory("ns", url="sqlite:///./tmp/botwire-x.db") as memory:  # meant: fine
        memory.set("k", 1)
    assert (cwd / "tmp" / "botwire-x.db").is_file()


def test_a_url_without_host_is_refused(cwd: Path) -> None:
    with pytest.raises(InvalidArgument, match="names no host"):
        Memory("ns", url="http://")


def test_debug_shows_the_resolved_file(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from botwire import Memory\nMemory('ns', url='sqlite:///rel.db').set('k', 1)",
        ],
        env={**os.environ, "BOTWIRE_DEBUG": "1", "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stderr
    # every operation's line names the resolved, absolute file
    assert f"set 'k' via sqlite:///{tmp_path / 'rel.db'} -> ok" in out


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    return subprocess.run(
        [sys.executable, "-c", "import sys\nfrom botwire.cli import main\nsys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_cli_url_follows_the_same_rule(tmp_path: Path) -> None:
    done = _cli("--url", "127.0.0.1:8765", "set", "ns", "k", "1", cwd=tmp_path)
    assert done.returncode != 0 and "did you mean http://127.0.0.1:8765?" in done.stderr
    assert list(tmp_path.iterdir()) == []
    done = _cli("--url", "sqlite:///rel.db", "set", "ns", "k", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "rel.db").is_file()

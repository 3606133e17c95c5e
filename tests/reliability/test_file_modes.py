"""Embedded memory files are private, and the temp fallback cannot be hijacked (issue 14,
item 4).

Before: ``~/.botwire`` was 0755 and ``memory.db`` 0644; when home was not writable, the client
used a ``$TMPDIR/botwire-<uid>`` directory another user had created (0777): that user read the
victim's secret from it, swapped the file, and the victim's ``get("api_key")`` returned the
attacker's value. The attacker and the victim here are real, distinct, unprivileged users (the
test runs as root and starts each party with ``subprocess``'s ``user=``/``group=``).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ATTACKER, VICTIM = 61_001, 61_002


def _run(
    code: str, *, env: dict[str, str], uid: int | None = None, umask: int = 0o022
) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh Python as root, or in a forked child that became user ``uid``
    (the interpreter itself lives under /root, which other users cannot enter)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")}
    base.update(env)
    if uid is None:
        return subprocess.run(
            [sys.executable, "-c", code],
            env=base,
            capture_output=True,
            text=True,
            timeout=60,
            umask=umask,
            cwd="/",
            check=False,
        )
    return _as_user(uid, code, base, umask)


def _as_user(
    uid: int, code: str, env: dict[str, str], umask: int
) -> subprocess.CompletedProcess[str]:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, then run code with its output in pipes
        status = 1
        try:
            os.close(out_r)
            os.close(err_r)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.umask(umask)
            os.chdir("/")
            os.environ.clear()
            os.environ.update(env)
            import tempfile as child_tempfile

            child_tempfile.tempdir = None  # the parent's cached answer ignores our TMPDIR
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 (pytest captured them)
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            exec(compile(code, "<as-user>", "exec"), {"__name__": "__main__"})
            status = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    os.close(out_w)
    os.close(err_w)
    with os.fdopen(out_r) as out, os.fdopen(err_r) as err:
        stdout, stderr = out.read(), err.read()
    _, status = os.waitpid(pid, 0)
    return subprocess.CompletedProcess([], os.waitstatus_to_exitcode(status), stdout, stderr)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o000])
def test_embedded_files_are_private(tmp_path: Path, umask: int) -> None:
    home = tmp_path / "home"
    home.mkdir()
    r = _run(
        "from botwire import Memory\n"
        "m = Memory('user-1'); m.set('api_key', 'sk-secret'); m.close()\n",
        env={"HOME": str(home)},
        umask=umask,
    )
    assert r.returncode == 0, r.stderr
    d = home / ".botwire"
    files = [d / "memory.db", d / "memory.db-wal", d / "memory.db-shm"]
    assert _mode(d) == 0o700, oct(_mode(d))
    for f in files:
        if f.exists():  # -wal/-shm may be removed by the last close
            assert _mode(f) == 0o600 & ~umask, (f.name, oct(_mode(f)))


def test_a_stricter_umask_is_respected(tmp_path: Path) -> None:
    r = _run(
        "from botwire.store import SQLiteStore\n"
        f"SQLiteStore({str(tmp_path / 'x' / 's.db')!r}).close()\n",
        env={},
        umask=0o277,
    )
    assert r.returncode == 0, r.stderr
    assert _mode(tmp_path / "x" / "s.db") == 0o400  # 0600 narrowed by the umask
    assert _mode(tmp_path / "x") == 0o500


def test_existing_home_directory_is_tightened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".botwire").mkdir(parents=True)
    os.chmod(home / ".botwire", 0o755)  # as botwire 0.3.0 left it
    r = _run("from botwire import Memory\nMemory('n').set('k', 1)\n", env={"HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert _mode(home / ".botwire") == 0o700


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A world-writable sticky directory like /tmp (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="botwire-sticky-", dir="/tmp"))
    os.chmod(path, 0o1777)
    nohome = path / "nohome"  # a home the victim cannot write
    nohome.mkdir()
    os.chmod(nohome, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _victim_env(shared: Path) -> dict[str, str]:
    return {"HOME": str(shared / "nohome"), "TMPDIR": str(shared)}


def test_fallback_planted_by_another_user_is_refused(shared_tmp: Path) -> None:
    planted = shared_tmp / f"botwire-{VICTIM}"
    plant = (
        "import os\n"
        "from botwire import Memory\n"
        "from botwire.store import SQLiteStore\n"
        f"os.mkdir({str(planted)!r}); os.chmod({str(planted)!r}, 0o777)\n"
        f"s = SQLiteStore({str(planted / 'memory.db')!r})\n"
        "Memory('victim', store=s).set('api_key', 'attacker-planted-value'); s.close()\n"
        f"for f in os.listdir({str(planted)!r}): os.chmod(os.path.join({str(planted)!r}, f),"
        " 0o666)\n"
    )
    r = _run(plant, env={}, uid=ATTACKER)
    assert r.returncode == 0, r.stderr
    victim = _run(
        "from botwire import Memory\nprint(Memory('victim').get('api_key'))\n",
        env=_victim_env(shared_tmp),
        uid=VICTIM,
    )
    assert "attacker-planted-value" not in victim.stdout
    assert victim.returncode != 0
    assert "belongs to another user" in victim.stderr and str(planted) in victim.stderr, (
        victim.stderr
    )
    assert "BOTWIRE_URL" in victim.stderr  # the message names a fix


def test_fallback_symlink_is_refused(shared_tmp: Path) -> None:
    target = shared_tmp / "elsewhere"
    r = _run(
        f"import os\nos.mkdir({str(target)!r}, 0o700)\n"
        f"os.symlink({str(target)!r}, {str(shared_tmp / f'botwire-{VICTIM}')!r})\n",
        env={},
        uid=VICTIM,
    )  # even the victim's own symlink: never follow one
    assert r.returncode == 0, r.stderr
    victim = _run(
        "from botwire import Memory\nMemory('victim').set('k', 1)\n",
        env=_victim_env(shared_tmp),
        uid=VICTIM,
    )
    assert victim.returncode != 0 and "symbolic link" in victim.stderr, victim.stderr
    assert not (target / "memory.db").exists()


def test_fallback_made_by_the_victim_is_private(shared_tmp: Path) -> None:
    victim = _run(
        "from botwire import Memory\nMemory('victim').set('api_key', 'sk-victim-1')\n",
        env=_victim_env(shared_tmp),
        uid=VICTIM,
    )
    assert victim.returncode == 0, victim.stderr
    own = shared_tmp / f"botwire-{VICTIM}"
    assert _mode(own) == 0o700 and os.stat(own).st_uid == VICTIM
    assert _mode(own / "memory.db") == 0o600
    steal = _run(f"print(open({str(own / 'memory.db')!r}, 'rb').read())\n", env={}, uid=ATTACKER)
    assert steal.returncode != 0 and "Permission denied" in steal.stderr
    again = _run(
        "from botwire import Memory\nprint(Memory('victim').get('api_key'))\n",
        env=_victim_env(shared_tmp),
        uid=VICTIM,
    )
    assert again.returncode == 0 and again.stdout.strip() == "sk-victim-1", again.stderr

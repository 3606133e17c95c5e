"""``botwire watch NS KEY`` / ``--prefix P`` (issue 18): JSON lines of changes, followed in a
real process until --timeout, a delete printed as a tombstone; bad usage is exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from botwire import Memory


def _botwire(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "botwire.cli", "--url", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("BOTWIRE_")},
    )


def test_watch_follows_a_key_and_a_prefix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Memory("cli", url=url) as m:
        first = m.set("job/1", {"state": "queued"})
        key = _botwire(url, "watch", "cli", "job/1", "--timeout", "20")
        prefix = _botwire(url, "watch", "cli", "--prefix", "job/", "--after", str(first))
        try:
            assert key.stdout is not None and prefix.stdout is not None
            now = json.loads(key.stdout.readline())  # the current entry first
            assert now["value"] == {"state": "queued"} and now["version"] == first
            done = m.set("job/1", {"state": "done"})
            m.set("other", 1)  # not under the prefix: never printed
            m.delete("job/1")
            # a watcher reports a key's latest state: the set and the delete may come coalesced
            for proc in (key, prefix):
                seen = [json.loads(proc.stdout.readline())]
                if not seen[0]["deleted"]:
                    assert seen[0]["value"] == {"state": "done"}
                    assert seen[0]["version"] == done
                    seen.append(json.loads(proc.stdout.readline()))
                assert seen[-1]["key"] == "job/1" and seen[-1]["deleted"]
                assert seen[-1]["value"] is None and seen[-1]["version"] > done
        finally:
            for proc in (key, prefix):
                proc.kill()
                proc.wait()


def test_watch_stops_at_its_timeout_and_refuses_bad_usage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    quiet = _botwire(url, "watch", "cli", "nothing", "--timeout", "0.5")
    out, _ = quiet.communicate(timeout=60)
    assert quiet.returncode == 0 and out == ""
    both = _botwire(url, "watch", "cli", "k", "--prefix", "p")
    _, err = both.communicate(timeout=60)
    assert both.returncode == 2 and "KEY or --prefix" in err

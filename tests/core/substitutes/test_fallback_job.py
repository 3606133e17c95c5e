"""The CI job that forces the substitutes' fallback paths, every run.

CI is one ``uv run pytest``, so the job is this test: it runs the codec and record conformance
tests, the HTTP client comparison and the value/list conformance cases (embedded and against a
real botwire-server) in a fresh interpreter where

- ``BOTWIRE_CODEC=stdlib`` makes ``botwire._codec`` take its :mod:`json` fallback (the server
  process the conformance cases start inherits it too), and
- ``_json`` is blocked (``sys.modules['_json'] = None``, as on an interpreter without it), so
  :mod:`json` itself runs its pure-Python scanner and encoder and the fast path cannot load.

``test_codec.py::test_the_live_path_is_the_one_the_environment_asks_for`` checks, inside that
run, that both really are in force. Under ~30 s on the 2-core CI machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SELECTED = [
    "tests/core/substitutes/test_codec.py",
    "tests/core/substitutes/test_record.py",
    "tests/core/substitutes/test_http_client.py",
    "tests/conformance/test_values.py",
    "tests/conformance/test_lists.py",
]
RUNNER = (
    "import sys\n"
    "sys.modules['_json'] = None  # no C accelerator: json falls back to pure Python\n"
    "import pytest\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)


def test_conformance_passes_with_the_fallbacks_forced(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BOTWIRE_CODEC": "stdlib",
        "BOTWIRE_TEST_NO_JSON_ACCEL": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    args = [*SELECTED, "-q", "-p", "no:cacheprovider", "-k", "not http-postgres"]
    args += ["--basetemp", str(tmp_path / "run")]
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    summary = re.search(r"(\d+) passed", proc.stdout)
    assert summary and int(summary.group(1)) > 100, tail  # the cases really ran
    assert " failed" not in proc.stdout.splitlines()[-1] and "skipped" not in proc.stdout
    print(f"FIGURE fallback job: {proc.stdout.strip().splitlines()[-1]}")

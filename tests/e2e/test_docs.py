"""The documentation site builds with ``mkdocs build --strict`` (every nav page and link exists)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from e2e.harness import REPO


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(REPO / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    for page in (
        "index.html",
        "platforms/lambda/index.html",
        "platforms/vercel/index.html",
        "platforms/cloud-run/index.html",
        "migrating/index.html",
        "when-not-to-use/index.html",
        "concepts/index.html",
        "client/index.html",
    ):
        assert (tmp_path / "site" / page).is_file(), page

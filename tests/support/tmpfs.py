"""A real, small tmpfs for tests of a full disk (root only: ``mount -t tmpfs``).

Example::

    with small_tmpfs("3m") as path:
        ...  # a filesystem of 3 MB; unmounted (and removed) afterwards, even on failure
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["small_tmpfs"]


@contextlib.contextmanager
def small_tmpfs(size: str = "3m") -> Iterator[Path]:
    if os.geteuid() != 0:
        raise RuntimeError("mounting a tmpfs needs root (CI runs the suite as root)")
    path = Path(tempfile.mkdtemp(prefix="botwire-tmpfs-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        for _ in range(50):  # a process that was just stopped may still hold a file open
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)

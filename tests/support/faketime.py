"""Run a process under ``libfaketime`` (Debian ``faketime``) with a clock the test can move.

The fake time is read from a spec file (``FAKETIME_TIMESTAMP_FILE``), re-read on every call
(``FAKETIME_NO_CACHE=1``: libfaketime's cache took 1 to 3 s to notice a change, measured), so a
test can start a real ``botwire-server`` first and set its clock afterwards, relative to real
time::

    clock = FakeTimeFile(tmp_path / "a.faketime")
    with running_server(database=dsn, env=clock.env()) as a:
        clock.set_offset(13 * 3600)          # this process now lives 13 h ahead
        clock.wait_applied()

The monotonic clock moves with it (libfaketime fakes both; faking only the wall clock breaks
``time.sleep``): a jump forward fires a process's timers early, which is harmless, but a jump
back stalls its timers (uvicorn's ``Date`` header froze), so offsets may only grow.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["LIBFAKETIME", "FakeTimeFile", "libfaketime"]

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def libfaketime() -> str:
    """The library's path; fails loudly when the ``faketime`` package is missing (.ci/run)."""
    import glob

    found = [LIBFAKETIME] if os.path.exists(LIBFAKETIME) else []
    found += sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        raise RuntimeError(
            f"{LIBFAKETIME} is missing: install Debian's faketime package (.ci/run does)"
        )
    return found[0]


class FakeTimeFile:
    """A spec file shared with one process: its clock is real time plus ``offset`` seconds."""

    def __init__(self, path: str | os.PathLike[str], offset: float = 0.0) -> None:
        self.path = Path(path)
        self.offset = offset
        self.set_offset(offset)

    def set_offset(self, offset: float) -> None:
        if offset < self.offset:
            raise ValueError(f"offsets only grow (from {self.offset} to {offset}): see module")
        # "+Ns": relative to real time (libfaketime accepts fractional seconds).
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{offset:+.3f}\n", encoding="ascii")
        os.replace(tmp, self.path)  # never a half-written spec
        self.offset = offset

    @staticmethod
    def wait_applied() -> None:
        """Give a busy process a moment to make its next clock call (it re-reads the file)."""
        time.sleep(0.2)

    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": libfaketime(),
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
        }

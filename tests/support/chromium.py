"""Headless Chromium as the console's browser tests launch it (Debian's ``chromium``)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
#: Flags for a quiet, isolated, sandbox-less headless run (tests run as root in CI).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

"""Fixtures of the watch suite (issue 18): a fresh PostgreSQL database per module."""

from __future__ import annotations

from support.postgres import postgres_url as _postgres_url_fixture

postgres_url = _postgres_url_fixture(scope="module", prefix="botwire_watch")

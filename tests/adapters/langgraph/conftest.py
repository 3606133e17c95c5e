"""Fixtures for the LangGraph adapter tests.

``memory_url`` is the one place that says which botwire backend these tests run against; it is
the embedded SQLite store for now (an HTTP server fixture can parametrize it later). Every test
also gets its own botwire ``namespace``, so tests stay independent when they share one server.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.backends import ADAPTER_BACKENDS, adapter_memory_url

from botwire import Memory


@pytest.fixture(params=ADAPTER_BACKENDS)
def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The botwire backend under test: a fresh embedded SQLite file, or a real server."""
    return adapter_memory_url(request, tmp_path)


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A botwire namespace no other test uses."""
    name = re.sub(r"[^A-Za-z0-9._:@-]", "-", request.node.name.removeprefix("test_"))[:90]
    return f"lg-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def memory(memory_url: str, namespace: str) -> Iterator[Memory]:
    """A botwire ``Memory`` in this test's namespace on the backend under test."""
    with Memory(namespace, url=memory_url) as m:
        yield m

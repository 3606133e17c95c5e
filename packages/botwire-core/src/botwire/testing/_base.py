"""The fixtures every conformance class shares: ``backend`` (from :meth:`Cases.make_store`),
``ns`` (a namespace no other case uses) and ``mem`` (a ``Memory`` on it)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest

from ._backend import Backend, Clock, StoreBackend

if TYPE_CHECKING:
    from .._memory import Memory
    from .._types import Limits
    from ..store import AsyncStore, Store

__all__ = ["Cases", "check_bytes"]

_counter = itertools.count()


class Cases:
    """Base of the conformance classes. Subclass one (or :class:`StoreConformance`, all of
    them) in a ``Test*`` class and define :meth:`make_store`; or override the ``backend``
    fixture to run the cases against a :class:`Backend` of your own (a server, say)."""

    #: The limits your store enforces (give them to it in ``make_store``). ``None``: the limit
    #: cases are reported not applicable.
    store_limits: ClassVar[Limits | None] = None

    def make_store(self, clock: Clock) -> Store:
        """A fresh, empty store whose time is ``clock()`` (one per case; ``self.tmp_path`` is a
        fresh directory for its files)."""
        raise NotImplementedError(
            f"botwire.testing: {type(self).__name__} must define make_store(self, clock) "
            "returning your store (a botwire.store.Store reading the time from clock()), or "
            "override the 'backend' fixture."
        )

    def make_async_store(self, store: Store) -> AsyncStore | None:
        """An async twin of ``store`` for the ``AsyncMemory`` cases; ``None`` (the default):
        the sync store run in a worker thread."""
        return None

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        self.tmp_path = tmp_path  # a fresh directory make_store may put files in
        clock = Clock()
        store = self.make_store(clock)
        b = StoreBackend(
            store, clock, limits=self.store_limits, async_store=self.make_async_store(store)
        )
        try:
            yield b
        finally:
            b.close()

    @pytest.fixture
    def ns(self, request: pytest.FixtureRequest) -> str:
        """A namespace no other case uses (so per-namespace quotas never collide)."""
        name = request.node.name.split("[")[0].removeprefix("test_")[:80]
        return f"t-{name}-{os.getpid()}-{next(_counter)}"

    @pytest.fixture
    def mem(self, backend: Backend, ns: str) -> Memory:
        return backend.memory(ns)

    @pytest.fixture
    def limits(self, backend: Backend) -> Limits:
        """The backend's declared limits; the case is not applicable without them."""
        declared = backend.limits
        if declared is None:
            pytest.skip(
                f"not applicable: {backend.name} declares no limits (set store_limits = "
                "botwire.Limits(...) on the test class and enforce them in make_store)"
            )
        missing = [k for k, v in declared.as_dict().items() if not v]
        if missing:
            pytest.skip(f"not applicable: {backend.name} declares no {', '.join(missing)}")
        return declared


def check_bytes(mem: Memory, data: int) -> None:
    """The namespace holds ``data`` bytes of data (key + value JSON, summed from the listing);
    ``usage().bytes`` counts at least that (it adds idempotency records, issue 13, which the
    HTTP client's keyed writes keep)."""
    listed = sum(k.bytes for k in mem._store.list_keys(mem.namespace).keys)
    assert listed == data, f"the listing sums {listed} bytes, expected {data}"
    assert mem.usage().bytes >= data

"""botwire's conformance suite as a kit: check that a store of your own behaves as botwire's do.

Subclass :class:`StoreConformance` in a ``Test*`` class and return a fresh store from
``make_store``; pytest then runs every case botwire's own backends pass (embedded SQLite, the
server on SQLite and on PostgreSQL)::

    from botwire.testing import StoreConformance

    class TestMyStore(StoreConformance):
        def make_store(self, clock):
            return MyStore(clock=clock)  # time from clock(): TTL cases move it, never sleep

Required behaviour fails when broken; what a store may lack by design (the optional
capabilities of ``botwire.store``, limits it does not declare) is reported as *not applicable*
with the reason (``pytest -rs``), never silently skipped. The topic classes (``ValueCases``,
``ListCases``...) can be subclassed alone. Needs ``pytest`` and ``hypothesis``; ``import
botwire`` never loads this package.
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401
    import pytest  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a bare venv only
    raise ImportError(
        f"botwire.testing needs pytest and hypothesis ({exc.name} is missing): "
        "pip install pytest hypothesis"
    ) from exc

from ._backend import Backend, Clock, StoreBackend
from ._base import Cases
from ._cases_batches import BatchCases, ConcurrencyCases, LimitCases
from ._cases_both_ways import BothWaysCases
from ._cases_store import ProtocolCases
from ._cases_values import MappingCases, NamespaceCases, ValueCases
from ._cases_writes import CounterCases, ListCases, TTLCases, VersionCases

__all__ = [
    "Backend",
    "BatchCases",
    "BothWaysCases",
    "Cases",
    "Clock",
    "ConcurrencyCases",
    "CounterCases",
    "LimitCases",
    "ListCases",
    "MappingCases",
    "NamespaceCases",
    "ProtocolCases",
    "StoreBackend",
    "StoreConformance",
    "TTLCases",
    "ValueCases",
    "VersionCases",
]


class StoreConformance(
    ProtocolCases,
    ValueCases,
    MappingCases,
    NamespaceCases,
    VersionCases,
    CounterCases,
    ListCases,
    TTLCases,
    BatchCases,
    ConcurrencyCases,
    LimitCases,
    BothWaysCases,
):
    """Every conformance case: subclass it and define ``make_store(self, clock)``."""

"""A third party runs the conformance kit against a store of its own (``support.dictstore``: the
six required methods over dicts, no optional capability, no limits).

Every required case passes; each optional capability and each limit case is reported *not
applicable* with its reason (declared, not silently skipped); and a store that breaks the
contract fails the kit, in a pytest run of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.dictstore import DictStore

from botwire.store import OPTIONAL
from botwire.testing import Clock, StoreConformance

TESTS = Path(__file__).resolve().parents[1]


class TestDictStore(StoreConformance):
    def make_store(self, clock: Clock) -> DictStore:
        return DictStore(clock)


#: What a third party writes when its store breaks the contract: versions reused after a
#: delete (ABA), and ``usage`` missing.
BROKEN = """
from support.dictstore import DictStore
from botwire.testing import StoreConformance


class ReusesVersions(DictStore):
    def batch(self, namespace, ops, **options):
        self._version = 0 if any(op.kind == "delete" for op in ops) else self._version
        return super().batch(namespace, ops, **options)


class NoUsage:
    def __init__(self, clock):
        self._inner = DictStore(clock)
        for name in ("get", "batch", "list_keys", "clear", "close"):
            setattr(self, name, getattr(self._inner, name))


class TestReusesVersions(StoreConformance):
    def make_store(self, clock):
        return ReusesVersions(clock)


class TestNoUsage(StoreConformance):
    def make_store(self, clock):
        return NoUsage(clock)
"""


GOOD = """
from support.dictstore import DictStore
from botwire.testing import StoreConformance


class TestDictStore(StoreConformance):
    def make_store(self, clock):
        return DictStore(clock)
"""


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One pytest run, as a third party's: the dict store's capability and limit cases, and
    the broken stores' cases that must fail.
    Plugin autoload is off: the kit needs only pytest and hypothesis."""
    where = tmp_path_factory.mktemp("third-party")
    (where / "test_kit_run.py").write_text(GOOD + BROKEN)
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    # the dict store's cases that report (all of them pass in-process: TestDictStore above)
    select = "optional_capability or limit or quota or writes_per_day or set_many_is_atomic"
    select += " or required_methods or never_reuses"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "test_kit_run.py", "-p", "no:cacheprovider", "-q",
         "-rfs", "-k", select],
        cwd=where, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    return proc.stdout


def test_the_kit_reports_what_a_store_lacks_by_design(kit_run: str) -> None:
    """Each optional capability and each limit case the dict store lacks is reported not
    applicable with its reason (``-rs``); nothing of it is skipped otherwise, nothing fails."""
    out = kit_run
    summary = out.strip().splitlines()[-1]
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert skipped and all("TestDictStore" not in f for f in _failed(out)), out[-3000:]
    for name in OPTIONAL:
        assert any(
            f"does not offer {name} (" in s and "without it the server uses:" in s for s in skipped
        ), f"{name} not reported: {skipped}"
    assert any("declares no limits" in s for s in skipped), skipped
    assert all("not applicable" in s for s in skipped), skipped
    limit_cases = 6 + 1  # LimitCases needing limits, and set_many's atomicity past the limit
    classes = 3  # the dict store and the two broken ones: each lacks the same
    assert f"{classes * (len(OPTIONAL) + limit_cases)} skipped" in summary, summary
    print(f"FIGURE a third party's kit run (dict store + 2 broken stores): {summary}")


def _failed(out: str) -> set[str]:
    return {line.split()[1] for line in out.splitlines() if line.startswith("FAILED")}


def test_a_store_that_breaks_the_contract_fails_the_kit(kit_run: str) -> None:
    failed = _failed(kit_run)
    assert failed == {
        "test_kit_run.py::TestReusesVersions::test_delete_and_recreate_never_reuses_a_version",
        "test_kit_run.py::TestNoUsage::test_store_has_the_required_methods",
    }, kit_run[-3000:]
    assert "lacks usage: a botwire store needs all of" in kit_run, kit_run[-3000:]


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_every_capability_declares_its_default(name: str) -> None:
    """The reason the kit gives comes from the protocol's own "Default:" line."""
    from botwire.testing._cases_store import declared_default

    assert declared_default(name) != "(no default declared)"

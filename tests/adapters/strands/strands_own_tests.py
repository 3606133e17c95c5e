"""Run Strands' OWN snapshot-session and agent-storage tests with ``BotWireStorage`` (by hand).

The ``strands-agents`` sdist ships its tests (not the wheel); they are not copied here. This
module is a pytest plugin that swaps ``LocalFileStorage`` (their ``storage`` fixture's backend)
for a ``BotWireStorage`` on a fresh embedded file in each test module that uses it::

    pip download strands-agents==1.62.0 --no-deps --no-binary :all: -d /tmp/sdist
    tar xzf /tmp/sdist/strands_agents-1.62.0.tar.gz -C /tmp/sdist
    cd /tmp/sdist/strands_agents-1.62.0
    mkdir -p /tmp/stub && echo 'def mock_aws(*a, **k): raise RuntimeError' > /tmp/stub/moto.py
    PYTHONPATH=$REPO/tests/adapters/strands:/tmp/stub:. $REPO/.venv/bin/python -m pytest \\
        tests/strands/session/test_snapshot_session_manager.py \\
        tests/strands/agent/test_agent_storage.py -p strands_own_tests -q -W ignore

Result with 1.62.0 (docs/strands.md): 133 passed, 1 failed, the one that asserts the stash's
``storage_type == "LocalFileStorage"`` (the class name of the backend, by design ours).
(``moto`` is only imported by their conftest for the S3 tests, which this run does not include.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from botwire_strands import BotWireStorage


@pytest.fixture(autouse=True)
def _botwire_storage(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = request.module
    if hasattr(module, "LocalFileStorage"):
        url = f"sqlite:///{tmp_path}/botwire.db"
        monkeypatch.setattr(
            module, "LocalFileStorage", lambda *a, **k: BotWireStorage("strands-own", url=url)
        )

"""schemathesis against /openapi.json, extending ``tests/server/test_schemathesis.py`` (SQLite,
anonymous) to a server on PostgreSQL and to an authenticated server with an admin token (so the
generated requests reach the handlers instead of stopping at 401): no 5xx, nothing off-schema."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from reliability.helpers import Figures
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.server import ServerProcess, running_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SECRET = "fuzz-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture(params=["postgres", "auth-sqlite"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    if request.param == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        with running_server(
            "--max-value-bytes",
            "20000",
            "--no-access-log",
            "--watch-hold",  # /changes?wait= holds at most this long: fuzzing stays fast
            "0.05",
            database=dsn,
        ) as s:
            yield s, {}
    else:
        token = jwt.encode(
            {"ns": ["*"], "perm": "admin", "exp": int(time.time()) + 3600},
            SECRET,
            algorithm="HS256",
        )
        with running_server(
            "--max-value-bytes",
            "20000",
            "--no-access-log",
            "--token-secret",
            SECRET,
            "--watch-hold",
            "0.05",
            database=tmp_path / "a.db",
        ) as s:
            yield s, {"Authorization": f"Bearer {token}"}


def _fuzz(
    operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str], examples: int
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), **headers}
        case.call_and_validate(base_url=base_url, checks=CHECKS)

    run()


def test_openapi_fuzz_postgres_and_authenticated(
    target: tuple[ServerProcess, dict[str, str]],
    record_property: Any,
    request: pytest.FixtureRequest,
) -> None:
    server, headers = target
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            try:
                _fuzz(operation, mode, server.url, headers, 15)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:
                failures.append(f"{mode.value} {operation.label}: {exc}")
    metrics = httpx.get(f"{server.url}/metrics").text
    by_status: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("botwire_requests_total{") and 'status="' in line:
            status = line.split('status="')[1][0] + "xx"
            by_status[status] = by_status.get(status, 0) + float(line.rsplit(" ", 1)[1])
    Figures(
        f"hostile/schemathesis/{request.node.callspec.id}",
        attempted=int(sum(by_status.values())),
        acknowledged=int(by_status.get("2xx", 0)),
        extra={"by_status": by_status, "operations": len(operations), "failures": len(failures)},
    ).record(record_property)
    assert not failures, "\n\n".join(failures)
    assert by_status.get("5xx", 0) == 0
    assert sum(by_status.values()) >= 200

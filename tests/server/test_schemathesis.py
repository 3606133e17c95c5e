"""Fuzz the live server from its own /openapi.json (schemathesis): no 5xx, and every response
matches the status codes, content types, headers and schemas the OpenAPI document declares."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
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


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(
        "--max-value-bytes",
        "20000",
        "--no-access-log",
        "--watch-hold",  # /changes?wait= holds at most this long: fuzzing stays fast
        "0.05",
        database=tmp_path_factory.mktemp("fuzz") / "b.db",
    ) as s:
        yield s


@pytest.fixture(scope="session")
def api_schema(fuzz_server: ServerProcess):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")


def _fuzz(operation: object, mode: GenerationMode, base_url: str, examples: int) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS)

    run()


# (schemathesis's own pytest plugin does not load under this pytest; its Python API does.)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi(
    api_schema,
    fuzz_server: ServerProcess,  # type: ignore[no-untyped-def]
    mode: GenerationMode,
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:
        try:
            _fuzz(operation, mode, fuzz_server.url, 60)
        except Unsatisfiable:
            # no parameters or body, so no negative data (/healthz...)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    metrics = httpx.get(f"{fuzz_server.url}/metrics").text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("botwire_requests_total{")
    )
    assert served >= 300  # the fuzzer really hit the server

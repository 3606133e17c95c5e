"""Issue 13: ``/openapi.json`` describes what the hardened server answers: 403 for a refused
``Origin``/``Host``, 415 for a body that is not JSON, 413 for the budgets, and the request
headers ``X-BotWire-Key`` and ``Idempotency-Key`` — read from a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from support.probe import serving

KEY = "/v1/namespaces/{ns}/keys/{key}"
BATCH = "/v1/namespaces/{ns}/batch"


def _params(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p.get("in") == "header"}


def test_openapi_names_the_hardening_answers_and_headers(tmp_path: Path) -> None:
    with serving("sqlite", tmp_path, "--no-access-log") as server:
        doc = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    paths = doc["paths"]
    key, batch = paths[KEY], paths[BATCH]
    for method in ("put", "patch"):
        answers = key[method]["responses"]
        assert "415" in answers and "Content-Type" in answers["415"]["description"], method
        assert "413" in answers, method
    assert "415" in batch["post"]["responses"]
    for op in (key["get"], key["put"], key["patch"], key["delete"], batch["post"]):
        forbidden = op["responses"]["403"]["description"]
        assert "origin_not_allowed" in forbidden and "host_not_allowed" in forbidden
    budget = key["get"]["responses"]["413"]["description"]
    assert "max_response_bytes" in budget and "max_list_length" in budget
    for method in ("get", "put", "patch", "delete"):
        assert "X-BotWire-Key" in _params(key[method]), method
    assert "Idempotency-Key" in _params(key["patch"])
    assert "Idempotency-Key" in _params(batch["post"])
    print(
        f"\nFIGURE openapi: {len(paths)} paths; key PUT answers {sorted(key['put']['responses'])}"
    )

"""``botwire.testing`` (the conformance kit) stays out of ``import botwire``, and without pytest
or hypothesis it says what to install instead of failing deep inside."""

from __future__ import annotations

import pytest
from support.proc import run_python


def test_import_botwire_loads_neither_the_kit_nor_pytest() -> None:
    code = (
        "import sys\nimport botwire\nfrom botwire import Memory\nimport botwire.store\n"
        "print([m for m in ('botwire.testing', 'pytest', 'hypothesis') if m in sys.modules])"
    )
    assert run_python(code).stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("missing", ["pytest", "hypothesis"])
def test_the_kit_names_what_to_install(missing: str) -> None:
    code = (
        f"import sys\nsys.modules[{missing!r}] = None  # as in a venv without it\n"
        "try:\n    import botwire.testing\nexcept ImportError as exc:\n    print(exc)\n"
    )
    out = run_python(code).stdout
    assert f"({missing} is missing)" in out and "pip install pytest hypothesis" in out, out

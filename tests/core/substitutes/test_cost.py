"""The point of the substitutes: loading them loads none of what they replace. In a fresh
interpreter, the codec, ``@record`` and the HTTP client (with a record class built and a value
encoded and decoded) bring in only ``_json``, ``_socket`` and ``__future__`` beyond botwire."""

from __future__ import annotations

from support.proc import run_python

CODE = """
import sys
before = set(sys.modules)
from botwire import _codec
from botwire._record import field, record
from botwire.backends import _http, _http_sync

@record
class R:
    a: int
    b: list = field(default_factory=list)

r = R(1)
assert repr(r) == "R(a=1, b=[])" and r == R(1)
assert _codec.decode(_codec.encode({"k": [1.5, "é", None]})) == {"k": [1.5, "é", None]}
_http.Target.parse("https://h:8443/p")
new = sorted(m for m in set(sys.modules) - before if not m.startswith("botwire"))
print(" ".join(new))
"""


def test_the_substitutes_load_nothing_they_replace() -> None:
    loaded = run_python(CODE).stdout.strip().splitlines()[-1].split()
    assert loaded == ["__future__", "_json", "_socket"]


def test_the_fallback_codec_loads_json_only_when_forced() -> None:
    code = "import sys\nfrom botwire import _codec\nprint(_codec.PATH, 'json' in sys.modules)"
    assert run_python(code).stdout.split() == ["accelerated", "False"]
    forced = run_python(code, env={"BOTWIRE_CODEC": "stdlib"}).stdout.split()
    assert forced == ["stdlib", "True"]

"""The console's static files: shipped in the wheel, served with CSP, nosniff and revalidation,
and free of third-party requests and inline code."""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.server import ServerProcess, running_server

from botwire_server.console import CSP

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "packages/botwire-server/src/botwire_server/console/static"
FILES = sorted(p.name for p in STATIC.iterdir())


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server() as s:  # anonymous, loopback: the console needs no sign-in
        yield s


def test_the_files_are_in_the_botwire_server_wheel(tmp_path: Path) -> None:
    subprocess.run(
        ["uv", "build", "--package", "botwire-server", "--wheel", "-o", str(tmp_path), "-q"],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("botwire_server-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        for name in FILES:
            path = f"botwire_server/console/static/{name}"
            assert path in names, f"{path} is missing from {wheel.name}"
            assert whl.read(path) == (STATIC / name).read_bytes()
    assert {"index.html", "app.js", "api.js", "render.js", "style.css"} <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_every_file_is_served_with_security_and_cache_headers(
    server: ServerProcess, name: str
) -> None:
    r = httpx.get(f"{server.url}/console/{name}")
    assert r.status_code == 200 and r.content == (STATIC / name).read_bytes()
    h = r.headers
    assert h["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["cache-control"] == "no-cache"  # always revalidated: an upgrade shows at once
    kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".")[-1]]
    assert h["content-type"].startswith(kind)
    again = httpx.get(f"{server.url}/console/{name}", headers={"If-None-Match": h["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["content-security-policy"] == CSP


def test_console_redirects_to_its_directory_and_index_is_html(server: ServerProcess) -> None:
    r = httpx.get(server.url + "/console")
    assert r.status_code == 308 and r.headers["location"] == "console/"  # relative: keeps a prefix
    index = httpx.get(server.url + "/console/")
    assert index.status_code == 200 and "<title>botwire console</title>" in index.text
    assert index.headers["content-security-policy"] == CSP


def test_unknown_and_traversal_paths_are_404_and_never_files_outside(
    server: ServerProcess,
) -> None:
    for path in (
        "/console/nope.js",
        "/console/__init__.py",
        "/console/_router.py",
        "/console/%2e%2e%2f_router.py",
        "/console/..%2Fapp.py",
    ):
        r = httpx.get(server.url + path)
        assert r.status_code == 404, path
        assert "import" not in r.text


def test_no_third_party_requests_and_no_inline_code() -> None:
    for name in FILES:
        text = (STATIC / name).read_text("utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
        # stored values are untrusted: nothing is ever parsed as HTML or code
        assert not re.search(
            r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|"
            r"new Function",
            text,
        ), name
    index = (STATIC / "index.html").read_text("utf-8")
    # every <script> is an external module; no style attributes or on* handlers
    assert re.findall(r"<script[^>]*>", index) == ['<script type="module" src="app.js">']
    assert not re.search(r"\sstyle=|\son[a-z]+=", index)


def test_the_api_is_unchanged_and_the_console_is_not_in_openapi(server: ServerProcess) -> None:
    schema = httpx.get(server.url + "/openapi.json").json()
    assert not any(p.startswith("/console") for p in schema["paths"])
    assert "get" in schema["paths"]["/v1/namespaces"]

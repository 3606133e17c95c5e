"""The console where it could lose or leak data: conflicts, TTLs under a wrong computer clock,
exact numbers, the key echo, late answers, a proxy's non-JSON 200, a 1 MiB value and a path
prefix. Real headless Chromium (Debian's) against a real botwire-server with tokens, like
test_console_browser.py; each test is a defect found by attacking the console, and fails
without its fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from support.chromium import ARGS, CHROMIUM
from support.faketime import libfaketime
from support.nginx import running_nginx
from support.server import ServerProcess, running_server

from botwire_server.auth import mint_token

SECRET = "console-safety-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert os.path.exists(CHROMIUM), "Debian's chromium is needed: apt-get install chromium"
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("console-safety") / "bw.db"
    with running_server("--token-secret", SECRET, database=db) as s:
        yield s


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    """Another client of the same server: the agent that writes while the console looks."""
    token = mint_token(SECRET, ["*"])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def _watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 760}, accept_downloads=True)
    pg = context.new_page()
    problems = _watch(pg)
    try:
        yield pg
        # API refusals (400, 412) and cancelled reads are logged as failed loads; nothing else
        unexpected = [p for p in problems if "Failed to load resource" not in p]
        assert not unexpected, unexpected
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from _page(browser)


def _sign_in(page: Page, base: str, patterns: tuple[str, ...] = ("tenant-*",)) -> None:
    page.goto(base + "/console/")
    page.fill("#token", mint_token(SECRET, list(patterns)))
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#main")).to_be_visible()


def _open_ns(page: Page, ns: str) -> None:
    page.fill("#ns-filter", ns)
    page.click("#ns-form button[type=submit]")
    page.locator(f"#ns-list li[data-ns={json.dumps(ns)}] button").click()
    expect(page.locator("#usage h2")).to_have_text(ns)


def _open_key(page: Page, key: str) -> None:
    page.fill("#key-prefix", key)
    page.click("#key-search")
    page.locator(f"#key-list li[data-key={json.dumps(key)}] button").click()
    expect(page.locator("#entry-head h2")).to_have_text(key)
    expect(page.locator("#entry-actions")).to_be_visible()


def _put(admin: httpx.Client, ns: str, key: str, **body: Any) -> int:
    r = admin.put(f"/v1/namespaces/{ns}/keys/{urllib.parse.quote(key, safe='')}", json=body)
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


def _get(admin: httpx.Client, ns: str, key: str) -> httpx.Response:
    return admin.get(f"/v1/namespaces/{ns}/keys/{urllib.parse.quote(key, safe='')}")


def _hold(page: Page, match: Callable[[str], bool], count: int) -> list[Route]:
    """The first ``count`` requests whose URL matches wait (a slow network) until the test
    continues them; later ones pass."""
    held: list[Route] = []

    def handle(route: Route) -> None:
        if len(held) < count:
            held.append(route)
        else:
            route.fallback()

    page.route(match, handle)
    return held


def _release(route: Route) -> None:
    with contextlib.suppress(PlaywrightError):  # the page may have cancelled it meanwhile
        route.continue_()


def _wait_held(page: Page, held: list[Route], count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while len(held) < count:
        assert time.monotonic() < deadline, "the request to hold was never made"
        page.wait_for_timeout(20)


# -- 1. a delete's conflict ------------------------------------------------------------------


def test_a_delete_conflict_offers_delete_anyway_and_never_writes_the_editor(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    ns = "tenant-del"
    _put(admin, ns, "a-profile", value={"name": "alice", "plan": "pro"})
    _put(admin, ns, "b-invoice", value={"total": 120, "paid": False})
    _sign_in(page, server.url)
    _open_ns(page, ns)
    _open_key(page, "a-profile")  # an edit saved on one key...
    page.click("#edit")
    page.fill("#edit-text", '{"name": "alice", "plan": "free"}')
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Saved a-profile")
    _open_key(page, "b-invoice")  # ...leaves nothing behind for the next one
    assert page.input_value("#edit-text") == ""
    theirs = {"total": 120, "paid": True}
    v2 = _put(admin, ns, "b-invoice", value=theirs)  # an agent writes after it was opened
    page.click("#delete")
    page.click("#confirm-ok")
    conflict = page.locator("#conflict")
    expect(conflict).to_contain_text(f"saved version {v2}")
    expect(conflict).to_contain_text("Nothing was deleted")
    expect(conflict).to_contain_text('"paid": true')
    expect(conflict.get_by_role("button")).to_have_text([f"Delete anyway (version {v2})", "Cancel"])
    conflict.get_by_role("button", name="Cancel").click()
    expect(page.locator("#entry-head .version")).to_have_text(str(v2))
    assert _get(admin, ns, "b-invoice").json()["value"] == theirs
    # again, and this time delete the newer version on purpose
    v3 = _put(admin, ns, "b-invoice", value={"total": 130, "paid": True})
    page.click("#delete")
    page.click("#confirm-ok")
    conflict.get_by_role("button", name=f"Delete anyway (version {v3})").click()
    expect(page.locator("#status")).to_contain_text("Deleted b-invoice")
    assert _get(admin, ns, "b-invoice").status_code == 404
    assert _get(admin, ns, "a-profile").json()["value"] == {"name": "alice", "plan": "free"}


# -- 2, 3. TTLs -----------------------------------------------------------------------------


@pytest.fixture
def ahead(playwright: Playwright) -> Iterator[Page]:
    """A page in a Chromium whose computer clock is 2 hours ahead of the server's."""
    env = {**os.environ, "LD_PRELOAD": libfaketime(), "FAKETIME": "+2h"}
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True, env=env)
    try:
        yield from _page(b)
    finally:
        b.close()


def test_a_computer_clock_hours_ahead_neither_shortens_nor_misshows_a_ttl(
    ahead: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    page = ahead
    ns = "tenant-clock"
    _put(admin, ns, "session", value={"step": 3}, ttl=3600)
    assert page.evaluate("Date.now() / 1000") - time.time() > 7000  # the premise
    _sign_in(page, server.url)
    _open_ns(page, ns)
    _open_key(page, "session")
    expect(page.locator(".ttl")).to_contain_text(re.compile(r"^in (59m \d+s|1h 0m 0s) \("))
    page.click("#edit")
    page.fill("#edit-text", '{"step": 4}')
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Saved session")
    entry = _get(admin, ns, "session").json()
    assert entry["value"] == {"step": 4}
    assert entry["expires_at"] - time.time() > 3500  # not ttl=1 (browser time past expiry)


def test_overwrite_with_mine_keeps_the_ttl_of_the_version_it_overwrites(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    ns = "tenant-ttl"
    _put(admin, ns, "session", value={"step": 1}, ttl=30)
    _sign_in(page, server.url)
    _open_ns(page, ns)
    for theirs, left in (({"ttl": 3600}, 3600), ({}, None)):  # renewed; then made permanent
        _open_key(page, "session")
        page.click("#edit")
        mine = {"step": 1, "note": f"checked {left}"}
        page.fill("#edit-text", json.dumps(mine))
        _put(admin, ns, "session", value={"step": 2}, **theirs)
        page.click("#save")
        page.get_by_role("button", name="Overwrite with mine").click()
        expect(page.locator("#status")).to_contain_text("Saved session")
        entry = _get(admin, ns, "session").json()
        assert entry["value"] == mine
        if left is None:
            assert entry["expires_at"] is None
        else:  # not the ~30 s the opened version had left
            assert left - 60 < entry["expires_at"] - time.time() <= left + 2


# -- 4. exact numbers -----------------------------------------------------------------------


def test_numbers_stay_exact_through_view_edit_and_export(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    ns = "tenant-numbers"
    value = {"id": 12345678901234567890, "ratio": 1.0, "tiny": 2.5e-320, "e": 1e-07,
             "neg": -0.0, "label": "a", "ids": [9007199254740993, 2.0]}  # fmt: skip
    v1 = _put(admin, ns, "order", value=value)
    stored = _get(admin, ns, "order").text
    raw = stored[stored.index('"value":') + 8 : stored.index(',"version"')]
    _sign_in(page, server.url)
    _open_ns(page, ns)
    _open_key(page, "order")
    shown = page.inner_text("#json")
    for text in ("12345678901234567890", "1.0", "9007199254740993", "2.0", "-0.0", "1e-07"):
        assert text in shown, (text, shown)
    # an edit that changes nothing sends nothing
    page.click("#edit")
    assert json.loads(page.input_value("#edit-text")) == value
    assert "12345678901234567890" in page.input_value("#edit-text")
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("No change: order not saved")
    assert _get(admin, ns, "order").json()["version"] == v1
    # an edit of one field keeps every number of the others as it was
    page.click("#edit")
    page.fill("#edit-text", page.input_value("#edit-text").replace('"a"', '"b"'))
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Saved order: version")
    after = _get(admin, ns, "order").text
    v2 = _get(admin, ns, "order").json()["version"]
    assert after[after.index('"value":') + 8 : after.index(',"version"')] == raw.replace(
        '"a"', '"b"'
    )
    with page.expect_download() as info:
        page.click("#export")
    (line,) = Path(info.value.path()).read_text("utf-8").splitlines()
    assert line.startswith(
        '{"key":"order","value":' + raw.replace('"a"', '"b"') + f',"version":{v2},'
    )


# -- 6. the key echo on every key request -----------------------------------------------------


def _normalise(route: Route) -> None:
    """What nginx's ``proxy_pass http://up/;`` does to a path: decode it, resolve ``..``."""
    url = urllib.parse.urlsplit(route.request.url)
    path = posixpath.normpath(urllib.parse.unquote(url.path))
    route.continue_(url=urllib.parse.urlunsplit(url._replace(path=urllib.parse.quote(path))))


def test_reads_and_deletes_send_the_key_echo_so_a_rewriting_proxy_is_refused(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    hostile = "../../tenant-victim/keys/secret"  # stored by one tenant, aimed at another
    _put(admin, "tenant-victim", "secret", value={"api_key": "sk-victim-123"})
    _put(admin, "tenant-evil", hostile, value="bait")
    _sign_in(page, server.url)
    _open_ns(page, "tenant-evil")
    _open_key(page, hostile)
    expect(page.locator("#json")).to_have_text('"bait"')
    # from here on, a proxy decodes and normalises the key paths
    page.route(lambda url: "/keys/" in url, _normalise)
    page.click("#delete")
    page.click("#confirm-ok")
    expect(page.locator("#entry-error")).to_contain_text("Not deleted")
    expect(page.locator("#entry-error")).to_contain_text("key_rewritten")
    page.locator(f"#key-list li[data-key={json.dumps(hostile)}] button").click()
    expect(page.locator("#entry-error")).to_contain_text("key_rewritten")
    expect(page.locator("#json")).to_be_hidden()
    assert "sk-victim" not in page.inner_text("body")
    assert _get(admin, "tenant-victim", "secret").status_code == 200
    assert _get(admin, "tenant-evil", hostile).json()["value"] == "bait"


# -- 7. late answers ----------------------------------------------------------------------------


def test_late_answers_for_a_namespace_left_behind_are_dropped(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    _put(admin, "tenant-race-old", "config", value={"ns": "old"})
    _put(admin, "tenant-race-old", "only-in-old", value=1)
    _put(admin, "tenant-race-new", "config", value={"ns": "new"})
    _sign_in(page, server.url)
    page.fill("#ns-filter", "tenant-race-")
    page.click("#ns-form button[type=submit]")
    old = "/v1/namespaces/tenant-race-old"
    held = _hold(page, lambda url: urllib.parse.urlsplit(url).path in (old, old + "/keys"), 2)
    page.locator('#ns-list li[data-ns="tenant-race-old"] button').click()
    _wait_held(page, held, 2)  # its usage and its key list hang
    page.locator('#ns-list li[data-ns="tenant-race-new"] button').click()
    expect(page.locator("#key-list li")).to_have_count(1)
    for route in held:  # the old answers arrive last (if their reads were not cancelled)
        _release(route)
    page.wait_for_timeout(500)
    expect(page.locator("#usage h2")).to_have_text("tenant-race-new")
    expect(page.locator("#usage")).to_contain_text("keys")
    expect(page.locator("#key-list li")).to_have_count(1)
    expect(page.locator("#key-list")).not_to_contain_text("only-in-old")
    page.locator('#key-list li[data-key="config"] button').click()
    expect(page.locator("#json")).to_contain_text('"new"')


def test_a_late_value_of_the_key_left_behind_is_dropped(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    ns = "tenant-race-keys"
    _put(admin, ns, "slow", value={"which": "slow"})
    _put(admin, ns, "fast", value={"which": "fast"})
    _sign_in(page, server.url)
    _open_ns(page, ns)
    held = _hold(page, lambda url: "/keys/slow" in url, 1)
    page.locator('#key-list li[data-key="slow"] button').click()
    _wait_held(page, held)
    _open_key(page, "fast")
    _release(held[0])
    page.wait_for_timeout(500)
    expect(page.locator("#entry-head h2")).to_have_text("fast")
    expect(page.locator("#json")).to_contain_text('"fast"')
    page.click("#edit")
    page.fill("#edit-text", '{"which": "fast", "edited": true}')
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Saved fast")
    assert _get(admin, ns, "slow").json()["value"] == {"which": "slow"}


# -- 8. a 200 that is not the server's JSON ------------------------------------------------------


def _editing_prefs(page: Page, server: ServerProcess, admin: httpx.Client, ns: str) -> None:
    """Key "prefs" of ``ns`` stored as ``{"tone": "casual"}``, open in the editor with
    ``{"tone": "formal"}`` typed and not yet saved."""
    _put(admin, ns, "prefs", value={"tone": "casual"})
    _sign_in(page, server.url)
    _open_ns(page, ns)
    _open_key(page, "prefs")
    page.click("#edit")
    page.fill("#edit-text", '{"tone": "formal"}')


def test_a_2xx_answer_that_is_not_json_is_an_error_not_a_save(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    ns = "tenant-portal"
    _editing_prefs(page, server, admin, ns)
    portal = "<html><body><h1>Welcome! Sign in to the Wi-Fi</h1></body></html>"
    page.route(
        lambda url: "/keys/prefs" in url,
        lambda route: (
            route.fulfill(status=200, content_type="text/html", body=portal)
            if route.request.method == "PUT"
            else route.fallback()
        ),
    )
    page.click("#save")
    error = page.locator("#entry-error")
    expect(error).to_contain_text("Not saved? unexpected answer to PUT")
    expect(error).to_contain_text("HTTP 200 (text/html)")
    expect(page.locator("#status")).not_to_contain_text("Saved")
    assert _get(admin, ns, "prefs").json()["value"] == {"tone": "casual"}


def test_a_save_whose_answer_was_lost_is_not_reported_as_another_clients(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    """The PUT reaches the server, its answer is lost (the connection reset): saving again
    meets a 412 from the console's own first attempt. It used to say "another client saved
    version N"; the key holds exactly what was sent, so it is reported saved."""
    ns = "tenant-lost"
    _editing_prefs(page, server, admin, ns)
    lost = {"puts": 0}

    def first_put_applied_then_cut(route: Any) -> None:
        if route.request.method != "PUT" or lost["puts"]:
            route.fallback()
            return
        lost["puts"] += 1
        route.fetch()  # the server applies it ...
        route.abort("connectionreset")  # ... and its answer never arrives

    page.route(lambda url: "/keys/prefs" in url, first_put_applied_then_cut)
    page.click("#save")
    expect(page.locator("#entry-error")).to_contain_text("Not saved")
    assert _get(admin, ns, "prefs").json()["value"] == {"tone": "formal"}  # it was applied
    page.click("#save")  # the user tries again: a 412 from the first attempt's version
    expect(page.locator("#status")).to_contain_text("Saved prefs")
    expect(page.locator("#status")).to_contain_text("its answer was lost")
    expect(page.locator("#conflict")).to_be_hidden()
    assert _get(admin, ns, "prefs").json()["value"] == {"tone": "formal"}


# -- 9. a 1 MiB value -----------------------------------------------------------------------------


def test_a_1_mib_value_opens_in_seconds_and_shows_whole(
    page: Page, server: ServerProcess, admin: httpx.Client
) -> None:
    ns = "tenant-big"
    value = {"a": [0] * 500_000}  # 1 MB of tiny tokens: ~23 s frozen with a span per token
    _put(admin, ns, "blob", value=value)
    _sign_in(page, server.url)
    _open_ns(page, ns)
    page.fill("#key-prefix", "blob")
    page.click("#key-search")
    started = time.monotonic()
    page.locator('#key-list li[data-key="blob"] button').click()
    expect(page.locator("#entry-actions")).to_be_visible(timeout=30_000)
    opened = time.monotonic() - started
    compact = json.dumps(value, separators=(",", ":"))
    assert page.evaluate("document.getElementById('json').textContent") == compact
    assert page.locator("#json span").count() < 50_000  # colours for the first 32 KiB
    expect(page.locator("#json-note")).to_contain_text("Large value")
    page.click("#edit")
    assert page.evaluate("document.getElementById('edit-text').value.length") == len(compact)
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("No change")
    assert opened < 10, f"opening a 1 MiB value took {opened:.1f} s"
    print(f"FIGURE console opened a 1 MiB value in {opened:.1f} s")


# -- 10. GET / behind a path prefix ----------------------------------------------------------


def test_the_root_pages_links_keep_a_reverse_proxys_path_prefix(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    with running_nginx(tmp_path, server.port) as nginx:
        page.goto(nginx.http_url + "/botwire/")
        for href in page.locator("a").evaluate_all("links => links.map((a) => a.href)"):
            assert href.startswith(nginx.http_url + "/botwire/"), href
        page.get_by_role("link", name="/console/").click()
        expect(page.locator("#signin")).to_be_visible()
        assert page.url == nginx.http_url + "/botwire/console/"

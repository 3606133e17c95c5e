"""The console end to end: real headless Chromium (Debian's, driven by Playwright) against a
real botwire-server process with tokens. The screenshots of docs/console.md are taken here.

Chromium is launched from /usr/bin/chromium (``.ci/run`` installs Debian's package); Playwright
never downloads a browser of its own.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from support.chromium import ARGS, CHROMIUM
from support.nginx import running_nginx
from support.server import ServerProcess, running_server

from botwire_server.auth import mint_token

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "console"
SECRET = "console-browser-secret-0123456789abcdef"
BIG = 5000  # keys paged through in the browser
TURNS = 200  # chat turns in the history
HOSTILE_KEY = '<img src=x onerror="window.pwned=1">'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), "Debian's chromium is needed: apt-get install chromium"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _admin(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": "Bearer " + mint_token(SECRET, ["*"])}
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("console-browser") / "bw.db"
    with running_server("--token-secret", SECRET, database=db) as s, _admin(s) as admin:
        for start in range(0, BIG, 1000):
            ops = [
                {"op": "set", "key": f"key-{i:05d}", "value": {"i": i}}
                for i in range(start, start + 1000)
            ]
            assert admin.post("/v1/namespaces/tenant-a-big/batch", json={"ops": ops}).is_success
        turns = [
            {
                "role": "user" if i % 2 == 0 else "assistant",
                "content": f"turn {i}: " + ("question?" if i % 2 == 0 else "answer."),
            }
            for i in range(TURNS)
        ]
        ns = "/v1/namespaces/tenant-a-support/keys/"
        assert admin.patch(ns + "chat_history", json={"append": turns}).is_success
        assert admin.put(
            ns + "preferences",
            json={
                "value": {
                    "language": "en",
                    "tone": "concise",
                    "topics": ["billing", "refunds"],
                    "vip": True,
                    "score": 4.5,
                    "notes": None,
                }
            },
        ).is_success
        assert admin.put(
            ns + "session",
            json={
                "value": {
                    "step": 3,
                    "plan": ["research", "outline", "draft"],
                    "user": {"id": 42, "name": "Alice"},
                },
                "ttl": 3600,
            },
        ).is_success
        assert admin.put(
            ns + "%3Cimg%20src%3Dx%20onerror%3D%22window.pwned%3D1%22%3E",
            json={"value": "<script>window.pwned=2</script>"},
        ).is_success
        assert admin.put(
            "/v1/namespaces/tenant-b-secret/keys/k", json={"value": "other tenant"}
        ).is_success
        yield s


def _token(perm: str, patterns: tuple[str, ...] = ("tenant-a-*",)) -> str:
    return mint_token(SECRET, list(patterns), perm=perm)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 760}, accept_downloads=True)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    try:
        yield pg
        # CSP violations and script errors show up here; expected API refusals (403, 412)
        # are logged by Chromium as failed resource loads, nothing else may be
        unexpected = [p for p in problems if "Failed to load resource" not in p]
        assert not unexpected, unexpected
        assert pg.evaluate("window.pwned") is None
    finally:
        context.close()


def _sign_in(page: Page, server: ServerProcess, token: str) -> None:
    page.goto(server.url + "/console")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#main")).to_be_visible()


def _open_ns(page: Page, ns: str) -> None:
    page.locator("#ns-list li", has_text=ns).locator("button").click()
    expect(page.locator("#usage h2")).to_have_text(ns)


def _open_key(page: Page, key: str, prefix: str | None = None) -> None:
    page.fill("#key-prefix", prefix if prefix is not None else key)
    page.click("#key-search")
    page.locator(f"#key-list li[data-key={json.dumps(key)}] button").click()
    expect(page.locator("#entry-head h2")).to_have_text(key)


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_a_scoped_read_only_token_sees_only_its_namespaces(
    page: Page, server: ServerProcess
) -> None:
    page.goto(server.url + "/console")
    expect(page.locator("#signin")).to_be_visible()
    _shot(page, "sign-in")
    token = _token("read")
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#ns-list li")).to_have_count(2)
    assert page.locator("#ns-list li").all_inner_texts()[0].startswith("tenant-a-big")
    expect(page.locator("#ns-list")).not_to_contain_text("tenant-b")
    expect(page.locator("#who")).to_contain_text("read-only")
    # the token lives in this tab's sessionStorage only: no cookie, nothing in localStorage
    assert page.evaluate("sessionStorage.getItem('botwire.token')") == token
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    # typing another tenant's namespace opens nothing of it: the API refuses (403)
    page.fill("#ns-filter", "tenant-b-secret")
    page.click("#ns-form button")
    expect(page.locator("#usage .error")).to_contain_text("does not cover namespace")
    expect(page.locator("#key-list")).to_contain_text("does not cover")
    expect(page.locator("#key-list")).not_to_contain_text("other tenant")
    # signing out forgets the token
    page.fill("#ns-filter", "")
    page.click("#ns-form button")
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('botwire.token')") is None


def test_a_wrong_token_is_refused_with_the_servers_reason(
    page: Page, server: ServerProcess
) -> None:
    page.goto(server.url + "/console/")
    page.fill("#token", mint_token("not-the-secret-0123456789abcdefghijkl", ["*"]))
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("token is invalid")
    expect(page.locator("#main")).to_be_hidden()


def test_page_through_5000_keys_and_search_by_prefix(page: Page, server: ServerProcess) -> None:
    _sign_in(page, server, _token("read"))
    _open_ns(page, "tenant-a-big")
    expect(page.locator("#usage")).to_contain_text(f"{BIG} / unlimited")
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        expect(page.locator("#key-page")).to_contain_text(f"page {pages} ")
        seen += page.locator("#key-list li").evaluate_all("els => els.map(e => e.dataset.key)")
        if pages == 2:
            _shot(page, "keys")
        if page.locator("#key-next").is_disabled():
            break
        page.click("#key-next")
    assert seen == [f"key-{i:05d}" for i in range(BIG)] and pages == BIG // 100
    page.click("#key-prev")
    expect(page.locator("#key-page")).to_have_text(f"page {pages - 1} · keys 4801–4900")
    page.fill("#key-prefix", "key-0420")
    page.click("#key-search")
    expect(page.locator("#key-list li")).to_have_count(10)
    expect(page.locator("#key-next")).to_be_disabled()
    print(f"FIGURE console paged {BIG} keys in {pages} pages of 100")


def test_a_200_turn_chat_history_reads_like_a_chat_from_the_tail(
    page: Page, server: ServerProcess
) -> None:
    _sign_in(page, server, _token("read"))
    _open_ns(page, "tenant-a-support")
    _open_key(page, "chat_history")
    bubbles = page.locator("#chat .bubble")
    expect(bubbles).to_have_count(50)  # the tail first
    expect(bubbles.last).to_contain_text(f"turn {TURNS - 1}: answer.")
    expect(bubbles.first).to_contain_text(f"turn {TURNS - 50}:")
    assert "me" in (bubbles.nth(0).get_attribute("class") or "")  # user turns on the right
    _shot(page, "chat")
    for shown in (100, 150, 200):
        page.click("#older")
        expect(bubbles).to_have_count(shown)
    expect(bubbles.first).to_contain_text("turn 0: question?")
    page.click("#older")  # past the start: everything is there, the button goes away
    expect(page.locator("#older")).to_be_hidden()
    expect(bubbles).to_have_count(TURNS)


def test_values_are_highlighted_with_version_and_ttl_and_never_run_as_html(
    page: Page, server: ServerProcess
) -> None:
    _sign_in(page, server, _token("read"))
    _open_ns(page, "tenant-a-support")
    _open_key(page, "session")
    ttl = page.locator(".ttl")
    expect(ttl).to_contain_text(re.compile(r"in 5\dm \d+s \("))  # an hour's TTL, counting
    first = ttl.inner_text()
    page.wait_for_function("t => document.querySelector('.ttl').textContent !== t", arg=first)
    _shot(page, "value")
    _open_key(page, "preferences")
    expect(page.locator("#json .j-key").first).to_have_text('"language"')
    expect(page.locator("#json .j-lit")).to_have_count(2)  # true, null
    expect(page.locator("#json .j-num")).to_have_text(["4.5"])
    expect(page.locator("#entry-head .version")).to_have_text(
        str(
            _admin(server).get("/v1/namespaces/tenant-a-support/keys/preferences").json()["version"]
        )
    )
    _open_key(page, HOSTILE_KEY, prefix="<img")
    expect(page.locator("#json")).to_have_text('"<script>window.pwned=2</script>"')
    assert page.locator("img, #json script").count() == 0


def _entry(server: ServerProcess, key: str) -> dict[str, Any]:
    with _admin(server) as admin:
        entry: dict[str, Any] = admin.get(f"/v1/namespaces/tenant-a-support/keys/{key}").json()
        return entry


def test_edit_saves_conditionally_and_shows_the_newer_version_on_conflict(
    page: Page, server: ServerProcess
) -> None:
    _sign_in(page, server, _token("write"))
    _open_ns(page, "tenant-a-support")
    _open_key(page, "preferences")
    page.click("#edit")
    opened = _entry(server, "preferences")
    # another client (an agent) writes first
    with _admin(server) as agent:
        theirs = {**opened["value"], "tone": "formal"}
        r = agent.put("/v1/namespaces/tenant-a-support/keys/preferences", json={"value": theirs})
        assert r.is_success
        their_version = r.json()["version"]
    mine = {**opened["value"], "language": "fr"}
    page.fill("#edit-text", json.dumps(mine))
    page.click("#save")
    conflict = page.locator("#conflict")
    expect(conflict).to_contain_text(f"saved version {their_version}")
    expect(conflict).to_contain_text('"formal"')
    _shot(page, "conflict")
    # nothing was overwritten; the user's edit is still in the editor
    assert _entry(server, "preferences")["value"] == theirs
    assert json.loads(page.input_value("#edit-text")) == mine
    page.get_by_text("Overwrite with mine").click()
    expect(page.locator("#status")).to_contain_text("Saved preferences")
    after = _entry(server, "preferences")
    assert after["value"] == mine and after["version"] > their_version
    expect(page.locator("#entry-head .version")).to_have_text(str(after["version"]))
    # invalid JSON is refused in the page, and nothing is sent
    page.click("#edit")
    page.fill("#edit-text", "{not json")
    page.click("#save")
    expect(page.locator("#entry-error")).to_contain_text("Not valid JSON, nothing saved")
    assert _entry(server, "preferences")["version"] == after["version"]


def test_an_edit_keeps_the_remaining_ttl(page: Page, server: ServerProcess) -> None:
    _sign_in(page, server, _token("write"))
    _open_ns(page, "tenant-a-support")
    _open_key(page, "session")
    page.click("#edit")
    page.fill("#edit-text", '{"step": 4}')
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Saved session")
    entry = _entry(server, "session")
    assert entry["value"] == {"step": 4}
    assert entry["expires_at"] is not None and entry["expires_at"] - entry["updated_at"] > 3000


def test_a_read_only_token_cannot_save(page: Page, server: ServerProcess) -> None:
    before = _entry(server, "preferences")
    _sign_in(page, server, _token("read"))
    _open_ns(page, "tenant-a-support")
    _open_key(page, "preferences")
    page.click("#edit")
    page.fill("#edit-text", '{"hacked": true}')
    page.click("#save")
    expect(page.locator("#entry-error")).to_contain_text("Not saved")
    expect(page.locator("#entry-error")).to_contain_text("read-only")
    page.click("#cancel")
    page.click("#delete")
    page.click("#confirm-ok")
    expect(page.locator("#entry-error")).to_contain_text("Not deleted")
    assert _entry(server, "preferences") == before


def test_delete_asks_first_and_export_downloads_json_lines(
    page: Page, server: ServerProcess
) -> None:
    with _admin(server) as admin:
        assert admin.put(
            "/v1/namespaces/tenant-a-support/keys/scratch", json={"value": [1, 2]}
        ).is_success
    _sign_in(page, server, _token("write"))
    _open_ns(page, "tenant-a-support")
    _open_key(page, "scratch")
    page.click("#delete")
    expect(page.locator("#confirm-text")).to_contain_text('Delete key "scratch"')
    page.get_by_role("button", name="Cancel").click()
    assert _entry(server, "scratch")["value"] == [1, 2]
    page.click("#delete")
    page.click("#confirm-ok")
    expect(page.locator("#status")).to_contain_text("Deleted scratch")
    with _admin(server) as admin:
        assert admin.get("/v1/namespaces/tenant-a-support/keys/scratch").status_code == 404
        keys = [k["key"] for k in admin.get("/v1/namespaces/tenant-a-support/keys").json()["keys"]]
    with page.expect_download() as info:
        page.click("#export")
    download = info.value
    assert download.suggested_filename == "tenant-a-support.jsonl"
    lines = [json.loads(x) for x in Path(download.path()).read_text("utf-8").splitlines()]
    assert [x["key"] for x in lines] == keys
    chat = next(x for x in lines if x["key"] == "chat_history")
    assert chat["value"] == _entry(server, "chat_history")["value"]
    assert len(chat["value"]) >= TURNS and isinstance(chat["version"], int)


def test_refresh_shows_what_agents_wrote_meanwhile(page: Page, server: ServerProcess) -> None:
    _sign_in(page, server, _token("read"))
    _open_ns(page, "tenant-a-support")
    _open_key(page, "chat_history")
    with _admin(server) as agent:
        assert agent.patch(
            "/v1/namespaces/tenant-a-support/keys/chat_history",
            json={"append": [{"role": "user", "content": "a new turn"}]},
        ).is_success
    expect(page.locator("#chat .bubble").last).not_to_contain_text("a new turn")
    page.click("#refresh")
    expect(page.locator("#chat .bubble").last).to_contain_text("a new turn")


@pytest.fixture(scope="module")
def anon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An anonymous loopback server with limits (usage bars) and a 64 KB answer limit."""
    limits = (
        "--max-keys",
        "100",
        "--writes-per-day",
        "1000",
        "--max-namespace-bytes",
        "131072",
        "--max-response-bytes",
        "65536",
    )
    db = tmp_path_factory.mktemp("console-anon") / "anon.db"
    with running_server(*limits, database=db) as s:
        yield s


def test_an_anonymous_loopback_server_needs_no_sign_in(page: Page, anon: ServerProcess) -> None:
    assert httpx.put(anon.url + "/v1/namespaces/local-agent/keys/k", json={"value": 1}).is_success
    page.goto(anon.url + "/console")
    expect(page.locator("#ns-list li[data-ns=local-agent]")).to_have_count(1)
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("#who")).to_have_text("anonymous (loopback)")
    notes = [
        {"op": "set", "key": f"note-{i:02d}", "value": {"text": f"remember {i}"}} for i in range(30)
    ]  # usage against the limits: 31 of 100 keys, 31 writes of 1000
    assert httpx.post(anon.url + "/v1/namespaces/local-agent/batch", json={"ops": notes}).is_success
    page.click("#refresh")
    _open_ns(page, "local-agent")
    expect(page.locator("#usage")).to_contain_text("31 / 100")
    expect(page.locator("#usage")).to_contain_text("31 / 1000")
    _shot(page, "namespaces")


def test_the_console_works_behind_nginx_under_a_path_prefix(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    """Deployed as docs/server.md recommends (nginx, /botwire/ prefix): the relative redirect
    and the API found beside /console/ keep the prefix; a save passes the Origin check."""
    with _admin(server) as admin:
        assert admin.put(
            "/v1/namespaces/tenant-a-support/keys/proxied", json={"value": {"via": "direct"}}
        ).is_success
    with running_nginx(tmp_path, server.port) as nginx:
        page.goto(nginx.http_url + "/botwire/console")
        assert page.url == nginx.http_url + "/botwire/console/"
        page.fill("#token", _token("write"))
        page.click("#signin-form button[type=submit]")
        _open_ns(page, "tenant-a-support")
        _open_key(page, "proxied")
        page.click("#edit")
        page.fill("#edit-text", '{"via": "nginx"}')
        page.click("#save")
        expect(page.locator("#status")).to_contain_text("Saved proxied")
        assert _entry(server, "proxied")["value"] == {"via": "nginx"}


def test_export_falls_back_to_single_reads_past_the_answer_limit(
    page: Page, anon: ServerProcess
) -> None:
    """40 gets of 2 KB values would answer 80 KB; this server answers at most 64 KB per
    batch, so the console reads those keys one at a time and still exports all of them."""
    ops = [{"op": "set", "key": f"big-{i:03d}", "value": "x" * 2000} for i in range(40)]
    assert httpx.post(anon.url + "/v1/namespaces/bulky/batch", json={"ops": ops}).is_success
    batch = httpx.post(
        anon.url + "/v1/namespaces/bulky/batch",
        json={"ops": [{"op": "get", "key": o["key"]} for o in ops], "atomic": False},
    )
    assert batch.status_code == 413  # the limit this test is about
    page.goto(anon.url + "/console/")
    _open_ns(page, "bulky")
    with page.expect_download() as info:
        page.click("#export")
    lines = Path(info.value.path()).read_text("utf-8").splitlines()
    assert [json.loads(x)["key"] for x in lines] == [o["key"] for o in ops]
    assert all(json.loads(x)["value"] == "x" * 2000 for x in lines)

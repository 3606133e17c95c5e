"""Retries ride out a short outage with the default settings, and say what happened when they
cannot: the URL, the attempts, the real elapsed time, the last status and Location.

Real server, a relay that goes down for 2 s (an HTML 502 from a "load balancer", or refused
connections as during a restart), sync ``Memory`` and async ``AsyncMemory``.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from support.faultproxy import FaultProxy
from support.server import free_port

from botwire import Memory, QuotaExceeded, Unavailable
from botwire.backends import _http as h
from botwire.backends._retry import DEFAULT_RETRIES, Attempts, backoff

APPENDS = 41
OUTAGE = 2.0


@pytest.mark.parametrize("how", ["502", "refuse"])
def test_a_2s_outage_during_41_appends_fails_none_with_default_settings(
    client: Any, proxy: FaultProxy, ns: str, truth: Memory, how: str
) -> None:
    """The appends are paced over ~4 s and the upstream is down from ~1 s to ~3 s."""
    m = client(ns, url=proxy.url)  # default timeout, retries and backoff
    m.append("log", "warm-up")
    failed: list[str] = []
    slowest = 0.0
    started = time.monotonic()
    timer = threading.Timer(1.0, proxy.go_down, (OUTAGE, how))
    timer.start()
    try:
        for i in range(APPENDS):
            t0 = time.monotonic()
            try:
                m.append("log", i)
            except Unavailable as exc:
                failed.append(f"{i}: {exc}")
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(max(0.0, started + 0.1 * (i + 1) - time.monotonic()))
    finally:
        timer.cancel()
    print(
        f"FIGURE outage-{how}-{client.kind}: {len(failed)} of {APPENDS} appends failed during "
        f"a {OUTAGE:.0f} s outage; slowest append {slowest:.2f} s; 502 answers "
        f"{proxy.down_answers}; total {time.monotonic() - started:.2f} s"
    )
    assert failed == []
    assert truth.get("log") == ["warm-up", *range(APPENDS)]  # each once, in order
    if how == "502":
        assert proxy.down_answers > 0  # the outage really was met


def test_unreachable_server_message_gives_url_attempts_and_real_elapsed_time(
    client: Any, ns: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    m = client(ns, url=url, retries=3, timeout=5)
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        m.set("k", 1)
    elapsed = time.monotonic() - started
    text = str(info.value)
    assert f"PUT {url}/v1/namespaces/{ns}/keys/k" in text and "BOTWIRE_URL" in text
    assert "4 attempts in " in text and info.value.details["attempts"] == 4
    reported = float(re.search(r"attempts in ([0-9.]+) s", text).group(1))  # type: ignore[union-attr]
    assert reported <= elapsed + 0.01  # the time it really took, not timeout x (retries+1)
    assert "deadline 20.0 s" in text
    assert "Connect" in text or "refused" in text.lower()  # the cause, named


def test_persistent_html_502_names_status_content_and_attempts(
    client: Any, proxy: FaultProxy, ns: str
) -> None:
    m = client(ns, url=proxy.url, retries=2)
    proxy.go_down(60, "502")
    with pytest.raises(Unavailable) as info:
        m.get("k")
    text = str(info.value)
    assert "HTTP 502" in text and "text/html" in text and "502 Bad Gateway" in text
    assert "unexpected response body" not in text
    assert f"GET {proxy.url}/v1/namespaces/{ns}/keys/k" in text
    assert "3 attempts in " in text
    assert info.value.details["status"] == 502 and proxy.down_answers == 3


def test_botwire_503_keeps_its_class_and_message_with_the_retry_story(
    client: Any, proxy: FaultProxy, ns: str
) -> None:
    m = client(ns, url=proxy.url, retries=1)
    proxy.set_script(["unavailable"] * 5)
    with pytest.raises(Unavailable) as info:
        m.incr("n")
    text = str(info.value)
    assert "proxy says busy" in text and "last answer HTTP 503" in text and "2 attempts" in text


def test_long_quota_wait_is_raised_at_once(client: Any, tmp_path: Any, ns: str) -> None:
    from support.server import running_server

    with running_server("--writes-per-day", "1", database=tmp_path / "q.db") as srv:
        m = client(ns, url=srv.url)
        m.set("a", 1)
        started = time.monotonic()
        with pytest.raises(QuotaExceeded) as info:
            m.set("b", 2)
        assert time.monotonic() - started < 3  # no backoff spent on a daily quota
        assert info.value.retry_after is not None and info.value.namespace == ns


# -- the policy itself, driven with a fake clock (no sleeping) ---------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _call() -> h.Call:
    target = h.Target.parse("http://127.0.0.1:9/base")
    return h.get_call(target, h.base_headers(target, None), "ns", "k", None)


def _drive_refused(attempts: Attempts, clock: _Clock) -> tuple[int, float, Unavailable]:
    while True:
        attempts.begin()
        try:
            clock.now += attempts.failed(ConnectionRefusedError(111, "Connection refused"))
        except Unavailable as exc:
            return attempts.attempts, clock.now, exc


def test_default_backoff_waits_at_least_3_5_s_and_at_most_7_1_s() -> None:
    """The floor is what rides out a 2-3 s outage; the ceiling keeps a dead server's report
    prompt. Exhaustive over the jitter's extremes, then sampled."""
    floor = sum(min(2.0, 0.1 * 2**i) / 2 for i in range(DEFAULT_RETRIES))
    ceiling = sum(min(2.0, 0.1 * 2**i) for i in range(DEFAULT_RETRIES))
    assert DEFAULT_RETRIES == 7 and round(floor, 2) == 3.55 and round(ceiling, 2) == 7.1
    waits = []
    for _ in range(200):
        clock = _Clock()
        tries, waited, _ = _drive_refused(
            Attempts(_call(), timeout=10, retries=DEFAULT_RETRIES, deadline=80, clock=clock),
            clock,
        )
        assert tries == DEFAULT_RETRIES + 1
        waits.append(waited)
    assert floor - 1e-9 <= min(waits) and max(waits) <= ceiling + 1e-9
    assert all(0.05 <= backoff(0) <= 0.1 for _ in range(100))


def test_no_sleep_runs_into_the_deadline() -> None:
    clock = _Clock()
    attempts = Attempts(_call(), timeout=1, retries=100, deadline=3, clock=clock)
    tries, waited, exc = _drive_refused(attempts, clock)
    assert waited < 3 and "before the overall deadline" in str(exc)
    assert f"{tries} attempts in {waited:.2f} s" in str(exc)


def test_a_stale_pooled_connection_is_retried_at_once_and_not_counted() -> None:
    clock = _Clock()
    attempts = Attempts(_call(), timeout=1, retries=0, deadline=10, clock=clock)
    attempts.begin()
    assert attempts.failed(ConnectionResetError(), reused=True) == 0.0
    attempts.begin()
    with pytest.raises(Unavailable, match="1 attempt in"):
        attempts.failed(ConnectionResetError(), reused=True)  # only the first is free


def test_retry_after_is_honoured_and_long_ones_are_final() -> None:
    clock = _Clock()
    attempts = Attempts(_call(), timeout=1, retries=3, deadline=30, clock=clock)
    attempts.begin()
    done, wait = attempts.answered(503, {"retry-after": "1.5"}, b"")
    assert not done and wait >= 1.5
    attempts.begin()
    with pytest.raises(QuotaExceeded):  # 429 asking for an hour: report it now
        attempts.answered(
            429, {"retry-after": "3600"}, b'{"error":{"code":"quota_exceeded","message":"m"}}'
        )

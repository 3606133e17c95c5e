"""P2 (warm ``Memory.get`` over keep-alive), P4 (one chat turn as the history grows) and P5 (GET
latency in a big store), each against a baseline measured in the same run, on loopback.
"""

from __future__ import annotations

import http.client
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import Row, Settings, interleaved, log, median, server

from botwire import Memory

__all__ = ["p2_warm_get", "p4_chat_turn", "p5_big_store"]


def _per_call_us(fn: Callable[[], Any], n: int) -> float:
    """Median µs of ``n`` calls of ``fn``."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return median(samples) * 1e6


def _http_get(conn: http.client.HTTPConnection, path: str) -> Callable[[], bytes]:
    def call() -> bytes:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        return body

    return call


# -- P2 ----------------------------------------------------------------------------------------


def p2_warm_get(settings: Settings) -> list[Row]:
    n = 200 if settings.quick else 500
    rounds = max(settings.rounds, 5)
    with server() as srv:
        m = Memory("p2-warm", url=srv.url)
        m.set("profile", {"name": "alice", "tone": "brief", "plan": "pro"})
        conn = http.client.HTTPConnection(srv.host, srv.port)
        noop = _http_get(conn, "/_noop")
        key = _http_get(conn, "/v1/namespaces/p2-warm/keys/profile")
        get = lambda: m.get("profile")  # noqa: E731
        for fn in (noop, key, get):  # warm up: connections open, caches filled
            _per_call_us(fn, 100)
        samples = interleaved(
            {
                "noop": lambda: _per_call_us(noop, n),
                "http.client key": lambda: _per_call_us(key, n),
                "Memory.get": lambda: _per_call_us(get, n),
            },
            rounds,
        )
        conn.close()
        m.close()
    ratios = [g / b for g, b in zip(samples["Memory.get"], samples["noop"], strict=True)]
    raw = [g / b for g, b in zip(samples["http.client key"], samples["noop"], strict=True)]
    ratio = median(ratios)
    med = {k: median(v) for k, v in samples.items()}
    return [
        Row(
            "P2",
            "warm `Memory.get` over keep-alive (loopback)",
            ratio,
            "×",
            f"`http.client` GET `/_noop`, same server = {med['noop']:.0f} µs",
            "≤ 1.2×",
            ratio <= 1.2,
            note=f"{med['Memory.get']:.0f} µs per get",
            details={
                "median_us": med,
                "round_ratios": ratios,
                "calls_per_round": n,
                "samples_us": samples,
            },
        ),
        Row(
            "P2b",
            "`http.client` GET of the same key (server cost of a read; context)",
            median(raw),
            "×",
            "`http.client` GET `/_noop`",
            "—",
            None,
            note=f"{med['http.client key']:.0f} µs",
        ),
    ]


# -- P4 ----------------------------------------------------------------------------------------


def _turn(i: int) -> dict[str, Any]:
    return {
        "user": f"message {i}: what about the next step of the plan?",
        "assistant": f"reply {i}: " + "here is a considered answer. " * 6,
        "timestamp": f"2026-01-15T10:{i % 60:02d}:00Z",
    }


def p4_chat_turn(settings: Settings) -> list[Row]:
    from support.faultproxy import FaultProxy

    lengths = [1, 10, 100, 1000, 5000]
    turns = 10 if settings.quick else 30  # measured turns per length and pattern
    grow_to = 2000 if settings.quick else 5000
    details: dict[str, Any] = {"lengths": lengths, "turn_bytes": len(str(_turn(0)))}
    bytes_rows: dict[str, dict[int, float]] = {"append": {}, "read_write": {}, "tail_append": {}}
    time_rows: dict[str, dict[int, float]] = {"append": {}, "read_write": {}, "tail_append": {}}
    with (
        tempfile.TemporaryDirectory() as tmp,
        server("--max-value-bytes", "0", database=Path(tmp) / "p4.db") as srv,
        FaultProxy(srv.port) as proxy,
    ):
        direct = Memory("p4-chat", url=srv.url)
        proxied = Memory("p4-chat-proxied", url=proxy.url)

        def seed(m: Memory, key: str, n: int, as_list: bool) -> None:
            if as_list:
                m.set(key, [_turn(i) for i in range(n)])
            else:
                for start in range(0, n, 1000):
                    tx = m.atomic()
                    for i in range(start, min(n, start + 1000)):
                        tx.append(key, _turn(i))
                    tx.commit()

        def patterns(m: Memory, length: int) -> dict[str, Callable[[], Any]]:
            def append() -> None:
                m.append(f"bw-{length}", _turn(length))

            def tail_append() -> None:
                m.tail(f"bw-tail-{length}", 20)
                m.append(f"bw-tail-{length}", _turn(length))

            def read_write() -> None:  # the original client's chat history: GET + PUT it back
                history = m.get(f"old-{length}") or []
                history.append(_turn(length))
                m.set(f"old-{length}", history)

            return {"append": append, "tail_append": tail_append, "read_write": read_write}

        for length in lengths:
            for m in (direct, proxied):
                seed(m, f"bw-{length}", length, False)
                seed(m, f"bw-tail-{length}", length, False)
                seed(m, f"old-{length}", length, True)
            # bytes: a few turns through the counting proxy (they barely move the length)
            for name, fn in patterns(proxied, length).items():
                up, down = proxy.bytes_up, proxy.bytes_down
                k = 3
                for _ in range(k):
                    fn()
                bytes_rows[name][length] = (proxy.bytes_up - up + proxy.bytes_down - down) / k
            # time: direct, interleaved rounds
            pats = patterns(direct, length)
            per = interleaved(
                {name: (lambda fn=fn: _per_call_us(fn, turns)) for name, fn in pats.items()},
                max(3, settings.rounds),
            )
            for name, v in per.items():
                time_rows[name][length] = median(v)
            log(
                f"    P4 length {length}: bytes/turn append {bytes_rows['append'][length]:.0f}, "
                f"read+write {bytes_rows['read_write'][length]:.0f}; µs append "
                f"{time_rows['append'][length]:.0f}, read+write "
                f"{time_rows['read_write'][length]:.0f}"
            )

        # growth: one fresh history, turn by turn, time of every append
        growth = []
        for i in range(grow_to):
            t = time.perf_counter()
            direct.append("grown", _turn(i))
            growth.append((time.perf_counter() - t) * 1e6)
        direct.close()
        proxied.close()
        time.sleep(0.2)  # let the proxy see its clients leave before it stops

    at = 1000
    fewer = bytes_rows["read_write"][at] / bytes_rows["append"][at]
    first, last = median(growth[:100]), median(growth[-100:])
    drift = last / first
    details.update(
        bytes_per_turn=bytes_rows, us_per_turn=time_rows, growth_us=growth, grow_to=grow_to
    )
    rows = [
        Row(
            "P4",
            "one chat turn at 1,000 turns: bytes on the wire, `append`",
            fewer,
            "× fewer",
            f"GET the list + PUT it back = {bytes_rows['read_write'][at]:,.0f} B/turn",
            "≥ 100× fewer",
            fewer >= 100,
            note=f"{bytes_rows['append'][at]:,.0f} B/turn; at 5,000 turns "
            f"{bytes_rows['read_write'][5000] / bytes_rows['append'][5000]:,.0f}× fewer",
            details=details,
        ),
        Row(
            "P4b",
            f"chat turn time, last 100 / first 100 of a history grown to {grow_to:,}",
            drift,
            "×",
            "the first 100 turns of the same history",
            "≤ 1.2×",
            drift <= 1.2,
            note=f"{first:.0f} µs → {last:.0f} µs per append",
        ),
        Row(
            "P4c",
            "one chat turn at 1,000 turns: time, GET+PUT / `append` (context)",
            time_rows["read_write"][at] / time_rows["append"][at],
            "×",
            "`append`",
            "—",
            None,
            note=f"{time_rows['read_write'][at]:.0f} µs vs {time_rows['append'][at]:.0f} µs; "
            f"`tail(20)` + `append`: {time_rows['tail_append'][at]:.0f} µs",
        ),
    ]
    return rows


# -- P5 ----------------------------------------------------------------------------------------


def fill(path: Path, namespaces: int, per_ns: int) -> float:
    """Write ``namespaces`` × ``per_ns`` keys straight into a SQLite file; seconds taken."""
    from botwire.store import Op, SQLiteStore

    t = time.perf_counter()
    store = SQLiteStore(path)
    value = '{"name": "alice", "tone": "brief", "n": %d}'
    for n in range(namespaces):
        store.batch(
            f"ns-{n:05d}",
            [Op("set", f"key-{i:04d}", value=value % i) for i in range(per_ns)],
            atomic=True,
        )
    store.close()
    return time.perf_counter() - t


def p5_big_store(settings: Settings) -> list[Row]:
    per_ns = 100
    big_ns = 1000 if settings.quick else 10_000
    small_ns = 10
    n = 200 if settings.quick else 400
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        small_db, big_db = Path(tmp) / "small.db", Path(tmp) / "big.db"
        fill(small_db, small_ns, per_ns)
        secs = fill(big_db, big_ns, per_ns)
        log(
            f"    P5 filled {big_ns * per_ns:,} keys in {secs:.1f} s "
            f"({os.path.getsize(big_db) / 1e6:.0f} MB)"
        )
        with server(database=small_db) as small, server(database=big_db) as big:

            def reader(url: str, namespaces: int) -> Callable[[], float]:
                base = Memory("ns-00000", url=url)
                mems = [base.with_namespace(f"ns-{k:05d}") for k in range(namespaces)]

                def block() -> float:
                    picks = [
                        (rng.randrange(namespaces), f"key-{rng.randrange(per_ns):04d}")
                        for _ in range(n)
                    ]
                    samples = []
                    for k, key in picks:
                        t = time.perf_counter()
                        value = mems[k].get(key)
                        samples.append(time.perf_counter() - t)
                        assert value is not None
                    return median(samples) * 1e6

                block()  # warm up the connection
                return block

            samples = interleaved(
                {"1,000 keys": reader(small.url, small_ns), "big": reader(big.url, big_ns)},
                max(5, settings.rounds),
            )
    ratios = [b / s for b, s in zip(samples["big"], samples["1,000 keys"], strict=True)]
    ratio = median(ratios)
    label = f"{big_ns * per_ns:,} keys in {big_ns:,} namespaces"
    return [
        Row(
            "P5",
            f"GET latency with {label}",
            ratio,
            "×",
            f"the same with 1,000 keys = {median(samples['1,000 keys']):.0f} µs",
            "≤ 1.3×",
            ratio <= 1.3,
            note=(
                f"{median(samples['big']):.0f} µs per get"
                + ("; --quick: 100,000 keys, not 1,000,000" if settings.quick else "")
            ),
            details={
                "median_us": {k: median(v) for k, v in samples.items()},
                "round_ratios": ratios,
                "keys": big_ns * per_ns,
                "fill_seconds": secs,
                "gets_per_round": n,
            },
        )
    ]


if __name__ == "__main__":
    import sys

    s = Settings(quick=True, rounds=3, out=Path(os.devnull))
    which = sys.argv[1:] or ["p2", "p4", "p5"]
    for name in which:
        for row in {"p2": p2_warm_get, "p4": p4_chat_turn, "p5": p5_big_store}[name](s):
            print(row.id, row.figure, f"{row.value:.2f}{row.unit}", row.baseline, row.met, row.note)

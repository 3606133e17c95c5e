"""Smoke test of issue 22's PostgreSQL benchmark harness (``benchmarks/pg_reference.py``): its
write figures (P14, P15) run for real against ``botwire-server`` processes on the session's
PostgreSQL, briefly, and every request they send succeeds — so the harness cannot silently
measure error responses (it once sent ``Host: bench``, which the server refuses with 403 before
any store work, and reported those refusals as throughput). Nothing here asserts a timing."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import instructions  # noqa: E402
import p3_split  # noqa: E402
import p10_floor  # noqa: E402
import p10_trace  # noqa: E402
import pg_chat_bytes  # noqa: E402
import pg_pyspy  # noqa: E402
import pg_tx_cost  # noqa: E402
import pg_writes  # noqa: E402
import run  # noqa: E402
import server_cpu  # noqa: E402
import wakeups  # noqa: E402
from _common import Settings, _as_url  # noqa: E402


def test_write_figures_run_against_real_servers(fresh_postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(quick=True, rounds=1, out=tmp_path)
    rows, details = pg_writes.write_figures(settings, fresh_postgres_url, seconds=0.5, rounds=1)
    assert [r.id for r in rows] == ["P14", "P15", "P15b"]
    for row in rows:
        assert math.isfinite(row.value) and row.value > 0, row
    for variant in ("one", "eight"):
        assert details["namespaces"][variant][0] > 0
    for variant in ("one", "two"):
        (r,) = details["replicas"][variant]
        assert r["sets_per_s"] > 0 and r["cpu_us_per_set"] > 0
    print(f"FIGURE P14 {rows[0].value:.2f}x, P15 {rows[1].value:,.0f} us CPU per SET")


def test_requests_name_a_host_the_server_accepts() -> None:
    (request, *_), *_ = pg_writes._writers(1, 1, "t")
    assert b"\r\nHost: 127.0.0.1\r\n" in request


@pytest.mark.parametrize(
    "dsn",
    [
        "user=postgres dbname=bench host=127.0.0.1 port=5433",
        "user=postgres dbname=bench host='/tmp/pg sock:dir' port=5433",  # a Unix socket's directory
        "user=al password=p@ss dbname='my db' host=db.example port=5432",
    ],
)
def test_a_dsn_given_to_postgres_url_keeps_its_host(dsn: str) -> None:
    """``--postgres-url`` takes a libpq DSN; the servers are given its URL form, which must
    name the same host (a socket's directory among them), port, user and database."""
    from psycopg.conninfo import conninfo_to_dict

    url = _as_url(dsn)
    assert url.startswith("postgresql://")
    assert conninfo_to_dict(url) == conninfo_to_dict(dsn)


def test_rows_sort_by_number() -> None:
    ids = ["P10b", "P3w", "P10", "P1", "P15", "P7", "P3"]
    assert sorted(ids, key=run._number) == ["P1", "P3w", "P3", "P7", "P10b", "P10", "P15"]


def test_pyspy_summary_reads_collapsed_stacks() -> None:
    collapsed = (
        'process 1:"python";<module> (runpy.py:198);run (/x/botwire_server/app.py:10);'
        "execute (/y/psycopg/cursor.py:5) 3\n"
        'process 1:"python";<module> (runpy.py:198);run (/x/botwire_server/app.py:11) 1\n'
    )
    s = pg_pyspy.summarise(collapsed)
    assert s["samples"] == 4
    assert s["self_pct"][0] == ("execute (psycopg/cursor.py)", 75.0)
    assert ("run (botwire_server/app.py)", 100.0) in s["inclusive_pct"]


def test_table_bytes_counts_each_side_and_leaves_out_idempotency(fresh_postgres_url: str) -> None:
    """P11/P11c/P12b read table sizes: botwire's ``bw_*`` tables (P11c without
    ``bw_idempotency``) and the reference's own tables, never each other's."""
    import pg_reference
    import psycopg

    assert pg_reference.table_bytes(fresh_postgres_url, "botwire") == 0
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        for table in ("bw_entries_x", "bw_idempotency", "chat_history", "other"):
            conn.execute(f"CREATE TABLE {table} (v text)")
            conn.execute(
                f"INSERT INTO {table} SELECT repeat('x', 500) FROM generate_series(1, 200)"
            )
    total = pg_reference.table_bytes(fresh_postgres_url, "botwire")
    durable = pg_reference.table_bytes(fresh_postgres_url, "botwire", durable=True)
    ref = pg_reference.table_bytes(fresh_postgres_url, "ref")
    assert 0 < durable < total and ref > 0
    assert durable == ref  # one 200-row table each: bw_entries_x; chat_history ("other": neither)
    print(f"FIGURE bw {total} B, without idempotency {durable} B, reference {ref} B")


def test_chat_bytes_reads_each_relation_and_both_keys(fresh_postgres_url: str) -> None:
    """``pg_chat_bytes.py`` (P12b's evidence): a real server takes the adds, every relation that
    grew is reported, and the narrow copy of the items is read through its hash index."""
    lines = pg_chat_bytes.measure(150, 4, fresh_postgres_url)
    text = "\n".join(lines)
    for relation in ("bw_items", "keyed_pkey_pkey", "keyed_narrow_list"):
        assert f"| `{relation}` |" in text, text
    assert "the same 151 rows" in text, text  # 150 adds and the warm-up
    assert "Index Scan using keyed_narrow_list" in text, text


def test_p10e_worker_runs_the_graph_on_the_store_in_its_own_process(
    fresh_postgres_url: str,
) -> None:
    """P10e's side (``_pg_worker`` with ``embedded``) writes its checkpoints to PostgreSQL
    itself, with no server: they are in ``bw_entries`` afterwards."""
    import pg_reference
    import psycopg

    cfg = {"side": "botwire", "task": "graph", "invokes": 3, "threads": 2}
    cfg.update(dsn=fresh_postgres_url, embedded=True, namespace="p10e-smoke")
    out = pg_reference.run_worker(sys.executable, cfg, pg_reference.Counters([], None))
    assert out["checkpoints"] > 0 and math.isfinite(out["step_ms"]), out
    with psycopg.connect(fresh_postgres_url) as conn:
        row = conn.execute("SELECT count(*) FROM bw_entries WHERE ns = 'p10e-smoke'").fetchone()
    assert row is not None and row[0] > 0


def test_p13e_workers_add_every_message_on_the_store_in_their_own_processes(
    fresh_postgres_url: str,
) -> None:
    """P13e's side: six forked processes, each with its own ``PostgresStore`` and no server,
    append to one session; every message is there afterwards."""
    import pg_reference

    cfg = {"side": "botwire", "task": "chat_concurrent", "procs": 6, "adds": 5}
    cfg.update(dsn=fresh_postgres_url, embedded=True)
    out = pg_reference.run_worker(sys.executable, cfg, pg_reference.Counters([], None))
    assert out["messages"] == out["expected"] == 30, out
    assert out["adds_per_s"] > 0


def test_transaction_cost_runs_every_width_for_real(fresh_postgres_url: str) -> None:
    """``pg_tx_cost.py``'s in-process part: every width writes (a refused write raises), and
    each gives a CPU per write."""
    import asyncio

    from botwire_server.storage.postgres import PostgresStore

    with PostgresStore(fresh_postgres_url, async_writes=True, max_size=4) as store:
        out = asyncio.run(pg_tx_cost._in_process(store, 0.2, 1))
        from botwire import Memory

        for i in (0, 7, 31):  # every width's writes landed (write i: namespace i % spread)
            assert len(Memory(f"tx-{i}", store=store).get(f"l{i % 8}")) > 1, i
    assert list(out) == [label for label, _, _ in pg_tx_cost.WIDTHS]
    for label, us in out.items():
        assert len(us) == 1 and math.isfinite(us[0]) and us[0] > 0, (label, us)


def test_p3_split_serves_every_route_for_real_and_puts_the_store_back(
    fresh_postgres_url: str,
) -> None:
    """``p3_split.py``'s in-process part: every route answers 200 through the real app on
    PostgreSQL (another answer raises), the APPENDs land, and the store call it replaces for
    one round is the real one again afterwards."""
    import asyncio

    from botwire import Memory
    from botwire_server.storage._runner import StoreRunner
    from botwire_server.storage.postgres import PostgresStore

    real = StoreRunner.batch
    out = asyncio.run(p3_split._in_process(fresh_postgres_url, 0.05, 1))
    assert StoreRunner.batch is real
    assert list(out) == list(p3_split.ROUTES)
    for name, us in out.items():
        assert len(us) == 1 and math.isfinite(us[0]) and us[0] > 0, (name, us)
    with PostgresStore(fresh_postgres_url) as store:
        # seeded with one item, then appended to by the APPEND round only
        assert len(Memory("bench-0", store=store).get("list-0")) > 1


def test_server_cpu_measures_every_route_of_a_real_server(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``server_cpu.py``'s round: a real server, its packages put on ``PYTHONPATH`` as
    ``--against`` does, answers every route (a failed request raises), each gets a rate and a
    CPU figure, and the caller's ``PYTHONPATH`` is put back."""
    monkeypatch.setenv("PYTHONPATH", "/nonexistent-before")
    srcs = os.pathsep.join(str(p) for p in sorted((BENCH.parent / "packages").glob("*/src")))
    out = server_cpu._round(fresh_postgres_url, srcs, 1.0)  # wrk takes whole seconds
    assert os.environ["PYTHONPATH"] == "/nonexistent-before"
    assert list(out) == list(server_cpu.ROUTES)
    for name, (rps, us) in out.items():
        assert rps > 0 and math.isfinite(us) and us > 0, (name, rps, us)


def test_p10_trace_splits_the_puts_of_a_real_chain(fresh_postgres_url: str) -> None:
    """P10's graph through a real server traced phase by phase (``benchmarks/p10_trace.py``):
    almost every put is split (one whose marks are not all there is left out, never guessed),
    and the client's wrappers are put back afterwards."""
    from botwire_langgraph import BotWireSaver

    put = vars(BotWireSaver)["put"]
    result = p10_trace.measure(4, with_reference=False, postgres_url=fresh_postgres_url, warm_up=2)
    b = result["botwire"]
    assert b["puts"] >= 40, b  # 4 invokes of 11 puts
    assert b["reads"] >= 3, b  # a get_tuple an invoke: one statement, the saver is warm
    for name, (med, lo, hi) in [*b["phases"].items(), *b["read_phases"].items()]:
        assert 0 < lo <= med <= hi, (name, med, lo, hi)
    assert vars(BotWireSaver)["put"] is put
    print(f"FIGURE P10 trace: put {b['put'][0]:.0f} us, step {b['step_ms']:.2f} ms")


def test_p10_floor_posts_a_step_once_or_each_call_for_real(fresh_postgres_url: str) -> None:
    """The floor's bare route serves P10's graph for real, on two round trips a request
    (``benchmarks/p10_floor.py``, P10f): ``per_step`` posts each step once (the step's writes
    ride with its put, the last step's after the invoke), the other mode every put and
    put_writes."""
    with p10_floor.floor_server(fresh_postgres_url, 2) as floor:
        step = p10_floor.drive_once(floor, 3, per_step=True)
        each = p10_floor.drive_once(floor, 3, per_step=False)
    # 11 puts an invoke (the input's and one per node), 10 nodes' writes
    assert 11 <= step["posts_per_invoke"] <= 12, step
    assert each["posts_per_invoke"] >= 21, each
    for out in (step, each):
        assert out["step_ms"] > 0 and out["server_cpu_ms_per_invoke"] > 0, out
    print(
        f"FIGURE P10 floor: posts an invoke {step['posts_per_invoke']} a step, "
        f"{each['posts_per_invoke']} each call"
    )


def test_p10_trace_split_measures_each_phase_between_its_marks() -> None:
    """The split's arithmetic on marks laid out by hand: each phase is the time from the
    previous mark, a put missing a mark is left out, and a request's round trips are its
    own (the next request's are not taken)."""
    marks = [
        ("put", 1000, 9000),
        ("take", 0, 1100),
        ("batch_body", 1150, 1300),
        ("send", 1350, 1360),
        ("put", 20000, 21000),  # no server request inside: left out
        ("put", 30000, 39000),  # its store called after its first round trip: left out
        ("take", 30000, 30100),
        ("batch_body", 30150, 30300),
        ("send", 30350, 30360),
    ]
    server = ["app 1420", "req 1500 8500", "store 1800", "rt 2000 3000 6", "rt 3500 6000 9"]
    server += ["ans 6400", "rt 9500 9900 3"]
    server += ["app 30420", "req 30500 38500", "rt 30600 31000 6", "store 31100"]
    server += ["rt 31500 32000 9", "ans 32400"]
    # get_tuples: one read (split), then one whose request read twice (left out)
    marks += [("get_tuple", 50000, 54000), ("get_tuple", 60000, 64000)]
    server += ["app 50300", "read 50500 51500", "ans 51600", "req 50350 51700"]
    server += ["app 60300", "read 60500 61000", "read 61100 61500", "ans 61600"]
    out = p10_trace.split(marks, server)
    assert out["puts"] == 1
    assert list(out["phases"]) == list(p10_trace.PHASES)
    got = [v[0] for v in out["phases"].values()]
    assert got == [0.1, 0.2, 0.05, 0.07, 0.08, 0.3, 0.2, 1.0, 0.5, 2.5, 0.4, 2.6]
    assert out["reads"] == 1
    assert list(out["read_phases"]) == list(p10_trace.READ_PHASES)
    assert [v[0] for v in out["read_phases"].values()] == [0.3, 0.2, 1.0, 0.1, 2.4]


@pytest.mark.parametrize("where", p10_trace.BUSY_AT)
def test_p10_trace_stand_in_work_lands_where_it_is_asked(
    fresh_postgres_url: str, where: str
) -> None:
    """``--overlap``'s stand-in work (``benchmarks/p10_trace.py``) is spun in every write of
    the real chain, either ahead of its first round trip (counted in "the write planned") or
    once that round trip's statements are sent (counted in the round trip): 20 ms of it, so
    that the phase it lands in is that long and the other phase is not."""
    busy = 20_000
    b = p10_trace.measure(
        2, with_reference=False, postgres_url=fresh_postgres_url, warm_up=1, busy=(busy, where)
    )["botwire"]
    assert b["puts"] >= 20, b
    planned, trip = (b["phases"][name][0] for name in p10_trace.OVERLAP_PHASES)
    assert (planned, trip)[p10_trace.BUSY_AT.index(where)] >= busy, b["phases"]
    assert (planned, trip)[1 - p10_trace.BUSY_AT.index(where)] < busy, b["phases"]


def test_wakeups_times_a_real_idle_server_and_pinned_hand_offs(fresh_postgres_url: str) -> None:
    """``benchmarks/wakeups.py``'s server cases run a real server on the session's PostgreSQL:
    every request succeeds (a refusal raises, never timed) and the three-key writes land; the
    pinned socketpair cases give a figure for one vCPU and for two where there are two."""
    from botwire import Memory
    from botwire_server.storage.postgres import PostgresStore

    noop, write = wakeups.idle_server(fresh_postgres_url, 20)
    for figures in (noop, write):
        assert list(figures) == ["back to back", "after a 3 ms sleep"]
        assert all(math.isfinite(us) and us >= 0 for us in figures.values()), figures
    with PostgresStore(fresh_postgres_url) as store:
        assert Memory("wakeups", store=store).get("latest") == 19
    pinned = wakeups.pinned(50)
    if len(os.sched_getaffinity(0)) >= 2:
        assert list(pinned) == ["on one vCPU", "on two vCPUs"]
        assert all(us > 0 for us in pinned.values()), pinned
    else:
        assert pinned == {}


def test_instructions_counts_a_real_put_under_valgrind(fresh_postgres_url: str) -> None:
    """``benchmarks/instructions.py`` counts a LangGraph-shaped put through the real app on the
    session's PostgreSQL: a positive count per request, and every put landed (a refused
    request raises in the child, and a put that stored nothing would leave the index short)."""
    from botwire import Memory
    from botwire_server.storage.postgres import PostgresStore

    got = instructions.per_request(fresh_postgres_url, "put", 1, 2)
    assert math.isfinite(got) and got > 0, got
    with PostgresStore(fresh_postgres_url) as store:
        index = Memory("lg", store=store).get("t/th/idx/")
    assert len(index) == 3 * instructions.GROUP, len(index)  # 1 + 2 groups, one child each

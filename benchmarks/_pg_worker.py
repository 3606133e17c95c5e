"""One side of a P10-P13 measurement, run as a subprocess by ``benchmarks/pg_reference.py``.

The same code drives both sides so that they do exactly the same work:

- ``ref``: the reference packages (``langgraph-checkpoint-postgres``'s ``PostgresSaver`` on a
  ``psycopg_pool.ConnectionPool``, ``langchain-postgres``'s ``PostgresChatMessageHistory``),
  run by the interpreter of the separate benchmark environment, straight to PostgreSQL;
- ``botwire``: ``BotWireSaver`` and ``BotWireChatHistory`` over HTTP to a ``botwire-server``
  on the same PostgreSQL, run by the project's interpreter; with ``"embedded": true`` (graph
  only) ``BotWireSaver`` on the server's ``PostgresStore`` in the worker's own process.

Protocol (so that the orchestrator can read the server's and the database's CPU around exactly
the measured part): the worker sets up, prints ``ready``, waits for one line on stdin, runs the
measurement and prints one line of JSON. Only the standard library is imported at module level:
each environment has only its own side's packages.

    python _pg_worker.py '{"side": "ref", "task": "graph", "dsn": "...", "invokes": 30}'
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from typing import Any

NODES = 10
NOTE = "x" * 200  # what each node writes: a small, fixed-size state (no growth with N)
MESSAGE = "a chat message of about one hundred characters, as a short user turn would be."


def _no_server(cfg: dict[str, Any], namespace: str) -> tuple[Any, Any]:
    """P10e's and P13e's side: no server, the server's PostgreSQL store in this process, the
    same engine and statements (``Memory(..., store=PostgresStore(dsn))``, as its docstring
    shows); ``"notify": false`` measures it without the watch's notify (docs/benchmarks-log.md)."""
    from botwire import Memory
    from botwire_server.storage.postgres import PostgresStore

    store = PostgresStore(cfg["dsn"], notify=cfg.get("notify", True))
    return store, Memory(namespace, store=store)


# -- LangGraph ---------------------------------------------------------------------------------


def _saver(cfg: dict[str, Any]) -> tuple[Any, Any]:
    """The checkpointer of ``cfg['side']`` and something to close afterwards."""
    if cfg["side"] == "ref":
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        # What langgraph-checkpoint-postgres documents for a pool.
        pool = ConnectionPool(
            cfg["dsn"],
            min_size=1,
            max_size=4,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=True,
        )
        saver = PostgresSaver(pool)  # type: ignore[arg-type]
        saver.setup()
        return saver, pool
    from botwire_langgraph import BotWireSaver

    if cfg.get("embedded"):
        store, memory = _no_server(cfg, cfg.get("namespace", "langgraph"))
        return BotWireSaver(memory), store
    saver = BotWireSaver(url=cfg["url"], namespace=cfg.get("namespace", "langgraph"))
    return saver, None


def _graph(saver: Any) -> Any:
    """A chain of ``NODES`` nodes, START -> n0 -> ... -> n9 -> END, each updating the state."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        step: int
        note: str

    def node(i: int) -> Any:
        def run(state: State) -> dict[str, Any]:
            return {"step": state["step"] + 1, "note": f"node {i}: {NOTE}"}

        return run

    g = StateGraph(State)
    for i in range(NODES):
        g.add_node(f"n{i}", node(i))  # type: ignore[call-overload]
    g.add_edge(START, "n0")
    for i in range(NODES - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{NODES - 1}", END)
    return g.compile(checkpointer=saver)


def task_graph(cfg: dict[str, Any]) -> dict[str, Any]:
    """``invokes`` invocations with ``durability="sync"`` over ``threads`` threads: the time of
    each, the checkpoints written (``put`` calls) and the client's CPU."""
    saver, closer = _saver(cfg)
    puts = [0]
    put = saver.put

    def counting_put(*a: Any, **kw: Any) -> Any:
        puts[0] += 1
        return put(*a, **kw)

    saver.put = counting_put
    app = _graph(saver)
    run_id = uuid.uuid4().hex[:8]
    threads = int(cfg.get("threads", 10))

    def invoke(i: int) -> None:
        config = {"configurable": {"thread_id": f"{cfg['side']}-{run_id}-{i % threads}"}}
        out = app.invoke({"step": 0, "note": ""}, config, durability="sync")
        assert out["step"] == NODES, out

    invoke(-1)  # warm-up: connections, prepared statements, the first thread
    puts[0] = 0
    _ready()
    times = []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for i in range(int(cfg["invokes"])):
        t = time.perf_counter()
        invoke(i)
        times.append((time.perf_counter() - t) * 1000)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    if closer is not None:
        closer.close()
    return {
        "invoke_ms": times,
        "median_invoke_ms": statistics.median(times),
        "step_ms": statistics.median(times) / NODES,
        "checkpoints": puts[0],
        "client_cpu_s": cpu,
        "wall_s": wall,
    }


# -- LangChain chat history ------------------------------------------------------------------

TABLE = "chat_history"


def _history(cfg: dict[str, Any], session: str) -> tuple[Any, Any]:
    if cfg["side"] == "ref":
        import psycopg
        from langchain_postgres import PostgresChatMessageHistory

        conn = psycopg.connect(cfg["dsn"])
        return PostgresChatMessageHistory(TABLE, session, sync_connection=conn), conn
    from botwire_langchain import BotWireChatHistory

    if cfg.get("embedded"):
        store, memory = _no_server(cfg, "chat")
        return BotWireChatHistory(session, memory=memory), store
    return BotWireChatHistory(session, url=cfg["url"], namespace="chat"), None


def _setup_chat(cfg: dict[str, Any]) -> None:
    if cfg["side"] == "ref":
        import psycopg
        from langchain_postgres import PostgresChatMessageHistory

        with psycopg.connect(cfg["dsn"]) as conn:
            PostgresChatMessageHistory.create_tables(conn, TABLE)


def _messages(n: int, start: int = 0) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage

    kinds = (HumanMessage, AIMessage)
    return [kinds[i % 2](content=f"{i}: {MESSAGE}") for i in range(start, start + n)]


def task_chat_one(cfg: dict[str, Any]) -> dict[str, Any]:
    """A session prefilled with ``prefill`` messages, then ``adds`` single ``add_messages``."""
    _setup_chat(cfg)
    session = str(uuid.uuid4())  # langchain-postgres requires a UUID
    history, conn = _history(cfg, session)
    prefill = int(cfg["prefill"])
    history.add_messages(_messages(prefill))
    history.add_messages(_messages(1, prefill))  # warm-up
    _ready()
    times = []
    cpu0 = time.process_time()
    for i in range(int(cfg["adds"])):
        (msg,) = _messages(1, prefill + 1 + i)
        t = time.perf_counter()
        history.add_messages([msg])
        times.append((time.perf_counter() - t) * 1000)
    cpu = time.process_time() - cpu0
    total = len(history.messages)
    if conn is not None:
        conn.close()
    return {
        "add_ms": times,
        "median_add_ms": statistics.median(times),
        "client_cpu_s": cpu,
        "messages": total,
        "expected": prefill + 1 + int(cfg["adds"]),
    }


def task_chat_fill(cfg: dict[str, Any]) -> dict[str, Any]:
    """Storage per chat message: ``messages`` single ``add_messages`` (one message per call, as
    a chat turn adds them) spread over ``sessions`` sessions; the orchestrator reads the table
    bytes around it."""
    _setup_chat(cfg)
    sessions = [str(uuid.uuid4()) for _ in range(int(cfg["sessions"]))]
    pairs = [_history(cfg, s) for s in sessions]
    pairs[0][0].messages  # noqa: B018  (connect before the start line)
    _ready()
    n = int(cfg["messages"])
    for i in range(n):
        history = pairs[i % len(pairs)][0]
        history.add_messages(_messages(1, i))
    total = sum(len(h.messages) for h, _ in pairs)
    for _, conn in pairs:
        if conn is not None:
            conn.close()
    return {"messages": total, "expected": n}


def _adder(cfg: dict[str, Any], session: str, worker: int, barrier: Any, out: Any) -> None:
    history, conn = _history(cfg, session)
    history.messages  # noqa: B018  (connect and warm up before the start line)
    barrier.wait()
    cpu0 = time.process_time()
    for i in range(int(cfg["adds"])):
        history.add_messages([_messages(1, worker * 1000 + i)[0]])
    out.put(time.process_time() - cpu0)
    if conn is not None:
        conn.close()


def task_chat_concurrent(cfg: dict[str, Any]) -> dict[str, Any]:
    """``procs`` forked processes each add ``adds`` messages, one at a time, to ONE session."""
    _setup_chat(cfg)
    session = str(uuid.uuid4())
    procs = int(cfg["procs"])
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    children = [
        ctx.Process(target=_adder, args=(cfg, session, w, barrier, out)) for w in range(procs)
    ]
    for c in children:
        c.start()
    _ready()
    barrier.wait()
    t = time.perf_counter()
    cpus = [out.get(timeout=300) for _ in children]
    wall = time.perf_counter() - t
    for c in children:
        c.join(30)
        assert c.exitcode == 0, f"adder exited with {c.exitcode}"
    history, conn = _history(cfg, session)
    total = len(history.messages)
    if conn is not None:
        conn.close()
    adds = procs * int(cfg["adds"])
    return {
        "adds": adds,
        "wall_s": wall,
        "adds_per_s": adds / wall,
        "client_cpu_s": sum(cpus),
        "messages": total,
        "expected": adds,
    }


# -- protocol --------------------------------------------------------------------------------


def _ready() -> None:
    """Tell the orchestrator setup is done and wait for its go (it reads CPU counters now)."""
    print("ready", flush=True)
    if not sys.stdin.readline():
        raise SystemExit("orchestrator went away")


TASKS = {
    "graph": task_graph,
    "chat_one": task_chat_one,
    "chat_concurrent": task_chat_concurrent,
    "chat_fill": task_chat_fill,
}


def main() -> int:
    cfg = json.loads(sys.argv[1])
    result = TASKS[cfg["task"]](cfg)
    result["python"] = sys.version.split()[0]
    result["pid"] = os.getpid()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

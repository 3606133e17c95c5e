"""``BotWireSaver`` on PostgreSQL without a server (``Memory(ns, store=PostgresStore(url))``,
docs/langgraph.md "Without a server"): LangGraph's own conformance suite in full through the
async and the sync methods, and a graph resumed by a second process from the same database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import ProgressCallbacks
from support.postgres import postgres_url as _postgres_url_fixture

from botwire import Memory
from botwire_langgraph import BotWireSaver
from botwire_server.storage.postgres import PostgresStore

from .test_conformance import ALL_CAPABILITIES, SUITE_SIZE, SyncPathSaver

postgres_url = _postgres_url_fixture()


@pytest.mark.parametrize("saver_cls", [BotWireSaver, SyncPathSaver], ids=["async", "sync"])
def test_conformance_suite_passes_without_a_server(
    postgres_url: str, namespace: str, saver_cls: type[BotWireSaver]
) -> None:
    store = PostgresStore(postgres_url)

    @checkpointer_test(name=f"{saver_cls.__name__}-postgres")
    async def botwire_saver() -> AsyncIterator[BotWireSaver]:
        async with saver_cls(Memory(namespace, store=store)) as saver:
            yield saver

    try:
        report = asyncio.run(validate(botwire_saver, progress=ProgressCallbacks.quiet()))
    finally:
        store.close()
    failures = {n: r.failures for n, r in report.results.items() if not r.passed}
    assert failures == {}, failures
    assert set(report.results) == ALL_CAPABILITIES
    assert sum(r.tests_passed for r in report.results.values()) == SUITE_SIZE


_GRAPH = textwrap.dedent(
    """
    import sys
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    from botwire import Memory
    from botwire_langgraph import BotWireSaver
    from botwire_server.storage.postgres import PostgresStore

    url, ns, mode = sys.argv[1:4]

    class State(TypedDict):
        steps: list[str]

    def node(name):
        def run(state):
            if mode == "crash" and name == "c":
                raise SystemExit(3)  # the platform stops the run here
            return {"steps": state["steps"] + [name]}
        return run

    g = StateGraph(State)
    for n in "abcd":
        g.add_node(n, node(n))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", "d")
    g.add_edge("d", END)
    with PostgresStore(url) as store:
        app = g.compile(checkpointer=BotWireSaver(Memory(ns, store=store)))
        config = {"configurable": {"thread_id": "t1"}}
        if mode == "crash":
            app.invoke({"steps": []}, config, durability="sync")
        else:
            print(app.invoke(None, config)["steps"])
    """
)


def test_a_run_stopped_mid_graph_resumes_in_a_new_process(
    postgres_url: str, namespace: str
) -> None:
    def run(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _GRAPH, postgres_url, namespace, mode],
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = run("crash")
    assert first.returncode == 3, first.stderr
    second = run("resume")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "['a', 'b', 'c', 'd']"

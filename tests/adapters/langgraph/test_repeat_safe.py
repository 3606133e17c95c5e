"""``put`` and ``put_writes`` are sent repeat-safe (no Idempotency-Key, so the server keeps no
record of them): a retry after a lost answer applies them again, and every reader must still
see each checkpoint and each write once. Against a real server behind a relay that loses
answers after the server applied the request."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from support.faultproxy import FaultProxy
from support.repeat_safe import records, served_on_file
from support.server import ServerProcess

from botwire import Memory
from botwire_langgraph import BotWireSaver
from botwire_langgraph import _keys as K

from .test_saver import _cfg, _put


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    with served_on_file(tmp_path_factory, "repeat-safe") as both:
        yield both


def test_puts_and_writes_applied_twice_read_once(
    served: tuple[ServerProcess, Path], namespace: str
) -> None:
    server, db = served
    with FaultProxy(server.port) as proxy, Memory(namespace, url=proxy.url) as m:
        saver = BotWireSaver(m, writes_linger=0)  # each put_writes its own request
        first = _put(saver, "t", step=1)
        proxy.set_script(["drop_after"])  # applied, answer lost, retried: applied twice
        second = _put(saver, "t", parent=first, step=2)
        assert proxy.counts["drop_after"] == 1
        proxy.set_script(["drop_after"])
        saver.put_writes(second, [("a", 1), ("b", 2)], task_id="task-1")
        saver.put_writes(second, [("a", 3)], task_id="task-2")
        assert proxy.counts["drop_after"] == 2

        # the stored layout does hold the repeats: the second id twice in the thread's index
        raw = Memory(namespace, url=server.url)
        cid = second["configurable"]["checkpoint_id"]
        index = raw.get(K.index_key("t", ""))
        assert index is not None and index.count(cid) == 2
        writes = raw.get(K.writes_key("t", "", cid))
        assert writes is not None and len(writes) == 3  # task-1's item twice
        got = saver.get_tuple(_cfg("t"))
        assert got is not None
        assert (
            got.config["configurable"]["checkpoint_id"] == second["configurable"]["checkpoint_id"]
        )
        assert got.pending_writes == [("task-1", "a", 1), ("task-1", "b", 2), ("task-2", "a", 3)]
        ids = [t.config["configurable"]["checkpoint_id"] for t in saver.list(_cfg("t"))]
        assert ids == [
            second["configurable"]["checkpoint_id"],
            first["configurable"]["checkpoint_id"],
        ]
        assert len(list(saver.list(_cfg("t"), limit=2))) == 2
        assert records(db, namespace) == 0  # nothing keyed, nothing recorded


def test_writes_riding_with_a_put_applied_twice_read_once(
    served: tuple[ServerProcess, Path], namespace: str
) -> None:
    """A task's writes wait for the next put and go in its batch; that batch's answer is lost
    and it is applied twice: the parent's writes and the new checkpoint still read once."""
    server, db = served
    with FaultProxy(server.port) as proxy, Memory(namespace, url=proxy.url) as m:
        saver = BotWireSaver(m, writes_linger=1)
        first = _put(saver, "t", step=1)
        sent = sum(proxy.counts.values())  # requests so far
        saver.put_writes(first, [("a", 1), ("b", 2)], task_id="task-1")
        saver.put_writes(first, [("a", 3)], task_id="task-2")
        proxy.set_script(["drop_after"])
        second = _put(saver, "t", parent=first, step=2)
        assert proxy.counts["drop_after"] == 1
        assert sum(proxy.counts.values()) == sent + 2  # the put and its retry, nothing else

        raw = Memory(namespace, url=server.url)
        parent_id = first["configurable"]["checkpoint_id"]
        writes = raw.get(K.writes_key("t", "", parent_id))
        assert writes is not None and len(writes) == 4  # both items, twice
        got = saver.get_tuple(first)
        assert got is not None
        assert got.pending_writes == [("task-1", "a", 1), ("task-1", "b", 2), ("task-2", "a", 3)]
        latest = saver.get_tuple(_cfg("t"))
        assert latest is not None and latest.config == second
        assert records(db, namespace) == 0


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def _graph(saver: BotWireSaver) -> Any:
    g = StateGraph(State)
    names = [f"n{i}" for i in range(6)]
    for name in names:
        g.add_node(name, lambda state, name=name: {"steps": [name]})
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g.compile(checkpointer=saver)


def test_a_graph_whose_answers_are_lost_ends_as_one_that_lost_none(
    served: tuple[ServerProcess, Path], namespace: str
) -> None:
    """A 6-node graph, durability "sync", with a third of the saver's answers lost after the
    server applied the request: the same final state and history as a clean run."""
    server, _ = served
    runs = {}
    for label, faults in (("clean", {}), ("lossy", {"drop_after": 0.33})):
        with (
            FaultProxy(server.port, faults=faults) as proxy,
            Memory(f"{namespace}-{label}", url=proxy.url) as m,
        ):
            graph = _graph(BotWireSaver(m))
            cfg: Any = {"configurable": {"thread_id": "thread"}}
            out = graph.invoke({"steps": []}, cfg, durability="sync")
            history = [s.values for s in graph.get_state_history(cfg)]
            runs[label] = (out, history, proxy.counts["drop_after"])
    assert runs["lossy"][2] > 0
    assert runs["lossy"][:2] == runs["clean"][:2]
    assert runs["clean"][0] == {"steps": [f"n{i}" for i in range(6)]}

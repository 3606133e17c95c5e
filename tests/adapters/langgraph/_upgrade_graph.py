"""The graph of the layout-upgrade test (``test_upgrade.py``) and of the script that made its
fixture (``data/make_old_layout.py``): two nodes that grow a list channel (stored as blobs), set
a string and count invocations (small primitives)."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    log: Annotated[list[str], operator.add]
    note: str
    count: int


def _a(state: State) -> dict[str, Any]:
    n = state.get("count", 0) + 1
    return {"log": [f"a{n}"], "note": f"note {n}", "count": n}


def _b(state: State) -> dict[str, Any]:
    return {"log": [f"b{state['count']}"]}


def build(saver: Any) -> Any:
    g = StateGraph(State)
    g.add_node("a", _a)
    g.add_node("b", _b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g.compile(checkpointer=saver)


def run_id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def config(thread_id: str, run: int) -> Any:
    return {"configurable": {"thread_id": thread_id, "run_id": run_id(run)}}

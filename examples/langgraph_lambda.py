"""A LangGraph workflow on AWS Lambda that survives the 15-minute limit.

Each invocation runs steps until the function is about to time out, then returns; LangGraph
has checkpointed every finished step in botwire, so the next invocation (a fresh container, a
retry, a Step Functions loop...) resumes the same ``thread_id`` where the last one stopped.

Deploy with ``pip install "botwire[langgraph]"`` and ``BOTWIRE_URL`` (and ``BOTWIRE_TOKEN``)
pointing at your botwire server. Try it locally, one invocation per process::

    export BOTWIRE_URL=sqlite:////tmp/demo.db   # four slashes: an absolute path
    python examples/langgraph_lambda.py report-7   # {"status": "in_progress", "next": ["draft"]}
    python examples/langgraph_lambda.py report-7   # {"status": "in_progress", "next": ["publish"]}
    python examples/langgraph_lambda.py report-7   # {"status": "done", "result": [...]}

The local run fakes Lambda's clock so that each invocation has time for two of the five steps.
"""

from __future__ import annotations

import itertools
import json
import operator
import sys
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from botwire import Memory
from botwire_langgraph import BotWireSaver

SAFETY_MARGIN_MS = 60_000  # stop starting new steps with less than a minute left


class Report(TypedDict):
    topic: str
    done: Annotated[list[str], operator.add]


def step(name: str) -> Any:
    def run(state: Report) -> dict[str, list[str]]:
        # the real work goes here: call a model, a tool, an API...
        return {"done": [f"{name}: {state['topic']}"]}

    return run


builder = StateGraph(Report)
names = ["research", "outline", "draft", "review", "publish"]
for name in names:
    builder.add_node(name, step(name))
builder.add_edge(START, names[0])
for a, b in itertools.pairwise(names):
    builder.add_edge(a, b)
builder.add_edge(names[-1], END)

# Created once per container and reused by warm invocations.
graph = builder.compile(checkpointer=BotWireSaver(Memory("report-workflows")))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config: Any = {"configurable": {"thread_id": event["job_id"]}}
    state = graph.get_state(config)
    if state.created_at is not None and not state.next:
        return {"status": "done", "result": state.values["done"]}  # already finished
    # first invocation: start with the input; later ones: None resumes from the checkpoint
    inputs = None if state.created_at is not None else {"topic": event["topic"], "done": []}
    for _update in graph.stream(inputs, config, stream_mode="updates", durability="sync"):
        # every finished step is already stored in botwire when we get here
        if context.get_remaining_time_in_millis() < SAFETY_MARGIN_MS:
            return {"status": "in_progress", "next": list(graph.get_state(config).next)}
    return {"status": "done", "result": graph.get_state(config).values["done"]}


class LocalContext:
    """Lambda's context object for a local run: 2.5 minutes left, and each step takes one."""

    def __init__(self) -> None:
        self.remaining_ms = 150_000

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms -= 60_000
        return self.remaining_ms


if __name__ == "__main__":
    job = sys.argv[1] if len(sys.argv) > 1 else "report-1"
    print(json.dumps(lambda_handler({"job_id": job, "topic": "kettles"}, LocalContext())))

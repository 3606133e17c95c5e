"""A CrewAI researcher whose notes survive between invocations (DESIGN §0's CrewAI example).

Every run is one invocation — on Lambda or Cloud Run the next one may be a fresh instance.
The agent first recalls its notes on the topic; only when there are none does it search and
``remember`` them. Its tools come from ``memory_tools("research-crew")`` exactly as in the
original product's example, and ``memory=True`` (CrewAI's own memory) is routed to botwire
with ``use_botwire_storage`` so it does not live in a local LanceDB directory either.

Set ``BOTWIRE_URL`` (+ ``BOTWIRE_TOKEN``) to your botwire server and ``OPENAI_API_KEY`` for a
real model. Run offline with a scripted model (``BOTWIRE_EXAMPLE_FAKE_MODEL=1``)::

    BOTWIRE_EXAMPLE_FAKE_MODEL=1 python examples/crewai_research_crew.py "perovskite cells"
    BOTWIRE_EXAMPLE_FAKE_MODEL=1 python examples/crewai_research_crew.py "perovskite cells"

The first run researches and remembers; the second answers from memory. (CrewAI's own
``memory=True`` needs an embedder — OpenAI's by default — so the scripted run logs that it
could not save to it; the memory tools do not need one.)
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

# CrewAI phones home and writes under $HOME unless told otherwise (set before importing it).
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool

from botwire import Memory
from botwire.memory import memory_tools
from botwire_crewai import use_botwire_storage

NAMESPACE = os.environ.get("BOTWIRE_EXAMPLE_NAMESPACE", "research-crew")


@tool("web_search")
def web_search(query: str) -> str:
    """Search the web and return a short summary of what was found."""
    # A stand-in: plug in SerperDevTool, a search API, ... here.
    return f"Top result for {query!r}: efficiency records keep rising (source: example.org)."


other_tools = [web_search]


class ScriptedResearcher(BaseLLM):
    """An offline stand-in for the model: follows the recall → search → remember routine."""

    topic: str

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        if response_model is not None or not isinstance(messages, list):
            return "{}"  # CrewAI's memory analysis; it falls back to defaults
        said = [
            str(m.get("content"))
            for m in messages
            if isinstance(m, dict) and m.get("role") == "assistant"
        ]
        key = f"notes:{self.topic}"
        if not said:
            return _act("recall", {"key": key})
        action = re.search(r"Action: (\w+)", said[-1])
        observed = said[-1].split("Observation: ", 1)[-1].strip()
        if action and action.group(1) == "recall" and observed.startswith("Nothing is stored"):
            return _act("web_search", {"query": self.topic})
        if action and action.group(1) == "web_search":
            return _act(
                "remember", {"key": key, "value": {"summary": observed, "sources": ["example.org"]}}
            )
        if action and action.group(1) == "recall":
            return _final(f"From my notes: {json.loads(observed)['summary']}")
        return _final(f"Researched {self.topic} and saved my notes.")


def _act(tool_name: str, args: dict[str, Any]) -> str:
    return f"Thought: use {tool_name}\nAction: {tool_name}\nAction Input: {json.dumps(args)}"


def _final(answer: str) -> str:
    return f"Thought: I now know the final answer\nFinal Answer: {answer}"


def research(topic: str) -> str:
    """One invocation: build the crew, run it, return the answer."""
    llm: Any = (
        ScriptedResearcher(model="scripted", topic=topic)
        if os.environ.get("BOTWIRE_EXAMPLE_FAKE_MODEL")
        else "gpt-4o-mini"
    )
    researcher = Agent(
        role="Researcher",
        goal="Answer research questions without redoing work",
        backstory="You keep notes in long-term memory and reuse them.",
        llm=llm,
        tools=memory_tools(NAMESPACE) + other_tools,
        memory=True,
    )
    task = Task(
        description=f"Research {topic!r}. First recall 'notes:{topic}'. If there are no notes, "
        f"search the web and remember what you found under 'notes:{topic}'.",
        expected_output="A one-sentence answer.",
        agent=researcher,
    )
    return str(Crew(agents=[researcher], tasks=[task]).kickoff().raw)


def main(argv: list[str]) -> None:
    topic = argv[1] if len(argv) > 1 else "perovskite solar cells"
    use_botwire_storage(f"{NAMESPACE}-crewai-memory")  # memory=True → botwire, not LanceDB
    answer = research(topic)
    with Memory(NAMESPACE) as memory:
        keys = memory.list()
    print(json.dumps({"answer": answer, "keys": keys}))


if __name__ == "__main__":
    main(sys.argv)

"""Runs in a fresh Python process (a simulated next serverless invocation); prints JSON.

    python crewai_worker.py recall TOOLS_NS MEM_NS  # an agent recalls 'findings'; crew memory
    python crewai_worker.py save MEM_NS PROCS N     # PROCS forked writers x N save() calls each

``save`` imports CrewAI once and forks its writers (importing CrewAI takes seconds); each writer
opens its own botwire client after the fork and they all start together.

The backend comes from BOTWIRE_URL, exactly as in production.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import sys
from typing import Any

from crewai import Agent, Crew, Task
from crewai.memory import Memory as CrewMemory
from crewai.memory import MemoryRecord
from crewai_helpers import FINAL, ScriptedLLM, hash_embedder, react

from botwire_crewai import BotWireStorage, memory_tools


def recall_policy(messages: list[dict[str, Any]]) -> str:
    """Call recall('findings') once, then answer with what the observation said."""
    said = [str(m.get("content")) for m in messages if m.get("role") == "assistant"]
    found = re.search(r"Observation: (.*)", said[-1]) if said else None
    if found is None:
        return react("recall", '{"key": "findings"}')
    return FINAL.format(found.group(1))


def recall(tools_ns: str, mem_ns: str) -> dict[str, Any]:
    llm = ScriptedLLM(model="scripted", policy=recall_policy)
    agent = Agent(
        role="Researcher",
        goal="Reuse earlier findings",
        backstory="Careful.",
        llm=llm,
        tools=memory_tools(tools_ns),
    )
    task = Task(
        description="What did we find last time?", expected_output="the findings", agent=agent
    )
    answer = Crew(agents=[agent], tasks=[task]).kickoff().raw
    crew_memory = CrewMemory(storage=BotWireStorage(mem_ns), embedder=hash_embedder, llm=llm)
    matches = crew_memory.recall("perovskite efficiency record", depth="shallow")
    return {"answer": answer, "crew_recall": [m.record.content for m in matches]}


def _writer(mem_ns: str, tag: str, n: int, start: Any) -> None:
    storage = BotWireStorage(mem_ns)
    start.wait()
    for i in range(n):
        storage.save(
            [
                MemoryRecord(
                    id=f"{tag}-{i}",
                    content=f"note {i} from {tag}",
                    embedding=hash_embedder([f"note {i} {tag}"])[0],
                )
            ]
        )
    storage.close()


def save(mem_ns: str, procs: int, n: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(procs)
    workers = [ctx.Process(target=_writer, args=(mem_ns, f"w{i}", n, start)) for i in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    return {"exitcodes": [w.exitcode for w in workers]}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "recall":
        out = recall(sys.argv[2], sys.argv[3])
    else:
        out = save(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    print("RESULT " + json.dumps(out))

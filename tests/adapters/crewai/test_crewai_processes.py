"""Serverless, honestly: what one process stores, a fresh process sees; writers lose nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from crewai import Agent, Crew, Task
from crewai.memory import Memory as CrewMemory
from crewai_helpers import FINAL, ScriptedLLM, hash_embedder, react
from support.adapters import start_worker, worker_result

from botwire import Memory
from botwire_crewai import BotWireStorage, memory_tools

WORKER = Path(__file__).with_name("crewai_worker.py")


def run_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return start_worker(WORKER, env, *args)


def result_of(proc: subprocess.Popen[str]) -> Any:
    return worker_result(proc, timeout=240)


def test_fresh_process_sees_what_an_agent_stored(
    memory_url: str, ns: str, subprocess_env: dict[str, str]
) -> None:
    tools_ns, mem_ns = f"{ns}-tools", f"{ns}-mem"
    # Invocation 1 (this process): a real crew stores findings with the tool and, through
    # CrewAI's own memory, the task output.
    llm = ScriptedLLM(
        model="scripted",
        responses=[
            react("remember", '{"key": "findings", "value": "perovskite record: 33.9 percent"}'),
            FINAL.format("New perovskite efficiency record is 33.9 percent."),
        ],
    )
    storage = BotWireStorage(mem_ns, url=memory_url)
    crew_memory = CrewMemory(storage=storage, embedder=hash_embedder, llm=llm)
    agent = Agent(
        role="Researcher",
        goal="Research",
        backstory="Careful.",
        llm=llm,
        tools=memory_tools(tools_ns, url=memory_url),
    )
    task = Task(
        description="Find the perovskite efficiency record.", expected_output="a fact", agent=agent
    )
    Crew(agents=[agent], tasks=[task], memory=crew_memory).kickoff()
    crew_memory.drain_writes()
    assert Memory(tools_ns, url=memory_url).get("findings") == ("perovskite record: 33.9 percent")
    assert storage.count() >= 1

    # Invocation 2: a fresh interpreter, configured only through BOTWIRE_URL.
    out = result_of(run_worker(subprocess_env, "recall", tools_ns, mem_ns))
    assert out["answer"] == "perovskite record: 33.9 percent"
    assert any("33.9 percent" in c for c in out["crew_recall"]), out


def test_concurrent_processes_lose_no_record(
    memory_url: str, ns: str, subprocess_env: dict[str, str]
) -> None:
    assert result_of(run_worker(subprocess_env, "save", ns, "4", "25")) == {
        "exitcodes": [0, 0, 0, 0]
    }
    storage = BotWireStorage(ns, url=memory_url)
    ids = {r.id for r in storage.list_records(limit=1000)}
    assert ids == {f"w{w}-{i}" for w in range(4) for i in range(25)}
    assert storage.count() == 100

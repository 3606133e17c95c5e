"""A tool-calling LangGraph agent run by the resume test, one invocation per *fresh process*:

    python _resumable_agent.py URL NAMESPACE THREAD_ID RECORD_FILE DURABILITY [crash|crash-watched]

Every tool and every model call appends a line to ``record_file`` when it completes. With
``crash``, the ``reserve_shipping`` tool (step 3, run in parallel with ``charge_card``) waits until
``charge_card``'s result is stored as a pending write and then kills the process with
``os._exit(17)``, as a Lambda timeout would. ``crash`` asks the graph's own saver (whose reads
send the writes that wait in it first); ``crash-watched`` asks a second saver of its own, so
``charge_card``'s writes must have reached the server on their own while its sibling still ran
(the saver's ``writes_linger`` flush). Without either the script resumes the thread from its
checkpoint (``invoke(None)``) or starts it. It prints the final answer as JSON.

The chat model is LangChain's ``GenericFakeChatModel`` with a fixed script of tool calls; it
picks the scripted reply by how many tool results the conversation already holds, so a fresh
process carries on where the conversation is instead of replaying the script from the start.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Send

from botwire import Memory
from botwire_langgraph import BotWireSaver

MEMORY_URL, NAMESPACE, THREAD_ID, RECORD, DURABILITY = sys.argv[1:6]
MODE = sys.argv[6] if len(sys.argv) > 6 else ""
CRASH = MODE in ("crash", "crash-watched")
CONFIG: Any = {"configurable": {"thread_id": THREAD_ID}}


def record(line: str) -> None:
    with open(RECORD, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"call-{name}", "type": "tool_call"}


SCRIPT = {  # tool results so far -> the model's reply
    0: AIMessage("", tool_calls=[call("lookup_order", order_id="42")]),
    1: AIMessage("", tool_calls=[call("check_stock", sku="kettle")]),
    2: AIMessage(
        "", tool_calls=[call("charge_card", amount=30), call("reserve_shipping", sku="kettle")]
    ),
    4: AIMessage("", tool_calls=[call("send_email", to="alice@example.com")]),
    5: AIMessage("Order 42 is paid, reserved and confirmed."),
}


class ScriptedModel(GenericFakeChatModel):
    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        done = sum(isinstance(m, ToolMessage) for m in messages)
        record(f"model:{done}")
        return ChatResult(generations=[ChatGeneration(message=SCRIPT[done])])


@tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    record("lookup_order")
    return f"order {order_id}: 1 kettle"


@tool
def check_stock(sku: str) -> str:
    """Check stock for a product."""
    record("check_stock")
    return f"{sku}: 3 in stock"


@tool
def charge_card(amount: int) -> str:
    """Charge the customer's card."""
    record("charge_card")
    return f"charged {amount}"


def _charge_is_stored() -> bool:
    tup = (watcher if MODE == "crash-watched" else saver).get_tuple(CONFIG)
    return tup is not None and any(
        channel == "messages" and any(getattr(m, "name", None) == "charge_card" for m in value)
        for _, channel, value in tup.pending_writes or []
    )


@tool
def reserve_shipping(sku: str) -> str:
    """Reserve a shipping slot."""
    if CRASH:
        deadline = time.monotonic() + 30
        while not _charge_is_stored():  # let the sibling task finish and be checkpointed
            if time.monotonic() > deadline:
                record("TIMEOUT waiting for charge_card's pending write")
                os._exit(3)
            time.sleep(0.05)
        os._exit(17)  # the Lambda runs out of time here
    record("reserve_shipping")
    return f"{sku}: slot booked"


@tool
def send_email(to: str) -> str:
    """Send a confirmation email."""
    record("send_email")
    return f"mailed {to}"


TOOLS = {t.name: t for t in (lookup_order, check_stock, charge_card, reserve_shipping, send_email)}
model = ScriptedModel(messages=iter(()))


def agent(state: MessagesState) -> dict[str, Any]:
    return {"messages": [model.bind_tools(list(TOOLS.values())).invoke(state["messages"])]}


def route(state: MessagesState) -> Any:
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and last.tool_calls:
        return [Send("tools", tc) for tc in last.tool_calls]  # one task per tool call
    return END


def run_tool(tool_call: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [TOOLS[tool_call["name"]].invoke(tool_call)]}


builder = StateGraph(MessagesState)
builder.add_node("agent", agent)
builder.add_node("tools", run_tool)
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", route, ["tools", END])
builder.add_edge("tools", "agent")

saver = BotWireSaver(Memory(NAMESPACE, url=MEMORY_URL))
watcher = BotWireSaver(Memory(NAMESPACE, url=MEMORY_URL))  # another reader of the thread
graph = builder.compile(checkpointer=saver)

if __name__ == "__main__":
    started = saver.get_tuple(CONFIG) is not None
    inputs = None if started else {"messages": [HumanMessage("Ship order 42, please.")]}
    result = graph.invoke(inputs, CONFIG, durability=DURABILITY)  # type: ignore[arg-type]
    print(json.dumps({"resumed": started, "answer": result["messages"][-1].content}))

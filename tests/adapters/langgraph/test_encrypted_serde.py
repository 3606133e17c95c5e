"""An encrypting serde (LangGraph's ``EncryptedSerializer``) sees every value the saver stores,
as in ``InMemorySaver``: primitive pending writes, small channel values kept in the record,
the checkpoint body and the metadata too, not only blobs. A real graph runs against each
backend; then every stored key is read raw through ``Memory`` and searched for the secrets."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import operator
import os
import zlib
from pathlib import Path
from typing import Annotated, Any, TypedDict
from uuid import uuid4

from langgraph.checkpoint.serde.base import CipherProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from botwire import Memory
from botwire_langgraph import BotWireSaver, _serde

SSN = "SSN-123-45-6789"  # a short str: kept in the checkpoint record
NOTE = "NOTE-diagnosis-f32.1"  # inside a long str: a blob
ITEM = "ITEM-card-4111111111111111"  # in a list: a blob
QUESTION = "QUESTION-confirm-transfer"  # the interrupt's value
PIN = "PIN-9876"  # the resume value: a primitive pending write
PATIENT = "PATIENT-Jane-Roe"  # metadata from the run's config
SECRETS = (SSN, NOTE, ITEM, QUESTION, PIN, PATIENT)
_KEY = b"0123456789abcdef"


class _StreamCipher:
    """A tiny CipherProtocol for when pycryptodome is absent: shake-256 keystream, fresh nonce."""

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return "test-stream", nonce + self._xor(nonce, plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "test-stream", ciphername
        return self._xor(ciphertext[:12], ciphertext[12:])

    @staticmethod
    def _xor(nonce: bytes, data: bytes) -> bytes:
        stream = hashlib.shake_256(_KEY + nonce).digest(len(data))
        return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def _encrypted() -> EncryptedSerializer:
    try:
        return EncryptedSerializer.from_pycryptodome_aes(key=_KEY)
    except ImportError:
        cipher: CipherProtocol = _StreamCipher()
        return EncryptedSerializer(cipher)


class State(TypedDict, total=False):
    ssn: str
    notes: str
    items: Annotated[list[str], operator.add]
    answer: str


def _collect(state: State) -> dict[str, Any]:
    return {"ssn": SSN, "notes": "x" * 1100 + NOTE, "items": [ITEM]}


def _confirm(state: State) -> dict[str, Any]:
    return {"answer": interrupt(QUESTION)}


def _graph(saver: BotWireSaver) -> Any:
    g = StateGraph(State)
    g.add_node("collect", _collect)
    g.add_node("confirm", _confirm)
    g.add_edge(START, "collect")
    g.add_edge("collect", "confirm")
    g.add_edge("confirm", END)
    return g.compile(checkpointer=saver)


def _raw_text(memory: Memory) -> str:
    """Every key and stored string, with deflated ``{"z": ...}`` parts inflated and the bytes
    of ``[type, base64]`` serde pairs decoded (the default serde's msgpack shows its strings
    there, so a serde that does not encrypt is caught too)."""
    out: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            if isinstance(obj.get("z"), str):
                walk(json.loads(zlib.decompress(base64.b64decode(obj["z"]))))
            for k, v in obj.items():
                walk(k)
                walk(v)
        elif isinstance(obj, list):
            if len(obj) == 2 and all(isinstance(v, str) for v in obj):
                with contextlib.suppress(binascii.Error):
                    out.append(base64.b64decode(obj[1], validate=True).decode("latin-1"))
            for v in obj:
                walk(v)
        elif isinstance(obj, str):
            out.append(obj)

    for key in memory.list(""):
        out.append(key)
        walk(memory.get(key))
    return "\n".join(out)


def _run(saver: BotWireSaver, thread: str) -> tuple[Any, Any, str, str]:
    """Run to the interrupt, then resume with the PIN; each invoke a run of its own."""
    graph = _graph(saver)
    first, second = str(uuid4()), str(uuid4())
    cfg: Any = {"configurable": {"thread_id": thread}, "metadata": {"who": PATIENT}}

    def run(run_id: str) -> dict[str, Any]:  # LangGraph puts configurable run_id in metadata
        return {**cfg, "configurable": {"thread_id": thread, "run_id": run_id}}

    graph.invoke({"ssn": ""}, run(first))
    assert graph.get_state(cfg).next == ("confirm",)
    graph.invoke(Command(resume=PIN), run(second))
    return graph, cfg, first, second


def _check_final(graph: Any, cfg: Any) -> None:
    state = graph.get_state(cfg)
    assert state.next == ()
    assert state.values == {"ssn": SSN, "notes": "x" * 1100 + NOTE, "items": [ITEM], "answer": PIN}


def test_an_encrypting_serde_leaves_no_secret_in_plaintext(memory: Memory) -> None:
    saver = BotWireSaver(memory, serde=_encrypted())
    graph, cfg, first, second = _run(saver, "t1")
    _check_final(graph, cfg)
    dump = _raw_text(memory)
    assert [s for s in SECRETS if s in dump] == []

    # reads decrypt everything, in this process and in a fresh saver (a cold read)
    fresh = _graph(BotWireSaver(memory, serde=_encrypted()))
    _check_final(fresh, cfg)
    history = list(fresh.get_state_history(cfg))
    assert len(history) >= 4 and all(h.metadata.get("who") == PATIENT for h in history)
    assert [t.metadata.get("who") for t in saver.list(cfg, filter={"who": PATIENT})] == [
        h.metadata.get("who") for h in history
    ]  # metadata filters run on the decrypted metadata
    assert list(saver.list(cfg, filter={"who": "someone else"})) == []
    pending = saver.get_tuple(history[-2].config)  # the "collect" step's writes
    assert pending is not None
    assert (pending.pending_writes or [])[0][1:] == ("ssn", SSN)

    # maintenance finds a run's checkpoints in the encrypted metadata
    saver.delete_for_runs([second])
    runs = {t.metadata["run_id"] for t in saver.list(cfg)}
    assert runs == {first}
    assert fresh.get_state(cfg).values["ssn"] == SSN


def test_the_default_serde_keeps_the_plain_json_forms(memory: Memory) -> None:
    """The control: the same scan finds what the default serde stores readably (its fast
    plain-JSON paths: ``docs/benchmarks-log.md``), so the test above would see a leak."""
    saver = BotWireSaver(memory)
    graph, cfg, _, _ = _run(saver, "t1")
    _check_final(graph, cfg)
    dump = _raw_text(memory)
    assert [s for s in SECRETS if s not in dump] == []
    serde = saver.serde
    assert _serde.plain(serde) and _serde.dump_value(serde, SSN) == [SSN]
    assert _serde.dump_doc(serde, {"who": PATIENT}) == {"who": PATIENT}


def test_only_the_default_serde_class_gets_plain_json() -> None:
    class Custom(JsonPlusSerializer):  # may transform what it is given: it sees everything
        pass

    assert _serde.plain(JsonPlusSerializer())
    for serde in (Custom(), _encrypted()):
        assert not _serde.plain(serde)
        assert len(_serde.dump_value(serde, 1)) == 2  # a serde pair, never [1]
        assert isinstance(_serde.dump_doc(serde, {"a": 1}), list)


def test_plain_checkpoints_written_before_still_read(memory: Memory) -> None:
    """A thread written with the default serde (or by an earlier release) goes on under an
    encrypting serde: the plain forms still decode, and what is written next is encrypted."""
    graph = _graph(BotWireSaver(memory))
    cfg: Any = {"configurable": {"thread_id": "t1"}, "metadata": {"who": PATIENT}}
    graph.invoke({"ssn": ""}, cfg)
    assert SSN in _raw_text(memory)  # stored readably, as the default serde does

    saver = BotWireSaver(memory, serde=_encrypted())
    graph = _graph(saver)
    assert graph.get_state(cfg).values["ssn"] == SSN
    graph.invoke(Command(resume=PIN), {**cfg, "metadata": {"who": "resumed"}})
    _check_final(graph, cfg)
    dump = _raw_text(memory)
    assert PIN not in dump and "resumed" not in dump
    whos = [t.metadata.get("who") for t in saver.list(cfg)]
    assert "resumed" in whos and PATIENT in whos


def test_the_old_layout_reads_under_an_encrypting_serde(memory: Memory) -> None:
    """Data of the layout before issue 22 (``test_upgrade.py``'s fixture) reads the same, and
    a write added to it is encrypted."""
    old = json.loads((Path(__file__).parent / "data" / "old_layout.json").read_text())
    for key, value in old["values"].items():
        memory.set(key, value)
    for key, items in old["lists"].items():
        memory.append(key, *items)
    saver = BotWireSaver(memory, serde=_encrypted())
    for where, want in old["expect"].items():
        thread, ns = where.split("|")
        conf: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
        ids = [t.config["configurable"]["checkpoint_id"] for t in saver.list(conf)]
        assert ids == want["ids"], where
        latest = saver.get_tuple(conf)
        assert latest is not None
        assert latest.checkpoint["channel_values"] == want["values"], where
        assert [list(w) for w in latest.pending_writes or []] == want["writes"], where
    conf = {"configurable": {"thread_id": "T1", "checkpoint_ns": ""}}
    latest = saver.get_tuple(conf)
    assert latest is not None
    saver.put_writes(latest.config, [("secret", PIN)], task_id="late-task")
    again = saver.get_tuple(conf)
    assert again is not None and ("late-task", "secret", PIN) in (again.pending_writes or [])
    assert PIN not in _raw_text(memory)

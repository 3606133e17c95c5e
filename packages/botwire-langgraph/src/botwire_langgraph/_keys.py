"""How LangGraph identifiers become botwire keys.

Every identifier LangGraph hands us (thread ids, checkpoint namespaces, channel names, store
namespace labels, item keys) is an arbitrary string. Each one is *escaped* so it never contains the
separator ``/``: ``%`` becomes ``%25``, ``/`` becomes ``%2F`` and NUL becomes ``%00``. Escaped
components joined with ``/`` therefore split back unambiguously, and a prefix that ends in ``/``
selects exactly one component value (``t/a/`` never matches thread ``ab``).

Checkpointer layout (one botwire namespace, ``T`` = escaped thread id, ``N`` = escaped
checkpoint namespace, ``C`` = checkpoint id, ``R`` = escaped run id)::

    t/T/latest/N            pointer to the newest checkpoint of (thread, ns), the versions of
                            its channels not inlined and which of them hold a blob (before issue
                            22: a copy of the record)
    t/T/cp/N/C              checkpoint record {"id", "parent", "checkpoint", "metadata", "values",
                            "stored"}
                            (deflated as {"id", "parent", "z"} when smaller; see _serde)
    t/T/idx/N               list of checkpoint ids in put order (append-only; tail(n) = newest n)
    t/T/w/N/C               list of pending writes of checkpoint C (append-only; an item per call)
    t/T/b/N/CH/VER          one channel value (blob) at one version
    t/T/run/R               marks thread T as holding checkpoints of run R (for delete_thread)
    t/T/run/R/N/C           before issue 22: marks checkpoint C as written by run R
    r/R/T                   marks thread T as holding checkpoints of run R (for delete_for_runs)

Store layout (its own botwire namespace): ``i/L1/L2/.../KEY`` with every label and the key
escaped; the last component is the item key, the ones before it the namespace tuple.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

__all__ = [
    "blob_key",
    "blob_prefix",
    "checkpoint_key",
    "esc",
    "index_key",
    "item_key",
    "item_prefix",
    "latest_key",
    "latest_prefix",
    "parse_item_key",
    "run_key",
    "run_marker_key",
    "run_marker_prefix",
    "run_prefix",
    "thread_and_ns",
    "thread_prefix",
    "thread_run_key",
    "unesc",
    "version_token",
    "writes_key",
]


def thread_and_ns(config: Mapping[str, Any]) -> tuple[str, str]:
    """A LangGraph config's thread id and checkpoint namespace; a clear error without a
    thread id."""
    conf = config.get("configurable") or {}
    if "thread_id" not in conf:
        raise ValueError(
            "BotWireSaver needs a thread id: call the graph with "
            "config={'configurable': {'thread_id': '...'}}"
        )
    return str(conf["thread_id"]), str(conf.get("checkpoint_ns") or "")


_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", "\x00": "%00"})


def esc(text: str) -> str:
    """Escape one component so it holds no ``/`` (and no NUL); reversible with :func:`unesc`."""
    return text.translate(_ESCAPES)


def unesc(text: str) -> str:
    """Undo :func:`esc`."""
    return unquote(text) if "%" in text else text


def version_token(version: str | int | float) -> str:
    """A channel version as a key component; the type prefix keeps ``1`` and ``"1"`` apart."""
    if isinstance(version, bool):  # bool is an int; LangGraph never uses it, but be exact
        return f"i{int(version)}"
    if isinstance(version, int):
        return f"i{version}"
    if isinstance(version, float):
        return f"f{version!r}"
    return "s" + esc(str(version))


# -- checkpointer keys ---------------------------------------------------------------------


def thread_prefix(thread_id: str) -> str:
    return f"t/{esc(thread_id)}/"


def latest_prefix(thread_id: str) -> str:
    return f"t/{esc(thread_id)}/latest/"


def latest_key(thread_id: str, ns: str) -> str:
    return f"t/{esc(thread_id)}/latest/{esc(ns)}"


def checkpoint_key(thread_id: str, ns: str, checkpoint_id: str) -> str:
    return f"t/{esc(thread_id)}/cp/{esc(ns)}/{esc(checkpoint_id)}"


def index_key(thread_id: str, ns: str) -> str:
    return f"t/{esc(thread_id)}/idx/{esc(ns)}"


def writes_key(thread_id: str, ns: str, checkpoint_id: str) -> str:
    return f"t/{esc(thread_id)}/w/{esc(ns)}/{esc(checkpoint_id)}"


def blob_prefix(thread_id: str, ns: str) -> str:
    return f"t/{esc(thread_id)}/b/{esc(ns)}/"


def blob_key(thread_id: str, ns: str, channel: str, version: str | int | float) -> str:
    return f"t/{esc(thread_id)}/b/{esc(ns)}/{esc(channel)}/{version_token(version)}"


def run_prefix(thread_id: str, run_id: str) -> str:
    return f"t/{esc(thread_id)}/run/{esc(run_id)}/"


def thread_run_key(thread_id: str, run_id: str) -> str:
    return f"t/{esc(thread_id)}/run/{esc(run_id)}"


def run_key(thread_id: str, run_id: str, ns: str, checkpoint_id: str) -> str:
    return f"t/{esc(thread_id)}/run/{esc(run_id)}/{esc(ns)}/{esc(checkpoint_id)}"


def run_marker_prefix(run_id: str) -> str:
    return f"r/{esc(run_id)}/"


def run_marker_key(run_id: str, thread_id: str) -> str:
    return f"r/{esc(run_id)}/{esc(thread_id)}"


# -- store keys ----------------------------------------------------------------------------


def item_prefix(namespace: tuple[str, ...]) -> str:
    """Prefix of every item whose namespace starts with ``namespace``."""
    return "i/" + "".join(esc(label) + "/" for label in namespace)


def item_key(namespace: tuple[str, ...], key: str) -> str:
    return item_prefix(namespace) + esc(key)


def parse_item_key(key: str) -> tuple[tuple[str, ...], str] | None:
    """``(namespace, key)`` of a store key, or ``None`` if ``key`` is not an item key."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "i":
        return None
    return tuple(unesc(p) for p in parts[1:-1]), unesc(parts[-1])

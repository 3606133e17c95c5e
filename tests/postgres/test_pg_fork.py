"""Fork safety of ``PostgresStore`` used without a server: a store built in a parent (gunicorn
``--preload``, ``multiprocessing`` with fork, Celery's prefork pool) and used in forked children
never hands one process another's answer, and the children never end the parent's sessions.

Without ``PostgresStore._after_fork`` the children take the parent's pooled connections, whose
sockets they share with the parent and with each other: answers go to whichever process reads
first, libpq reports out-of-sync protocol states, and a child that exits sends the parent's
session a ``Terminate``.
"""

from __future__ import annotations

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from client_http.transport.test_gunicorn import _ask as ask
from client_http.transport.test_gunicorn import running_gunicorn
from support.forks import FORK, run_forked

from botwire import Memory
from botwire_server.storage.postgres import PostgresStore

from .conftest import MakeStore

CHILDREN = 6
ROUNDS = 120


def _child(memory: Memory, index: int, results: Any) -> None:
    """In a forked child: writes and reads of its own keys with the memory the parent built."""
    try:
        wrong = 0
        key = f"user-{index}"
        for i in range(ROUNDS):
            if memory.get(key) != {"owner": key}:
                wrong += 1
            memory.set(f"{key}-w", i)
            if memory.get(f"{key}-w") != i:
                wrong += 1
        results.put((index, wrong, None))
    except BaseException:
        results.put((index, -1, traceback.format_exc()))


def _run_children(memory: Memory, parent_work: Any = None) -> list[tuple[int, int, str | None]]:
    return run_forked(_child, (memory,), CHILDREN, while_running=parent_work)


def _parent_memory(make_store: MakeStore, ns: str) -> Memory:
    # Several pooled connections held open in the parent, as a busy process would have.
    memory = Memory(ns, store=make_store(min_size=3, max_size=4))
    memory.set_many({f"user-{i}": {"owner": f"user-{i}"} for i in range(CHILDREN)})
    assert memory.get("user-0") == {"owner": "user-0"}
    return memory


def test_forked_children_read_only_their_own_answers(make_store: MakeStore, ns: str) -> None:
    memory = _parent_memory(make_store, ns)
    parent_wrong = [0]

    def parent_work() -> None:
        # The parent keeps using its store while the children run.
        for i in range(ROUNDS):
            memory.set("parent", i)
            if memory.get("parent") != i:
                parent_wrong[0] += 1

    got = _run_children(memory, parent_work)
    errors = [tb for _, _, tb in got if tb]
    assert not errors, errors[0]
    assert [wrong for _, wrong, _ in got] == [0] * CHILDREN
    assert parent_wrong[0] == 0
    # The children's exits ended none of the parent's sessions: its pool still answers.
    for i in range(CHILDREN):
        assert memory.get(f"user-{i}-w") == ROUNDS - 1
    memory.set("after", True)
    assert memory.get("after") is True


def test_a_child_forked_while_another_thread_writes(make_store: MakeStore, ns: str) -> None:
    """A fork while a thread of the parent is inside a write: the child's store starts afresh
    (no lock or connection the writing thread held is the child's)."""
    memory = _parent_memory(make_store, ns)
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            memory.append("log", n)
            n += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        got = _run_children(memory)
    finally:
        stop.set()
        t.join(30)
    errors = [tb for _, _, tb in got if tb]
    assert not errors, errors[0]
    assert [wrong for _, wrong, _ in got] == [0] * CHILDREN
    log = memory.get("log")
    assert log == list(range(len(log)))  # the parent's writes all landed, in order


def test_a_store_closed_in_the_parent_stays_closed_in_the_child(
    make_store: MakeStore, ns: str
) -> None:
    store = make_store()
    Memory(ns, store=store).set("k", 1)
    store.close()
    results = FORK.Queue()

    def child() -> None:
        try:
            Memory(ns, store=store).get("k")
            results.put("used")
        except Exception as exc:
            results.put(type(exc).__name__)

    p = FORK.Process(target=child)
    p.start()
    outcome = results.get(timeout=60)
    p.join(30)
    assert outcome != "used"


def test_store_is_registered_for_fork(make_store: MakeStore) -> None:
    from botwire import _fork

    store: PostgresStore = make_store()
    assert any(r() is store for r in _fork._objects.values())


def test_gunicorn_preload_workers_each_read_their_users_value(
    postgres_url: str, ns: str, tmp_path: Path
) -> None:
    """The deployment itself: a WSGI app builds ``Memory(ns, store=PostgresStore(url))`` at
    import time, gunicorn ``--preload`` forks 4 workers from it, 8 users ask concurrently."""
    users = [f"user-{i}" for i in range(8)]
    with PostgresStore(postgres_url) as store:
        Memory(ns, store=store).set_many({u: {"owner": u} for u in users})
    env = {"BOTWIRE_TEST_URL": postgres_url, "BOTWIRE_TEST_NS": ns, "BOTWIRE_TEST_KIND": "postgres"}
    with running_gunicorn(env, tmp_path) as port, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: ask(port, users[i % len(users)]), range(240)))
    wrong = [a for a in answers if a["value"] != {"owner": a["user"]}]
    assert len({a["pid"] for a in answers}) >= 2  # really served by several forked workers
    assert wrong == []

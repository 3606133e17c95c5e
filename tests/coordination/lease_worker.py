"""A separate process (a serverless invocation) for tests/coordination/test_leases.py.

python lease_worker.py race URL NAMESPACE NAME ROUNDS GO
    touch GO.ready-NAME, wait for GO, then take the lease "race" ROUNDS times (spinning on
    Conflict: a tight race on the same key); inside each hold count the holders with an
    unfenced counter and log entry and exit with fenced appends
python lease_worker.py stall URL NAMESPACE TTL GO
    take the lease "stall" with TTL, write data fenced, print READY, then (the test stops
    and resumes this process meanwhile) wait for GO and try a fenced set, append, incr,
    atomic() commit, renew and release; print RESULT {...}
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from botwire import Conflict, LeaseLost, Memory


def wait_for(path: Path, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.005)


def race(url: str, ns: str, me: str, rounds: int, go: Path) -> None:
    memory = Memory(ns, url=url)
    memory.get("warm-up")  # connect (and import) before the start line
    Path(f"{go}.ready-{me}").touch()
    wait_for(go)
    spins = 0
    for _ in range(rounds):
        lease = memory.lease("race", ttl=30)
        while True:
            try:
                lease.acquire()
                break
            except Conflict:
                spins += 1
                time.sleep(random.uniform(0, 0.002))
        inside = memory.incr("inside")  # unfenced: how many hold the lease right now
        memory.append("log", [me, lease.token, "in", inside], fence=lease)
        memory.incr("count", fence=lease)
        memory.append("log", [me, lease.token, "out"], fence=lease)
        memory.incr("inside", -1)
        assert lease.release()
        time.sleep(random.uniform(0, 0.003))  # else the releaser nearly always wins again
    memory.append("spins", [me, spins])


def stall(url: str, ns: str, ttl: float, go: Path) -> None:
    memory = Memory(ns, url=url)
    lease = memory.lease("stall", ttl=ttl, holder="stalled")
    lease.acquire()
    token = lease.token
    memory.set("data", "stalled", fence=lease)
    seen = {"expires_at": lease.expires_at, "now": time.time()}  # the store's / this clock
    print("READY " + json.dumps(seen), flush=True)
    wait_for(go)  # the test SIGSTOPs us here, lets the lease expire, another process takes it
    outcome: dict[str, object] = {"token": token}
    attempts = {
        "set": lambda: memory.set("data", "stalled-late", fence=lease),
        "append": lambda: memory.append("log", "stalled-late", fence=lease),
        "incr": lambda: memory.incr("count", fence=lease),
        "atomic": lambda: memory.atomic().check_lease(lease).set("data", "late").commit(),
        "renew": lambda: lease.renew(),
    }
    for what, attempt in attempts.items():
        # A LeaseLost forfeits the lease (later uses are refused before any I/O): put the stale
        # token back, so each kind of fenced write is refused by the store itself.
        lease.token = token
        try:
            attempt()
            outcome[what] = "written"
        except LeaseLost as error:
            outcome[what] = "LeaseLost"
            outcome[what + "_message"] = str(error)
    lease.token = token
    outcome["released"] = lease.release()  # must not free the new holder's lease
    print("RESULT " + json.dumps(outcome), flush=True)


if __name__ == "__main__":
    mode, url, ns = sys.argv[1:4]
    if mode == "race":
        race(url, ns, sys.argv[4], int(sys.argv[5]), Path(sys.argv[6]))
    else:
        stall(url, ns, float(sys.argv[4]), Path(sys.argv[5]))

"""A second process for the invocation-guard tests.

    python guard_worker.py hold NAMESPACE SESSION_ID TTL READY_FILE RELEASE_FILE
        acquire the lease, touch READY_FILE, wait for RELEASE_FILE, release
    python guard_worker.py hold-forever NAMESPACE SESSION_ID TTL READY_FILE
        acquire, touch READY_FILE, then sleep (the test kills it: a crashed invocation)

``BOTWIRE_URL`` comes from the environment; the worker prints ``RESULT {...}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from botwire_strands import InvocationGuard

mode, namespace, session_id, ttl, ready = sys.argv[1:6]
guard = InvocationGuard(session_id, namespace=namespace, ttl=float(ttl), owner=f"worker-{mode}")
guard.acquire()
Path(ready).touch()
if mode == "hold-forever":
    time.sleep(600)
release = Path(sys.argv[6])
deadline = time.monotonic() + 120
while not release.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
guard.release()
print("RESULT " + json.dumps({"released": True}))

"""Quotas (DESIGN §7): the limits handed to the store and the HTTP details of refusals.

The store enforces every limit inside the write's transaction; this module only sizes the
request-body caps and computes ``Retry-After``.

Example::

    from botwire import Limits
    from botwire_server.quotas import body_limit

    body_limit(Limits(max_value_bytes=1 << 20), batch=False)   # 2 MiB + 64 KiB
"""

from __future__ import annotations

import math
import time

from botwire import Limits, QuotaExceeded

__all__ = [
    "BATCH_FACTOR",
    "OVERHEAD",
    "UNLIMITED_BODY",
    "body_limit",
    "retry_after_header",
    "seconds_until_utc_midnight",
]

DAY = 86400
OVERHEAD = 64 * 1024
#: A single-key body may hold twice the value limit (JSON whitespace, several appended items).
SINGLE_FACTOR = 2
#: A batch may carry several values (``set_many``); each is still checked against the limit.
BATCH_FACTOR = 16
#: The cap when no value limit is configured.
UNLIMITED_BODY = 64 * 1024 * 1024


def body_limit(limits: Limits, *, batch: bool) -> int:
    """The largest request body accepted before reading it (413 above)."""
    if not limits.max_value_bytes:
        return UNLIMITED_BODY
    factor = BATCH_FACTOR if batch else SINGLE_FACTOR
    return limits.max_value_bytes * factor + OVERHEAD


def seconds_until_utc_midnight(now: float | None = None) -> int:
    now = time.time() if now is None else now
    return max(1, math.ceil((math.floor(now / DAY) + 1) * DAY - now))


def retry_after_header(exc: QuotaExceeded) -> str | None:
    """The ``Retry-After`` value for a refusal (``None`` when waiting will not help)."""
    retry = exc.retry_after
    if retry is None:
        return None
    return str(max(1, math.ceil(retry)))

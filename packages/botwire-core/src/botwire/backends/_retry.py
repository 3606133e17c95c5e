"""When to retry, how long to wait, and what to raise at the end: one sans-I/O policy that the
sync and the async HTTP backends both drive (they differ only in how they send and sleep).

Example (what ``_http.HTTPCommands._send``, the one loop both backends run, does)::

    attempts = Attempts(call, timeout=10.0, retries=7, deadline=80.0)
    while True:
        timeout = attempts.begin()             # raises the final error when out of tries/time
        try:
            status, headers, body = send(call, timeout)
        except TransportError as exc:
            sleep(attempts.failed(exc))        # raises when this failure is the last
            continue
        done, value = attempts.answered(status, headers, body)
        if done:
            return value                       # the Store-protocol result
        sleep(value)                           # a 502/503/504 or a short 429: wait, then retry

Every request botwire sends is safe to repeat (reads and unconditional PUT are idempotent, every
other write, deletes and clear included, carries an ``Idempotency-Key``), so connection
failures, 502, 503, 504 and 429s with a short ``Retry-After`` are retried with exponential
backoff and jitter until ``retries`` or the overall deadline runs out. The default (7 retries,
0.1 s doubling to 2 s, each wait drawn between half and all of its step) waits 3.55 to 7.1 s in
total: a server restart or a load balancer's 2-3 s gap is ridden out, a dead server is reported
within seconds. A 502/503/504's ``Retry-After`` (seconds or an HTTP date) is the least wait
before its retry; one that the call's deadline cannot reach ends the call at once, saying so.
A connection cut while a large body was sent is retried once only (a proxy refusing its size).
"""

from __future__ import annotations

import time

from .._errors import BotWireError, QuotaExceeded, Unavailable

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._http import Call

__all__ = [
    "DEFAULT_RETRIES",
    "MAX_RETRY_AFTER",
    "AttemptFailed",
    "Attempts",
    "backoff",
    "retry_after",
    "retry_delay",
]

DEFAULT_RETRIES = 7
MAX_RETRY_AFTER = 5.0  # a 429 asking to wait longer than this is reported, not waited out
RETRY_STATUSES = frozenset((502, 503, 504))
BACKOFF_FIRST = 0.1  # seconds: the first retry's step; each next step doubles ...
BACKOFF_CAP = 2.0  # ... up to this


class AttemptFailed(Exception):
    """One attempt's transport failure (``cause``: refused, reset, timed out, garbled...), as a
    backend reports it to the shared retry loop; ``reused``: it happened on a pooled keep-alive
    connection; ``upload_cut``: the connection was reset or closed, with no answer, while a
    large body (``_http.LARGE_BODY``) was sent (see :meth:`Attempts.failed`)."""

    def __init__(
        self, cause: BaseException, reused: bool = False, *, upload_cut: bool = False
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.reused = reused
        self.upload_cut = upload_cut


def backoff(retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): exponential with "equal jitter",
    uniformly between half and all of ``min(2 s, 0.1 s * 2**retry)``. Half the step is always
    waited, so the total patience has a floor (3.55 s over 7 retries) while the random half keeps
    many clients that failed together from retrying in lockstep."""
    import random  # only when retrying: it costs a cold start ms

    step = min(BACKOFF_CAP, BACKOFF_FIRST * (2 ** min(retry, 16)))  # 2**1030: float overflow
    return random.uniform(step / 2, step)


def retry_after(raw: str | None, now: Callable[[], float] = time.time) -> float | None:
    """The seconds a ``Retry-After`` value asks for (RFC 9110 10.2.3: delay-seconds or an
    HTTP date; a decimal is read too), or ``None`` when absent or unreadable: ``nan``,
    ``-inf``, ``1_0`` and ``-1`` are no seconds (``float()`` took them all)."""
    if raw is None:
        return None
    text = raw.strip()
    whole, dot, fraction = text.partition(".")
    if (
        whole.isascii()
        and whole.isdigit()
        and (not dot or (fraction.isascii() and fraction.isdigit()))
    ):
        return float(text)
    try:
        from email.utils import parsedate_to_datetime  # only for a date: rare, and it costs

        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC all the same
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now())


def retry_delay(status: int, headers: dict[str, str]) -> float | None:
    """The least wait before retrying a response (``0.0``: none asked), or ``None`` when the
    response is final. A 502/503/504 is always retried, after its ``Retry-After`` if any (the
    caller fails at once when that is past the call's deadline); a 429 only with a readable
    ``Retry-After`` of at most :data:`MAX_RETRY_AFTER` (without one it is a quota: waiting
    will not help soon); anything else is final."""
    if status in RETRY_STATUSES:
        return retry_after(headers.get("retry-after")) or 0.0
    if status != 429:
        return None
    wait = retry_after(headers.get("retry-after"))
    return wait if wait is not None and wait <= MAX_RETRY_AFTER else None


class Attempts:
    """The retry state of one :class:`~botwire.backends._http.Call` (see the module example).

    ``clock`` and ``jitter`` are injectable so the policy can be checked without sleeping.
    """

    def __init__(
        self,
        call: Call,
        *,
        timeout: float,
        retries: int,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[int], float] = backoff,
    ) -> None:
        self.call = call
        self.timeout = timeout
        self.retries = retries
        self.deadline = deadline
        self._clock = clock
        self._jitter = jitter
        self.started = clock()
        self.attempts = 0  # requests sent (or tried) so far
        self._stale_spent = False
        self._cuts = 0  # attempts whose large upload was cut (a proxy refusing its size?)
        self._cut = False  # ... the last failure was one of them
        self._last_exc: BaseException | None = None
        self._last_status: int | None = None
        self._last_headers: dict[str, str] = {}
        self._last_body = b""
        self._last_asked: float | None = None  # a Retry-After the deadline could not reach

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    def begin(self) -> float:
        """Start an attempt: its timeout (never past the overall deadline)."""
        remaining = self.deadline - self.elapsed
        if remaining <= 0:
            raise self._give_up("the overall deadline passed")
        self.attempts += 1
        return min(self.timeout, remaining)

    def failed(
        self,
        exc: BaseException,
        *,
        reused: bool = False,
        retry: bool = True,
        upload_cut: bool = False,
    ) -> float:
        """The attempt raised ``exc`` (refused, reset, timed out, cut, garbled...): seconds to
        wait before the next one, or raise :class:`~botwire.Unavailable` when it was the last.

        ``reused``: it failed on a pooled keep-alive connection, which the server may have
        closed while idle; the first such failure is retried at once and not counted.
        ``retry=False``: the failure cannot get better by retrying (a certificate error).
        ``upload_cut``: the connection was cut, unanswered, while a large body was sent;
        retried once only: a proxy that refuses the size (and drops the connection rather than
        relay the server's 413) would otherwise get the whole body ``retries`` more times.
        """
        self._last_exc = exc
        self._last_status = None
        self._cut = upload_cut
        if upload_cut:
            self._cuts += 1
            if self._cuts > 1:
                raise self._give_up("after its upload was cut a second time")
        if reused and not self._stale_spent:
            self._stale_spent = True
            self.attempts -= 1
            return 0.0
        if not retry:
            raise self._give_up("it cannot succeed by retrying")
        return self._wait(0.0, None)

    def answered(self, status: int, headers: dict[str, str], body: bytes) -> tuple[bool, Any]:
        """A complete response: ``(True, result)`` when it is final (the result, or the mapped
        error raised), ``(False, seconds)`` to wait before retrying it."""
        wait = retry_delay(status, headers)
        if wait is None:
            if status == 429:
                raise self._status_error(status, headers, body, final=True)
            return True, self.call.result(status, body, headers)
        self._last_exc = None
        self._last_status, self._last_headers, self._last_body = status, headers, body
        return False, self._wait(wait, status)

    # -- the end --------------------------------------------------------------------------------

    def _wait(self, asked: float, status: int | None) -> float:
        """The wait before the next attempt, or raise when there is none to make."""
        if self.attempts > self.retries:
            raise self._final("after its last retry")
        delay = max(asked, self._jitter(self.attempts - 1))
        if self.elapsed + delay >= self.deadline:
            # Sleeping into the deadline would only postpone the same failure.
            if asked and self.elapsed + asked >= self.deadline:
                self._last_asked = asked
                left = max(0.0, self.deadline - self.elapsed)
                raise self._final(
                    f"at once: the server asked to retry after {_seconds(asked)} s "
                    f"(Retry-After) and botwire waits at most {left:.1f} s more for this call "
                    f"(its deadline, timeout x (retries + 1), is {self.deadline:.1f} s; raise "
                    "timeout= or retries= to wait longer)"
                )
            raise self._final("before the overall deadline")
        return delay

    def _final(self, why: str) -> BotWireError:
        if self._last_status is not None:
            return self._status_error(
                self._last_status, self._last_headers, self._last_body, final=False, why=why
            )
        return self._give_up(why)

    def _summary(self) -> str:
        return (
            f"{self.attempts} attempt{'s' if self.attempts != 1 else ''} in "
            f"{self.elapsed:.2f} s (retries={self.retries}, deadline {self.deadline:.1f} s)"
        )

    def _give_up(self, why: str) -> BotWireError:
        if self._last_status is not None:
            return self._final(why)
        call, last = self.call, self._last_exc
        cause = f"{type(last).__name__}: {last}" if last is not None else "no attempt was made"
        hint = "Check BOTWIRE_URL and that the server is running."
        if self._cut:
            size = len(call.body or b"")
            cause = (
                f"connection reset while uploading a {size}-byte body; a proxy or the server "
                "may have refused its size (the server's limit: its --max-value-bytes, 1 MiB "
                "by default, which usage() shows as limits.max_value_bytes; a proxy may have "
                f"its own, e.g. nginx's client_max_body_size). Last error {cause}"
            )
            hint = "Store smaller values (or split them), or raise those limits."
        error = Unavailable(
            f"botwire: the server at {call.url}{call.prefix} could not be reached for "
            f"{call.where}: {self._summary()}, gave up {why}; {'' if self._cut else 'last error '}"
            f"{cause}. {hint}",
            namespace=call.namespace or None,
            key=call.key,
            url=call.url + call.path.split("?", 1)[0],
            attempts=self.attempts,
            elapsed=round(self.elapsed, 3),
        )
        error.__cause__ = last
        return error

    def _status_error(
        self, status: int, headers: dict[str, str], body: bytes, *, final: bool, why: str = ""
    ) -> BotWireError:
        """The error for a 5xx/429 that stays one: botwire's own error (its class and message)
        when the body is botwire's, else the status described; with attempts and time."""
        call = self.call
        error: BotWireError
        try:
            error = call.result(status, body, headers)
        except BotWireError as exc:
            error = exc
        else:  # cannot happen for these statuses; keep the type checker honest
            error = Unavailable(f"botwire: {call.where} answered HTTP {status}.")
        if isinstance(error, QuotaExceeded) and error.retry_after is None:
            asked = retry_after(headers.get("retry-after"))
            if asked is not None:
                error.details["retry_after"] = asked
        if not final:
            location = headers.get("location")
            extra = f", Location {location!r}" if location else ""
            error.args = (
                f"{error.message} [{call.where}: last answer HTTP {status}{extra}; "
                f"{self._summary()}, gave up {why}]",
            )
            error.message = error.args[0]
            error.details.setdefault("url", call.url + call.path.split("?", 1)[0])
            error.details.setdefault("status", status)
            error.details["attempts"] = self.attempts
            error.details["elapsed"] = round(self.elapsed, 3)
            if self._last_asked is not None:
                error.details.setdefault("retry_after", self._last_asked)
        return error


def _seconds(value: float) -> str:
    """``120``, ``1.5``: a Retry-After as the server meant it (a date: whole seconds)."""
    return f"{value:.0f}" if value >= 10 else f"{value:g}"

"""Plain data shared by the client, the stores and the server: entries, usage, listing pages,
limits and the operations a store applies."""

from __future__ import annotations

from ._record import field, record

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any, Literal

__all__ = ["Changes", "Entry", "KeyInfo", "KeyPage", "Limits", "Op", "OpKind", "Policy", "Usage"]

if TYPE_CHECKING:
    OpKind = Literal["get", "set", "delete", "append", "incr", "pop", "check"]
else:
    OpKind = str  # the Literal above, for type checkers


@record
class Entry:
    """One stored value with its metadata. Times are seconds since the epoch (UTC).

    Example::

        e = memory.entry("profile")
        if e is not None:
            memory.set("profile", {**e.value, "seen": True}, if_version=e.version)
    """

    key: str
    value: Any
    version: int
    created_at: float
    updated_at: float
    expires_at: float | None = None
    #: A tombstone (``watch``/``watch_prefix``): the key was deleted at ``version``; ``value``
    #: is ``None`` and the times are the deletion's.
    deleted: bool = False


@record
class Changes:
    """What changed under a prefix since a version (``watch_prefix``, ``Store.changes``).

    ``entries`` holds the latest state of every changed key, tombstones (``deleted=True``)
    included, in ascending version order; ``version`` is the resume point (pass it as
    ``after`` next time); ``more`` says the limit was hit: call again at once.
    """

    entries: list[Entry]
    version: int
    more: bool = False


@record
class KeyInfo:
    """A key as listed: its version, stored size in bytes and times."""

    key: str
    version: int
    bytes: int
    updated_at: float
    expires_at: float | None = None


@record
class KeyPage:
    """One page of a key listing; ``cursor`` is ``None`` on the last page."""

    keys: list[KeyInfo]
    cursor: str | None


@record
class Limits:
    """Per-namespace limits, enforced inside the write's transaction. ``0`` means unlimited.

    Deletes and ``clear`` are never refused by a quota, so a full namespace can always be freed.
    """

    max_value_bytes: int = 0
    max_namespace_bytes: int = 0
    max_keys: int = 0
    writes_per_day: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "max_value_bytes": self.max_value_bytes,
            "max_namespace_bytes": self.max_namespace_bytes,
            "max_keys": self.max_keys,
            "writes_per_day": self.writes_per_day,
        }


@record
class Policy:
    """A namespace's retention policy, as in force (``None`` = none): ``default_ttl`` seconds
    for writes without ``ttl``, ``max_list_len`` items kept by every ``append`` (a larger
    ``max_len`` is lowered to it), ``max_idle`` seconds without a write after which
    housekeeping clears the namespace.

    ``overrides`` names the fields the namespace sets itself; the others come from the
    store's defaults (the server's ``--default-ttl``, ``--default-max-list-len``, ``--max-idle``).

    Example::

        memory.set_policy(default_ttl=3600, max_list_len=200)
        memory.policy().default_ttl  # 3600.0
    """

    default_ttl: float | None = None
    max_list_len: int | None = None
    max_idle: float | None = None
    overrides: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "default_ttl": self.default_ttl,
            "max_list_len": self.max_list_len,
            "max_idle": self.max_idle,
            "overrides": list(self.overrides),
        }


@record
class Usage:
    """What a namespace holds and has used today, with the limits in force (0 = unlimited).

    ``resets_at`` is when ``writes_today`` returns to zero (the next UTC midnight);
    ``policy`` is the retention policy in force (:class:`Policy`).
    """

    namespace: str
    keys: int
    bytes: int
    writes_today: int
    resets_at: float
    limits: Limits = field(default_factory=Limits)
    policy: Policy = field(default_factory=Policy)


@record
class Op:
    """One operation of a batch. Values and items travel as JSON text, encoded by the client.

    ``check`` asserts that ``key`` has ``version`` (``None``: that it is absent).
    """

    kind: OpKind
    key: str
    value: str | None = None
    items: tuple[str, ...] = ()
    ttl: float | None = None
    if_version: int | None = None
    if_absent: bool = False
    max_len: int | None = None
    by: int | float = 1
    version: int | None = None
    tail: int | None = None

    @property
    def mutates(self) -> bool:
        return self.kind not in ("get", "check")

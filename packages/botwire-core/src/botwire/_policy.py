"""Retention policies (issue 18, item 4): the one check of a policy change, shared by the client,
the stores' engine and the server, and the client commands ``policy()`` / ``set_policy()``
(a mixin of ``Commands``, written once for ``Memory`` and ``AsyncMemory``).

A policy field is ``None`` to follow the store's default (the server's flags), ``0`` to turn
the rule off for this namespace whatever the default, or a positive number.
"""

from __future__ import annotations

from ._errors import BotWireError, InvalidArgument

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import EllipsisType
    from typing import Any

    from ._memory import Returns, command
    from ._types import Policy
else:

    def command(fn):
        """``botwire._memory.command`` (not imported: ``_memory`` imports this module)."""
        fn._botwire_command = True
        return fn


__all__ = ["FIELDS", "PolicyCommands", "check_policy", "policy_method"]

#: The policy's fields: name → (what it is, the largest value accepted, whole numbers only).
FIELDS: dict[str, tuple[str, float, bool]] = {
    "default_ttl": ("seconds a write without ttl keeps its value", 1e10, False),
    "max_list_len": ("items a list keeps after each append", 1_000_000_000, True),
    "max_idle": ("seconds without a write before housekeeping clears the namespace", 1e10, False),
}


def check_policy(ns: str, changes: Mapping[str, Any]) -> dict[str, float | int | None]:
    """``changes`` checked and normalised (``float`` seconds, ``int`` lengths), or
    :class:`~botwire.InvalidArgument` naming the namespace, the field, the rule and the fix."""
    if not isinstance(changes, dict) or not changes:
        raise InvalidArgument(
            f"botwire: a policy change for namespace {ns!r} is an object with one or more of "
            f"{', '.join(FIELDS)} (null: follow the server's default; 0: none).",
            namespace=ns,
        )
    checked: dict[str, float | int | None] = {}
    for name, value in changes.items():
        if name not in FIELDS:
            raise InvalidArgument(
                f"botwire: {name!r} is not a policy field (namespace {ns!r}); the fields are "
                f"{', '.join(FIELDS)}.",
                namespace=ns,
            )
        what, high, whole = FIELDS[name]
        if value is None:
            checked[name] = None
            continue
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or (whole and not isinstance(value, int)) or not 0 <= value <= high:
            kind = "a whole number" if whole else "a number of seconds"
            raise InvalidArgument(
                f"botwire: policy {name}={value!r} for namespace {ns!r}: {name} is the {what}, "
                f"{kind} from 0 to {high:.0f} (0: none for this namespace; null: follow the "
                "server's default).",
                namespace=ns,
                field=name,
            )
        checked[name] = int(value) if whole else float(value)
    return checked


def policy_method(store: Any, ns: str, what: str) -> Any:
    """``store``'s ``get_policy`` or ``set_policy``, or a clear error for a store without."""
    method = getattr(store, what, None)
    if method is None:
        raise BotWireError(
            f"botwire: the store behind namespace {ns!r} ({type(store).__name__}) has no "
            "retention policies (SupportsPolicy); use a botwire-server or the embedded SQLite "
            "store.",
            namespace=ns,
        )
    return method


class PolicyCommands:
    """``policy()`` and ``set_policy()`` of ``Memory`` and ``AsyncMemory``."""

    namespace: str
    _store: Any

    @command
    def policy(self) -> Returns[Policy]:
        """The namespace's retention policy in force (a :class:`~botwire.Policy`).

        Example::

            p = memory.policy()
            p.default_ttl, p.max_list_len, p.max_idle  # None: no such rule
        """
        policy: Policy = yield policy_method(self._store, self.namespace, "get_policy")(
            self.namespace
        )
        return policy

    @command
    def set_policy(
        self,
        *,
        default_ttl: float | EllipsisType | None = ...,
        max_list_len: int | EllipsisType | None = ...,
        max_idle: float | EllipsisType | None = ...,
    ) -> Returns[Policy]:
        """Change the namespace's retention policy (an admin token over HTTP); fields left
        out keep their value, ``None`` follows the server's default again, ``0`` turns the rule
        off for this namespace. Returns the policy now in force.

        Example::

            memory.set_policy(default_ttl=86400, max_list_len=100)  # a day; 100 messages
            memory.set_policy(default_ttl=None)  # back to the server's --default-ttl
        """
        given = {"default_ttl": default_ttl, "max_list_len": max_list_len, "max_idle": max_idle}
        changes = check_policy(self.namespace, {k: v for k, v in given.items() if v is not ...})
        policy: Policy = yield policy_method(self._store, self.namespace, "set_policy")(
            self.namespace, changes
        )
        return policy

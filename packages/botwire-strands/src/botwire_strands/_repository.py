"""``BotWireSessionRepository``: Strands' (synchronous) ``SessionRepository`` on botwire.

Layout inside one botwire namespace (ids percent-encode ``%`` and ``/``)::

    <session>/session                      Session record
    <session>/agents/<agent>/agent         SessionAgent record (state, conversation manager)
    <session>/agents/<agent>/messages      botwire list: one item per SessionMessage (append)
    <session>/agents/<agent>/redactions    botwire list: guardrail redactions, applied on read
    <session>/multi_agents/<id>            multi-agent orchestrator state

Costs, in round trips: a message is one ``append`` (S3 and file repositories: one PUT of a new
object); restoring an agent is two reads however long the conversation (``read_session``, then
``read_agent``, which also fetches the message list and redactions for the ``list_messages`` that
``RepositorySessionManager`` calls next), where S3 needs a LIST and one GET per message.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from strands.session.session_repository import SessionRepository
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, encode_bytes_values

from botwire import BotWireError, Conflict, LeaseLost, Memory

from ._common import key_part, open_memory
from ._guard import InvocationGuard

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

__all__ = ["BotWireSessionRepository"]

_DELETED = 0  # a session's version once this repository deleted it (versions start at 1)


class BotWireSessionRepository(SessionRepository):
    """Strands ``SessionRepository`` backed by one botwire namespace.

    ``RepositorySessionManager(session_id=..., session_repository=BotWireSessionRepository(
    "my-app"))``. Pass ``guard=InvocationGuard(session_id, memory=repo.memory)`` (or use
    :meth:`guard`) to fence every write on the session's lease: a write by an invocation that
    lost its lease fails with ``LeaseLost`` instead of interleaving with the new holder's.
    Botwire failures are raised as Strands' ``SessionException`` naming namespace and key.
    """

    def __init__(
        self,
        namespace: str = "strands",
        *,
        url: str | None = None,
        token: str | None = None,
        memory: Memory | None = None,
        guard: InvocationGuard | None = None,
    ) -> None:
        self.memory = open_memory(namespace, url=url, token=token, memory=memory)
        if guard is not None and guard.memory.namespace != self.memory.namespace:
            raise ValueError(
                f"guard namespace {guard.memory.namespace!r} differs from the repository's "
                f"{self.memory.namespace!r}: a write can only be fenced by a lease in the same "
                "botwire namespace; build it with repository.guard(session_id)"
            )
        self._guard = guard
        self._created: dict[str, str] = {}  # agent key -> created_at, kept across update_agent
        # session id -> its record's version: every write checks it (one atomic batch), so a
        # write for a session deleted (or deleted and created anew) since is refused.
        self._sessions: dict[str, int] = {}
        # read_agent's prefetch of (messages, redactions), consumed by the next list_messages.
        self._prefetched: dict[str, tuple[list[Any], list[Any]]] = {}

    def guard(
        self, session_id: str, *, ttl: float = 900.0, owner: str | None = None
    ) -> InvocationGuard:
        """An :class:`InvocationGuard` in this namespace that also fences this repository."""
        self._guard = InvocationGuard(session_id, memory=self.memory, ttl=ttl, owner=owner)
        return self._guard

    # -- keys and plumbing --------------------------------------------------------------------

    @staticmethod
    def _session_key(session_id: str) -> str:
        return f"{key_part(session_id)}/session"

    @staticmethod
    def _agent_base(session_id: str, agent_id: str) -> str:
        return f"{key_part(session_id)}/agents/{key_part(agent_id)}/"

    def _fail(self, what: str, key: str, error: BotWireError) -> SessionException:
        return SessionException(
            f"botwire {what} failed (namespace {self.memory.namespace!r}, key {key!r}): {error}"
        )

    def _fenced(self, session_id: str) -> InvocationGuard | None:
        g = self._guard
        return g if g is not None and g.held and g.session_id == session_id else None

    def _session_version(self, what: str, session_id: str) -> int:
        """The session record's version as this repository last saw it (read once if not)."""
        version = self._sessions.get(session_id)
        if version == _DELETED:
            raise SessionException(
                f"{what} refused: session {session_id!r} (botwire namespace "
                f"{self.memory.namespace!r}) was deleted by this repository; nothing was "
                "written. Start the agent again on the session."
            )
        if version is None:
            key = self._session_key(session_id)
            try:
                entry = self.memory.entry(key)
            except BotWireError as error:
                raise self._fail(what, key, error) from error
            if entry is None:
                raise SessionException(f"Session {session_id!r} does not exist")
            version = self._sessions[session_id] = entry.version
        return version

    def _write(
        self, what: str, session_id: str, key: str, *, value: Any = None, append: bool = False
    ) -> None:
        """One round trip: one atomic batch of the session record's check, a set or an append,
        and the lease's check when a guard holds it. Without the session's check, an agent
        object still alive after ``delete_session`` (a warm container) wrote on, and a new
        conversation on the same id then read the deleted one's messages."""
        guard = self._fenced(session_id)
        session_key = self._session_key(session_id)
        tx = self.memory.atomic()
        if guard is not None:
            tx.check_lease(guard.lease)
        tx.check(session_key, self._session_version(what, session_id))
        if append:
            tx.append(key, value)
        else:
            tx.set(key, value)
        try:
            tx.commit()
        except LeaseLost as error:  # only a fenced write raises it: guard is not None
            assert guard is not None
            raise guard._lost(what) from error
        except Conflict as error:
            if error.key != session_key:
                raise self._fail(what, key, error) from error
            # The stale version stays: only read_session/create_session (a manager starting
            # on the session) move it on, never a retry of this agent's writes.
            raise SessionException(
                f"{what} refused: session {session_id!r} (botwire namespace "
                f"{self.memory.namespace!r}) was deleted, or deleted and created anew, since "
                "this repository read it; nothing was written. Start the agent again on the "
                "session (RepositorySessionManager reads or creates it)."
            ) from error
        except BotWireError as error:
            raise self._fail(what, key, error) from error

    def _get(self, what: str, key: str) -> Any:
        try:
            return self.memory.get(key)
        except BotWireError as error:
            raise self._fail(what, key, error) from error

    # -- sessions -------------------------------------------------------------------------------

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Store a new session; ``SessionException`` if it exists already."""
        key = self._session_key(session.session_id)
        try:
            version = self.memory.set(key, session.to_dict(), if_absent=True)
        except Conflict as error:
            raise SessionException(f"Session {session.session_id!r} already exists") from error
        except BotWireError as error:
            raise self._fail("create_session", key, error) from error
        self._sessions[session.session_id] = version
        return session

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """The session record, or ``None`` (one round trip)."""
        key = self._session_key(session_id)
        try:
            entry = self.memory.entry(key)
        except BotWireError as error:
            raise self._fail("read_session", key, error) from error
        if entry is None:
            self._sessions.pop(session_id, None)
            return None
        self._sessions[session_id] = entry.version
        return Session.from_dict(entry.value)

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete the session and everything under it (one list, then deletes of 1,000 keys)."""
        prefix = f"{key_part(session_id)}/"
        try:
            keys = self.memory.list(prefix)
            if self._session_key(session_id) not in keys:
                raise SessionException(f"Session {session_id!r} does not exist")
            self.memory.delete_many(keys)
        except BotWireError as error:
            raise self._fail("delete_session", prefix, error) from error
        self._prefetched.clear()
        self._sessions[session_id] = _DELETED  # its agents' writes are refused from now on
        for key in [k for k in self._created if k.startswith(prefix)]:
            del self._created[key]

    # -- agents -----------------------------------------------------------------------------------

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Store a new agent record (one round trip)."""
        key = self._agent_base(session_id, session_agent.agent_id) + "agent"
        self._write("create_agent", session_id, key, value=session_agent.to_dict())
        self._created[key] = session_agent.created_at

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """The agent record, or ``None``: one round trip that also prefetches its messages."""
        base = self._agent_base(session_id, agent_id)
        keys = [base + "agent", base + "messages", base + "redactions"]
        try:
            values = self.memory.get_many(keys)
        except BotWireError as error:
            raise self._fail("read_agent", keys[0], error) from error
        data = values.get(keys[0])
        if data is None:
            return None
        self._prefetched[base] = (values.get(keys[1]) or [], values.get(keys[2]) or [])
        self._created[keys[0]] = data.get("created_at", "")
        return SessionAgent.from_dict(data)

    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Overwrite the agent record, keeping its ``created_at`` (one round trip when this
        repository created or read the agent, two otherwise)."""
        key = self._agent_base(session_id, session_agent.agent_id) + "agent"
        created = self._created.get(key)
        if created is None:
            previous = self._get("update_agent", key)
            if previous is None:
                raise SessionException(
                    f"Agent {session_agent.agent_id!r} in session {session_id!r} does not exist"
                )
            created = self._created[key] = previous.get("created_at", session_agent.created_at)
        session_agent.created_at = created
        session_agent.updated_at = datetime.now(timezone.utc).isoformat()
        self._write("update_agent", session_id, key, value=session_agent.to_dict())

    # -- messages ---------------------------------------------------------------------------------

    def create_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Append the message to the agent's list: one round trip, whatever the list's length."""
        base = self._agent_base(session_id, agent_id)
        self._prefetched.pop(base, None)
        self._write(
            "create_message",
            session_id,
            base + "messages",
            value=session_message.to_dict(),
            append=True,
        )

    def update_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Record a redaction (appended, applied on read): one round trip."""
        base = self._agent_base(session_id, agent_id)
        self._prefetched.pop(base, None)
        redaction = {
            "message_id": session_message.message_id,
            "redact_message": encode_bytes_values(session_message.redact_message),
            "updated_at": datetime.now(timezone.utc).isoformat(),
        }
        self._write("update_message", session_id, base + "redactions", value=redaction, append=True)

    def _messages(self, session_id: str, agent_id: str) -> list[SessionMessage]:
        base = self._agent_base(session_id, agent_id)
        fetched = self._prefetched.pop(base, None)
        if fetched is None:
            keys = [base + "messages", base + "redactions"]
            try:
                values = self.memory.get_many(keys)
            except BotWireError as error:
                raise self._fail("list_messages", keys[0], error) from error
            fetched = (values.get(keys[0]) or [], values.get(keys[1]) or [])
        items, redactions = fetched
        by_id: dict[int, dict[str, Any]] = {}
        for item in items:
            # A retried append that had landed leaves a duplicate: the first copy wins.
            by_id.setdefault(int(item["message_id"]), item)
        for r in redactions:
            item = by_id.get(int(r["message_id"]))
            if item is not None:
                by_id[item["message_id"]] = {
                    **item,
                    "redact_message": r["redact_message"],
                    "updated_at": r.get("updated_at", item["updated_at"]),
                }
        return [SessionMessage.from_dict(by_id[i]) for i in sorted(by_id)]

    def read_message(
        self, session_id: str, agent_id: str, message_id: int, **kwargs: Any
    ) -> SessionMessage | None:
        """One message by id, or ``None`` (one round trip: reads the agent's list)."""
        for message in self._messages(session_id, agent_id):
            if message.message_id == message_id:
                return message
        return None

    def list_messages(
        self,
        session_id: str,
        agent_id: str,
        limit: int | None = None,
        offset: int = 0,
        **kwargs: Any,
    ) -> list[SessionMessage]:
        """Messages ordered by id from ``offset`` (at most ``limit``): one round trip, none
        right after :meth:`read_agent` (its prefetch)."""
        messages = self._messages(session_id, agent_id)
        end = None if limit is None else offset + limit
        return messages[offset:end]

    # -- multi-agent orchestrators (Graph, Swarm) -----------------------------------------------

    def _multi_key(self, session_id: str, multi_agent_id: str) -> str:
        return f"{key_part(session_id)}/multi_agents/{key_part(multi_agent_id)}"

    def create_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Store an orchestrator's state."""
        key = self._multi_key(session_id, multi_agent.id)
        self._write("create_multi_agent", session_id, key, value=multi_agent.serialize_state())

    def read_multi_agent(
        self, session_id: str, multi_agent_id: str, **kwargs: Any
    ) -> dict[str, Any] | None:
        """An orchestrator's state, or ``None``."""
        data: dict[str, Any] | None = self._get(
            "read_multi_agent", self._multi_key(session_id, multi_agent_id)
        )
        return data

    def update_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Overwrite an orchestrator's state (one round trip)."""
        key = self._multi_key(session_id, multi_agent.id)
        self._write("update_multi_agent", session_id, key, value=multi_agent.serialize_state())

    def __repr__(self) -> str:
        return f"BotWireSessionRepository({self.memory.namespace!r})"

"""``BotWireConversationStore``: Pydantic AI's ``ConversationStore`` on botwire (private)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic_ai.conversation_store import (
    ConversationConflict,
    ConversationEntry,
    ConversationRecord,
    ConversationStore,
)

from botwire import BotWireError, Conflict
from botwire.integration import MemoryPair, chunks
from botwire_pydantic_ai._codec import decode_entry, decode_record, encode_entry, encode_record

if TYPE_CHECKING:
    from botwire import AsyncMemory, Entry, Memory

__all__ = ["ANCESTORS", "ENTRY_PREFIX", "RECORD_PREFIX", "BotWireConversationStore"]

RECORD_PREFIX = "pydantic-ai/conversation/"
ENTRY_PREFIX = "pydantic-ai/entry/"
#: How many earlier entry ids each entry carries: a history read costs ~n/ANCESTORS round trips.
ANCESTORS = 32
DEFAULT_NAMESPACE = "pydantic-ai"
#: The shortest TTL a save gets when its history is about to expire (botwire needs ttl > 0).
_MIN_TTL = 0.001


class BotWireConversationStore(ConversationStore):
    """A Pydantic AI ``ConversationStore`` kept in botwire, for serverless chat endpoints.

    Pass it to ``UIAdapter(conversation_store=...)`` (the Vercel AI SDK and AG-UI adapters) or
    use ``store.load`` / ``store.save`` around ``agent.run(..., conversation=...)``.

    Layout, in one namespace: a record per conversation (``pydantic-ai/conversation/<id>``) and
    one key per message entry (``pydantic-ai/entry/<entry id>``). A save is one atomic botwire
    transaction that checks the record's version and writes the new entries and the record
    together: two writers that loaded the same revision cannot both win, the loser gets the
    framework's ``ConversationConflict``, and a refused save leaves no entry behind. Each entry
    also names up to 32 entries before it, so loading a history of n messages costs about
    1 + n/32 round trips.

    ``ttl`` (seconds): a conversation and its messages expire ``ttl`` seconds after the
    conversation was first saved (later saves do not extend it: its older messages would
    expire first otherwise). A fork or branch expires no later than the messages it shares
    with the conversation it came from, so a listed conversation always loads. ``delete``
    removes the record; entries are kept (a fork may share them) until they expire or the
    namespace is cleared.
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        memory: Memory | AsyncMemory | None = None,
        ttl: float | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        if ttl is not None and not ttl > 0:
            raise ValueError(
                "BotWireConversationStore: ttl must be a positive number of seconds or None "
                f"(never expire), got {ttl!r}"
            )
        self.ttl = ttl
        self._clients = MemoryPair(
            namespace,
            memory,
            url=url,
            token=token,
            default_namespace=DEFAULT_NAMESPACE,
            adapter="BotWireConversationStore",
        )

    @property
    def namespace(self) -> str:
        """The botwire namespace holding the conversations."""
        return self._clients.namespace

    def _note(self, exc: BaseException, what: str) -> BaseException:
        if hasattr(exc, "add_note"):
            exc.add_note(
                f"while {what} (Pydantic AI conversation store, botwire namespace "
                f"{self.namespace!r})"
            )
        return exc

    # -- the five primitives ---------------------------------------------------------

    async def read_record(self, conversation_id: str) -> ConversationRecord | None:
        try:
            value = await self._clients.aio.get(RECORD_PREFIX + conversation_id)
        except BotWireError as exc:
            raise self._note(exc, f"reading conversation {conversation_id!r}") from None
        return None if value is None else decode_record(value)

    async def read_records(
        self, *, scope: str | None = None, limit: int | None = None
    ) -> Sequence[ConversationRecord]:
        aio = self._clients.aio
        try:
            keys = await aio.list(RECORD_PREFIX)
            records = []
            for batch in chunks(keys):
                values = await aio.get_many(batch)
                records += [decode_record(v) for v in values.values() if v is not None]
        except BotWireError as exc:
            raise self._note(exc, "listing conversations") from None
        records = [r for r in records if scope is None or r.scope == scope]
        records.sort(key=lambda r: r.updated_at, reverse=True)
        return records if limit is None else records[:limit]

    async def write_record(
        self,
        record: ConversationRecord,
        *,
        new_entries: Sequence[ConversationEntry] = (),
        expected_revision: str | None,
    ) -> None:
        cid = record.conversation_id
        aio = self._clients.aio
        key = RECORD_PREFIX + cid
        try:
            stored = await aio.entry(key)
            stored_revision = None if stored is None else stored.value.get("revision")
            if stored_revision != expected_revision:
                raise ConversationConflict(cid)
            base: Entry | None = None
            tx = aio.atomic().check(key, None if stored is None else stored.version)
            new_ids = {e.id for e in new_entries}
            # Entries outside this save that the history leans on must still be there at commit
            # (a concurrent delete or rewrite of the conversation a fork points into).
            ancestors: list[str] = []
            outside = new_entries[0].parent_id if new_entries else record.head_id
            if outside is not None and outside not in new_ids:
                base = await aio.entry(ENTRY_PREFIX + outside)
                if base is None:
                    raise ConversationConflict(cid)
                tx.check(ENTRY_PREFIX + outside, base.version)
                ancestors = [outside, *base.value.get("ancestors", [])][:ANCESTORS]
            ttl = self._remaining_ttl(stored, base)
            for entry in new_entries:
                tx.set(ENTRY_PREFIX + entry.id, encode_entry(entry, ancestors), ttl=ttl)
                ancestors = [entry.id, *ancestors][:ANCESTORS]
            tx.set(key, encode_record(record), ttl=ttl)
            await tx.commit()
        except Conflict:
            raise ConversationConflict(cid) from None
        except BotWireError as exc:
            raise self._note(exc, f"saving conversation {cid!r}") from None

    async def delete_record(self, conversation_id: str, *, expected_revision: str) -> None:
        key = RECORD_PREFIX + conversation_id
        try:
            stored = await self._clients.aio.entry(key)
            if stored is None or stored.value.get("revision") != expected_revision:
                raise ConversationConflict(conversation_id)
            await self._clients.aio.delete(key, if_version=stored.version)
        except Conflict:
            raise ConversationConflict(conversation_id) from None
        except BotWireError as exc:
            raise self._note(exc, f"deleting conversation {conversation_id!r}") from None

    async def read_entry(self, entry_id: str) -> ConversationEntry:
        try:
            value = await self._clients.aio.get(ENTRY_PREFIX + entry_id)
        except BotWireError as exc:
            raise self._note(exc, f"reading message entry {entry_id!r}") from None
        if value is None:
            raise KeyError(
                f"message entry {entry_id!r} is not in botwire namespace "
                f"{self.namespace!r} (deleted, expired or never saved)"
            )
        return decode_entry(value)

    # -- faster history ---------------------------------------------------------------

    async def read_history(
        self, head_id: str | None, *, limit: int | None = None
    ) -> list[ConversationEntry]:
        """The entries up to ``head_id``, oldest first: ~1 + n/32 round trips, not n."""
        if head_id is None or limit == 0:
            return []
        try:
            raw: dict[str, Any] | None = await self._clients.aio.get(ENTRY_PREFIX + head_id)
            if raw is None:
                raise KeyError(
                    f"message entry {head_id!r} is not in botwire namespace {self.namespace!r}"
                )
            newest_first = [raw]
            while raw["parent_id"] is not None and (limit is None or len(newest_first) < limit):
                want = raw.get("ancestors") or [raw["parent_id"]]
                if limit is not None:
                    want = want[: limit - len(newest_first)]
                got = await self._clients.aio.get_many([ENTRY_PREFIX + i for i in want])
                for entry_id in want:
                    raw = got.get(ENTRY_PREFIX + entry_id)
                    if raw is None:
                        raise KeyError(
                            f"message entry {entry_id!r} is not in botwire "
                            f"namespace {self.namespace!r}"
                        )
                    newest_first.append(raw)
                    if raw["parent_id"] is None:
                        break
        except BotWireError as exc:
            raise self._note(exc, f"reading the history ending at entry {head_id!r}") from None
        return [decode_entry(v) for v in reversed(newest_first)]

    def _remaining_ttl(self, stored: Entry | None, base: Entry | None) -> float | None:
        """The TTL of this save: ``ttl`` for a new conversation, then its remaining lifetime,
        and never longer than the entry its history hangs from (``base``) has left.

        A fork made late in a conversation shares that conversation's older entries: with a
        fresh ``ttl`` it would stay listed after they expire and fail to load. Capping its
        record at the base's expiry costs nothing (the base is read anyway); refreshing the
        shared entries instead would rewrite the whole history on every fork. Each entry's
        expiry is capped by its base's in turn, so the base expires no later than anything
        before it (to within a commit's latency: a TTL counts from the server's clock).
        """
        own = self.ttl if stored is None or stored.expires_at is None else None
        expiries = [e.expires_at for e in (stored, base) if e is not None]
        deadlines = [at for at in expiries if at is not None]
        if not deadlines:
            return own
        # botwire refuses ttl <= 0; a history this close to expiring takes the record with it.
        left = max(min(deadlines) - time.time(), _MIN_TTL)
        return left if own is None else min(own, left)

    async def aclose(self) -> None:
        """Close the clients this store made (a ``memory`` passed in stays open)."""
        await self._clients.aclose()

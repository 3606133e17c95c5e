"""``BotWireSessionService``: ADK's ``BaseSessionService`` on botwire.

Layout (one botwire namespace, keys built in ``_common``)::

    app/<app>/state                              app: state (stored once per app)
    app/<app>/user/<user>/state                  user: state (stored once per app and user)
    app/<app>/user/<user>/session/<sid>          {"state", "create_time", "update_time",
                                                  "events", "last_event_id",
                                                  "last_event_digest"}
    app/<app>/user/<user>/session/<sid>/events   the events, a botwire list

``append_event`` is one atomic batch: check the session record's version, rewrite the record
(with the new event's id and digest), append the event, and merge app:/user: deltas (each
checked against the version it was read at). The record's version is the session's
``_storage_update_marker``: a ``StaleSessionError`` means another writer's event really was
committed since this session object was read, never a clock comparison and never a retried
request of our own. Re-appending the session's newest event (a retry) is recognised from the
record alone: no key per event, so a session's key count does not grow with its events.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions import _session_util
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State

from botwire import Conflict, Entry
from botwire.integration import chunks

from . import _common as k

__all__ = ["BotWireSessionService"]

#: Attempts when only app:/user: state (shared with other sessions) moved under a write.
_ATTEMPTS = 16
#: First window of events read when serving ``after_timestamp``; doubled until it suffices.
_FIRST_WINDOW = 32


def _merge(app: dict[str, Any], user: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    merged = dict(session)
    merged.update({State.APP_PREFIX + key: v for key, v in app.items()})
    merged.update({State.USER_PREFIX + key: v for key, v in user.items()})
    return merged


def _value(entry: Entry | None) -> dict[str, Any]:
    return dict(entry.value) if entry is not None and isinstance(entry.value, dict) else {}


def _stripped(session_id: str) -> str:
    """The id as stored: ``create_session`` strips surrounding whitespace, and ADK's
    InMemory/Sqlite services strip it on get and delete too. (Sqlite first tries a padded id
    verbatim, for databases migrated with padded ids; botwire has always stored them
    stripped, so stripping is the whole rule here.)"""
    return session_id.strip() if session_id else session_id


def _digest(payload: dict[str, Any]) -> str:
    """Equal events (as stored) have equal digests: a re-delivery of the newest event is
    recognised from the session record, without reading the event list."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class BotWireSessionService(k.ClientService, BaseSessionService):
    """ADK sessions in botwire: safe for many processes (Cloud Run instances) at once.

    Example::

        from botwire_adk import BotWireSessionService
        runner = Runner(agent=agent, app_name="shop", session_service=BotWireSessionService())

    Args:
        namespace: botwire namespace holding every app's sessions (default ``"adk"``).
        memory: a ``botwire.Memory`` or ``AsyncMemory`` to use instead of making one.
        url, token: the botwire server (default ``BOTWIRE_URL``/``BOTWIRE_TOKEN``, else the
            embedded store).
        uri: ``botwire://HOST:PORT/NAMESPACE`` as given to ``adk web --session_service_uri``.
    """

    # -- create / get / list / delete ----------------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        sid = (session_id or "").strip() or str(uuid.uuid4())
        deltas = _session_util.extract_json_safe_state_delta(state or {})
        now = time.time()
        record = {
            "id": sid,
            "user_id": user_id,
            "state": deltas["session"],
            "create_time": now,
            "update_time": now,
            "events": 0,
            "last_event_id": None,
            "last_event_digest": None,
        }
        skey = k.session_key(app_name, user_id, sid)
        app_key, user_key = k.app_state_key(app_name), k.user_state_key(app_name, user_id)
        for _ in range(_ATTEMPTS):
            got = await self._mem.entries([skey, app_key, user_key])
            if skey in got:
                raise AlreadyExistsError(
                    f"Session {sid!r} already exists for user {user_id!r} in app {app_name!r}."
                )
            app_state, user_state = _value(got.get(app_key)), _value(got.get(user_key))
            tx = self._mem.atomic()
            tx.check(skey, None).set(skey, record)
            tx.delete(k.events_key(app_name, user_id, sid))  # no leftovers from an old session
            self._merge_shared(tx, got, app_key, app_state, deltas["app"])
            self._merge_shared(tx, got, user_key, user_state, deltas["user"])
            try:
                version = (await tx.commit())[1]
            except Conflict:
                continue  # the session appeared (reported above) or shared state moved: re-read
            session = Session(
                id=sid,
                app_name=app_name,
                user_id=user_id,
                state=_merge(app_state, user_state, deltas["session"]),
                last_update_time=now,
            )
            session._storage_update_marker = str(version)
            return session
        raise RuntimeError(f"botwire-adk: create_session {sid!r} kept conflicting; try again")

    @staticmethod
    def _merge_shared(
        tx: Any, got: dict[str, Entry], key: str, current: dict[str, Any], delta: dict[str, Any]
    ) -> None:
        """Merge an app:/user: delta into ``current`` (updated in place), checked at its version."""
        if not delta:
            return
        entry = got.get(key)
        current.update(delta)
        tx.check(key, entry.version if entry is not None else None).set(key, current)

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        session_id = _stripped(session_id)
        if not session_id:
            return None  # as ADK's services: no session has an empty id
        skey = k.session_key(app_name, user_id, session_id)
        ekey = k.events_key(app_name, user_id, session_id)
        app_key, user_key = k.app_state_key(app_name), k.user_state_key(app_name, user_id)
        for _ in range(_ATTEMPTS):
            got = await self._mem.entries([skey, app_key, user_key])
            entry = got.get(skey)
            if entry is None:
                return None
            record = entry.value
            raw = await self._read_events(ekey, record["events"], config)
            # The record and the list change together (one atomic batch); if an append landed
            # between our two reads, the list's newest event is not the record's: read again,
            # so the marker never vouches for events the session object lacks.
            newest = raw[-1]["id"] if raw else None
            if raw and newest != record["last_event_id"]:
                continue
            if not raw and record["events"] and config is None:
                continue
            break
        else:
            raise RuntimeError(f"botwire-adk: session {session_id!r} kept changing while read")
        events = [Event.model_validate(item) for item in raw]
        if config is not None and config.after_timestamp is not None:
            events = [e for e in events if e.timestamp >= config.after_timestamp]
        if config is not None and config.num_recent_events is not None:
            n = config.num_recent_events
            events = events[-n:] if n else []
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=_merge(_value(got.get(app_key)), _value(got.get(user_key)), record["state"]),
            events=events,
            last_update_time=record["update_time"],
        )
        session._storage_update_marker = str(entry.version)
        return session

    async def _read_events(
        self, ekey: str, total: int, config: GetSessionConfig | None
    ) -> list[dict[str, Any]]:
        """The stored events ``config`` asks for, reading from the end only as far as needed."""
        if total == 0:
            return []
        if config is None or (config.num_recent_events is None and config.after_timestamp is None):
            return await self._mem.tail(ekey, total)
        if config.after_timestamp is None:
            n = config.num_recent_events or 0
            return await self._mem.tail(ekey, n) if n else []
        # after_timestamp: events are appended in time order, so widen a window from the end
        # until its oldest event predates the cut (or it holds them all).
        window = _FIRST_WINDOW
        if config.num_recent_events is not None:
            window = max(1, config.num_recent_events)
        while True:
            raw = await self._mem.tail(ekey, min(window, total))
            if len(raw) >= total or not raw or raw[0]["timestamp"] < config.after_timestamp:
                return raw
            if config.num_recent_events is not None and len(raw) >= config.num_recent_events:
                return raw  # every event of the window is recent enough: the newest n suffice
            window *= 2

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        prefix = (
            k.session_prefix(app_name, user_id) if user_id is not None else k.user_prefix(app_name)
        )
        keys = [key for key in await self._mem.list(prefix) if self._is_record(key)]
        records: dict[str, Entry] = {}
        for part in chunks(keys):
            records.update(await self._mem.entries(part))
        app_state = _value(await self._mem.entry(k.app_state_key(app_name)))
        users = sorted({r.value["user_id"] for r in records.values() if "user_id" in r.value})
        if user_id is not None:
            users = [user_id]
        user_states: dict[str, dict[str, Any]] = {}
        for part in chunks([k.user_state_key(app_name, u) for u in users]):
            user_states.update(
                {key: _value(e) for key, e in (await self._mem.entries(part)).items()}
            )
        sessions = []
        for entry in records.values():
            rec = entry.value
            uid = rec.get("user_id", user_id)
            sessions.append(
                Session(
                    id=rec["id"],
                    app_name=app_name,
                    user_id=uid,
                    state=_merge(
                        app_state,
                        user_states.get(k.user_state_key(app_name, uid), {}),
                        rec["state"],
                    ),
                    last_update_time=rec["update_time"],
                )
            )
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    @staticmethod
    def _is_record(key: str) -> bool:
        # app/<app>/user/<user>/session/<sid>: segments never contain "/" (escaped).
        parts = key.split("/")
        return len(parts) == 6 and parts[4] == "session"

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        session_id = _stripped(session_id)
        if not session_id:
            return
        await self._mem.delete_many(
            [
                k.session_key(app_name, user_id, session_id),
                k.events_key(app_name, user_id, session_id),
            ]
        )

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        return _value(await self._mem.entry(k.user_state_key(app_name, user_id)))

    # -- append_event ---------------------------------------------------------------------------

    async def append_event(self, session: Session, event: Event) -> Event:
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        deltas = _session_util.extract_json_safe_state_delta(
            event.actions.state_delta if event.actions else {}
        )
        payload = event.model_dump(mode="json", exclude_none=True)
        digest = _digest(payload)
        # session.id as given, as ADK's services do (a session from create/get is stripped).
        app, user, sid = session.app_name, session.user_id, session.id
        skey = k.session_key(app, user, sid)
        ekey = k.events_key(app, user, sid)
        app_key, user_key = k.app_state_key(app), k.user_state_key(app, user)
        marker = session._storage_update_marker
        for _ in range(_ATTEMPTS):
            got = await self._mem.entries([skey, app_key, user_key])
            entry = got.get(skey)
            if entry is None:
                raise SessionNotFoundError(f"Session {sid!r} not found.")
            # Before the stale check: a retry whose first attempt was committed (its answer
            # lost), or the loser of two racing copies after its conflict, finds its own event
            # as the newest; its marker moved because of that event, not another writer's.
            stored: str | None = None
            if entry.value.get("last_event_id") == event.id:
                stored = entry.value.get("last_event_digest")
                if stored is None:
                    # A record written before digests were kept: compare with the newest event
                    # (if another append landed since the record was read, it is a different
                    # one, and the checks below treat it as another writer's).
                    newest = await self._mem.tail(ekey, 1)
                    if newest and newest[0].get("id") == event.id:
                        stored = _digest(newest[0])
            if stored is not None:
                if stored == digest:
                    return event  # an equal re-delivery: stored once, as InMemory does
                raise AlreadyExistsError(
                    f"botwire-adk: session {sid!r} (app {app!r}, user {user!r}) already holds "
                    f"an event with id {event.id!r} (its newest) that differs from this one; an "
                    "event id is stored once per session (appending the identical event again "
                    "is a no-op). This event was not stored: give it a fresh id "
                    "(Event.new_id()), or re-append the identical event."
                )
            if marker is not None and marker != str(entry.version):
                raise StaleSessionError(
                    f"botwire-adk: session {sid!r} (app {app!r}, user {user!r}) was changed by "
                    f"another writer since it was read (stored revision {entry.version}, this "
                    f"session object has {marker}); its event {event.id!r} was not stored. "
                    "Get the session again and retry the turn."
                )
            record = dict(entry.value)
            record["state"] = {**record["state"], **deltas["session"]}
            record["update_time"] = event.timestamp
            record["events"] = int(record["events"]) + 1
            record["last_event_id"] = event.id
            record["last_event_digest"] = digest
            tx = self._mem.atomic()
            tx.check(skey, entry.version).set(skey, record)
            tx.append(ekey, payload)
            self._merge_shared(tx, got, app_key, _value(got.get(app_key)), deltas["app"])
            self._merge_shared(tx, got, user_key, _value(got.get(user_key)), deltas["user"])
            try:
                version = (await tx.commit())[1]
            except Conflict:
                # Re-read: if the session record moved, another writer won (raised above when
                # this object holds a marker); if only app:/user: state moved, merge again.
                continue
            session._storage_update_marker = str(version)
            session.last_update_time = event.timestamp
            return self._commit_event_to_session(session, event)
        raise RuntimeError(f"botwire-adk: append_event to {sid!r} kept conflicting; try again")

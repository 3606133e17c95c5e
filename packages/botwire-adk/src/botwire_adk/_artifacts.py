"""``BotWireArtifactService``: ADK's ``BaseArtifactService`` on botwire.

Layout per scope (``user`` for ``user:`` filenames, ``s/<session>`` otherwise) under
``art/<app>/<user>/<scope>/``: ``f/<filename>`` is the version index (metadata only, a list),
``v/<filename>/<n>`` holds version ``n``'s part. A save is one atomic batch checked against the
index's botwire version, so two processes saving the same file at once get distinct version
numbers and neither save is lost.
"""

from __future__ import annotations

import time
from typing import Any

from google.adk.artifacts.base_artifact_service import ArtifactVersion, BaseArtifactService
from google.adk.errors.input_validation_error import InputValidationError
from google.genai import types

from botwire import Conflict

from . import _common as k

__all__ = ["BotWireArtifactService"]


def _scope(filename: str, session_id: str | None) -> str:
    if filename.startswith("user:"):
        return "user"
    if session_id is None:
        raise InputValidationError("Session ID must be provided for session-scoped artifacts.")
    return f"s/{k.seg(session_id)}"


def _mime(part: types.Part) -> str | None:
    if part.inline_data is not None:
        return part.inline_data.mime_type
    if part.text is not None:
        return "text/plain"
    if part.file_data is not None:
        return part.file_data.mime_type
    raise InputValidationError("Not supported artifact type.")


class BotWireArtifactService(k.ClientService, BaseArtifactService):
    """Versioned ADK artifacts in botwire. Each version is one botwire value, so it is bounded
    by the server's value size (1 MiB by default; raise ``--max-value-bytes`` for bigger
    files, or keep large blobs in GCS). Same constructor as ``BotWireSessionService``."""

    def _keys(self, app: str, user: str, filename: str, sid: str | None) -> tuple[str, str]:
        base = f"art/{k.seg(app)}/{k.seg(user)}/{_scope(filename, sid)}/"
        return base + "f/" + k.seg(filename), base + "v/" + k.seg(filename) + "/"

    async def save_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        artifact: types.Part | dict[str, Any],
        session_id: str | None = None,
        custom_metadata: dict[str, Any] | None = None,
    ) -> int:
        part = artifact if isinstance(artifact, types.Part) else types.Part.model_validate(artifact)
        mime = _mime(part)
        index_key, data_prefix = self._keys(app_name, user_id, filename, session_id)
        payload = part.model_dump(mode="json", exclude_none=True)
        while True:
            entry = await self._mem.entry(index_key)
            index = list(entry.value) if entry is not None else []
            n = index[-1]["version"] + 1 if index else 0
            meta = ArtifactVersion(
                version=n,
                canonical_uri=f"botwire://{self._mem.namespace}/{data_prefix}{n}",
                custom_metadata=dict(custom_metadata or {}),
                create_time=time.time(),
                mime_type=mime,
            ).model_dump(mode="json")
            tx = self._mem.atomic()
            tx.check(index_key, entry.version if entry is not None else None)
            tx.set(index_key, [*index, meta]).set(f"{data_prefix}{n}", payload)
            try:
                await tx.commit()
                return n
            except Conflict:
                continue  # another save of this file won version n: take the next one

    async def _index(self, app: str, user: str, filename: str, sid: str | None) -> list[Any]:
        index_key, _ = self._keys(app, user, filename, sid)
        return list(await self._mem.get(index_key, []) or [])

    async def load_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        session_id: str | None = None,
        version: int | None = None,
    ) -> types.Part | None:
        meta = await self.get_artifact_version(
            app_name=app_name,
            user_id=user_id,
            filename=filename,
            session_id=session_id,
            version=version,
        )
        if meta is None:
            return None
        _, data_prefix = self._keys(app_name, user_id, filename, session_id)
        raw = await self._mem.get(f"{data_prefix}{meta.version}")
        return None if raw is None else types.Part.model_validate(raw)

    async def list_artifact_keys(
        self, *, app_name: str, user_id: str, session_id: str | None = None
    ) -> list[str]:
        from urllib.parse import unquote

        scopes = ["user"] + ([f"s/{k.seg(session_id)}"] if session_id is not None else [])
        names: set[str] = set()
        for scope in scopes:
            prefix = f"art/{k.seg(app_name)}/{k.seg(user_id)}/{scope}/f/"
            names.update(unquote(key[len(prefix) :]) for key in await self._mem.list(prefix))
        return sorted(names)

    async def delete_artifact(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> None:
        index_key, data_prefix = self._keys(app_name, user_id, filename, session_id)
        await self._mem.delete_many([index_key, *await self._mem.list(data_prefix)])

    async def list_versions(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> list[int]:
        return [m["version"] for m in await self._index(app_name, user_id, filename, session_id)]

    async def list_artifact_versions(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> list[ArtifactVersion]:
        index = await self._index(app_name, user_id, filename, session_id)
        return [ArtifactVersion.model_validate(m) for m in index]

    async def get_artifact_version(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        session_id: str | None = None,
        version: int | None = None,
    ) -> ArtifactVersion | None:
        index = await self._index(app_name, user_id, filename, session_id)
        if not index:
            return None
        if version is None:
            return ArtifactVersion.model_validate(index[-1])
        found = [m for m in index if m["version"] == version]
        return ArtifactVersion.model_validate(found[0]) if found else None

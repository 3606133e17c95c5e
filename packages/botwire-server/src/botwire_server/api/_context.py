"""The per-app state every route reads: settings, store runner, authorizer, metrics, clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ..admission import Admission
from ..auth import ANONYMOUS, Authorizer, Principal
from ..metrics import Metrics
from ..quotas import body_limit
from ..settings import Settings
from ..storage import StoreRunner, TestingClock
from ._http import header

__all__ = ["ServerContext", "context"]


@dataclass
class ServerContext:
    """What the routes share; ``runner`` is set once the store is open (app startup)."""

    settings: Settings
    authorizer: Authorizer
    metrics: Metrics
    clock: Any
    runner: StoreRunner | None = None
    single_limit: int = 0
    batch_limit: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    admission: Admission = field(init=False)

    def __post_init__(self) -> None:
        limits = self.settings.limits
        self.single_limit = body_limit(limits, batch=False)
        self.batch_limit = body_limit(limits, batch=True)
        self.admission = Admission(self.settings.max_inflight_bytes)

    @property
    def store(self) -> StoreRunner:
        assert self.runner is not None, "the store is not open yet"
        return self.runner

    @property
    def testing_clock(self) -> TestingClock | None:
        return self.clock if isinstance(self.clock, TestingClock) else None

    def principal(self, request: Request) -> Principal:
        """Authenticate the request (401 on a bad or missing token)."""
        if self.authorizer.secret is None:
            return ANONYMOUS  # an anonymous server: no header to look for
        return self.authorizer.authenticate(header(request, b"authorization"))


def context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.botwire
    return ctx

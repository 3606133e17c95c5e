"""Structured logs: one JSON object per line on stderr (the access log included)."""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = [
    "JSONFormatter",
    "configure_logging",
    "mask",
    "masked_access_line",
    "register_secrets",
    "sole_json_handler",
]

_SECRETS: list[str] = []
#: the handler :func:`configure_logging` installed last (``None``: it was not called)
_HANDLER: logging.StreamHandler | None = None  # type: ignore[type-arg]


def register_secrets(secrets: list[str]) -> None:
    """Strings never to be written out: every log line and CLI message masks them."""
    for secret in secrets:
        if secret and len(secret) >= 3 and secret not in _SECRETS:
            _SECRETS.append(secret)
    _SECRETS.sort(key=len, reverse=True)  # a longer secret first: it may contain a shorter one


def masked_access_line(text: str) -> str:
    """Access-log text as written out: through :func:`mask` once any secret is registered
    (its lines hold no URL passwords, which is all :func:`mask` looks for without one)."""
    return mask(text) if _SECRETS else text


def mask(text: str) -> str:
    """``text`` with every registered secret and every PostgreSQL URL password masked."""
    from .settings import mask_url

    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return mask_url(text) if "://" in text or "password" in text.lower() else text


class JSONFormatter(logging.Formatter):
    """``{"ts","level","logger","msg"}``; access-log records are already JSON and pass through."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "botwire_server.access":
            return masked_access_line(record.getMessage())
        line = {
            "ts": round(record.created if record.created else time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask(record.getMessage()),
        }
        if record.exc_info:
            line["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=True, default=str)


def configure_logging(level: str, fmt: str = "json") -> None:
    """Log to stderr: one JSON object per line, or ``fmt="human"`` plain lines (a terminal)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "human":
        from .startup import HumanFormatter

        handler.setFormatter(HumanFormatter())
    else:
        handler.setFormatter(JSONFormatter())
    global _HANDLER
    _HANDLER = handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # it would log query strings


def sole_json_handler(logger: logging.Logger) -> logging.StreamHandler | None:  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installed, when ``logger``'s INFO records reach it
    and nothing else: no other handler on the way to the root, no filter, its
    :class:`JSONFormatter` unchanged. ``None`` otherwise (then records go through ``logging``)."""
    handler = _HANDLER
    if (
        handler is None
        or type(handler.formatter) is not JSONFormatter
        or handler.filters
        or handler.level > logging.INFO
        or logger.filters
        or not logger.isEnabledFor(logging.INFO)
    ):
        return None
    node: logging.Logger | None = logger
    while node is not None:
        if node.parent is None:  # the root
            return handler if node.handlers == [handler] else None
        if node.handlers or not node.propagate:
            return None
        node = node.parent
    return None

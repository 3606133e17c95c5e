"""Structured logs: one JSON object per line on stderr (the access log included)."""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = ["configure_logging", "mask", "register_secrets"]

_SECRETS: list[str] = []


def register_secrets(secrets: list[str]) -> None:
    """Strings never to be written out: every log line and CLI message masks them."""
    for secret in secrets:
        if secret and len(secret) >= 3 and secret not in _SECRETS:
            _SECRETS.append(secret)
    _SECRETS.sort(key=len, reverse=True)  # a longer secret first: it may contain a shorter one


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
            return mask(record.getMessage()) if _SECRETS else record.getMessage()
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # it would log query strings

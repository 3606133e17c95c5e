"""Structured logs: one JSON object per line on stderr (the access log included)."""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = ["configure_logging"]


class JSONFormatter(logging.Formatter):
    """``{"ts","level","logger","msg"}``; access-log records are already JSON and pass through."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "botwire_server.access":
            return record.getMessage()
        line = {
            "ts": round(record.created if record.created else time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # it would log query strings

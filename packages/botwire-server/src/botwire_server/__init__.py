"""botwire-server: the self-hostable botwire memory service (FastAPI; SQLite or PostgreSQL).

Example::

    from botwire_server import Settings, create_app

    app = create_app(Settings(database="postgresql://botwire@db/botwire",
                              token_secret="a-long-random-secret", writes_per_day=1000))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

if TYPE_CHECKING:
    from .app import create_app
    from .settings import Settings

__all__ = ["Settings", "__version__", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module 'botwire_server' has no attribute {name!r}")

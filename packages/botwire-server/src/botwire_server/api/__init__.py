"""The HTTP routes: API v1, the compatibility routes and the operational endpoints."""

from ._context import ServerContext, context
from ._errors import install_error_handlers
from ._routes import install_routes

__all__ = ["ServerContext", "context", "install_error_handlers", "install_routes"]

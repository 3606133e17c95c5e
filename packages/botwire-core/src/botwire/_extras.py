"""Framework adapters live in their own packages; these names reach them lazily."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["clash", "load_adapter"]


def load_adapter(name: str, module: str, extra: str) -> Any:
    """``getattr(import_module(module), name)``, or an ImportError naming the pip command."""
    try:
        mod = import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module:
            raise  # the adapter is installed but one of its own imports is missing
        raise ImportError(
            f"{name} needs the botwire {extra} adapter, which is not installed. "
            f'Install it with: pip install "botwire[{extra}]"',
            name=module,
        ) from None
    return getattr(mod, name)


def clash(name: str, where: tuple[tuple[str, str], ...]) -> ImportError:
    """The error for a name several adapters export: ``botwire`` never picks one silently."""
    choices = "; ".join(
        f'`from {module} import {name}` (pip install "botwire[{extra}]")' for module, extra in where
    )
    return ImportError(
        f"{name} is the name of {len(where)} adapters' classes, so botwire does not re-export "
        f"it: import it from its package: {choices}.",
        name="botwire",
    )

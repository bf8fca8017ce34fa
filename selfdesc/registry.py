"""Tables of ``name -> "module:attribute"``, imported on first use (features, methods, stylizers).

Keeping the table as strings lets a package list what it offers without importing it: ``import
selfdesc`` stays light, and an extractor's dependencies load only when that extractor is built.
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping

from selfdesc.errors import ConfigError


def lookup(table: Mapping[str, str], name: str, what: str) -> Any:
    """The attribute that ``table[name]`` (``"package.module:attribute"``) names, its module imported now.

    Raises:
        ConfigError: ``name`` is not in ``table`` (the message lists the known ``what`` names).
    """
    if name not in table:
        raise ConfigError(f"unknown {what} '{name}' (available: {', '.join(sorted(table))})")
    module, attribute = table[name].split(":")
    return getattr(importlib.import_module(module), attribute)

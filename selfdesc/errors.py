"""User-facing errors: one line, naming the file and the problem.

The CLI prints ``SelfdescError`` as ``selfdesc: error: <message>`` and exits 2,
never with a traceback. Library users can catch the subclasses.
"""
from __future__ import annotations


class SelfdescError(Exception):
    """Base class of every error meant for the user (printed on one line)."""


class ImageError(SelfdescError):
    """An image file is missing, unreadable, truncated or not an image."""


class DatasetError(SelfdescError):
    """A dataset folder or list is missing, empty or malformed."""


class WeightsError(SelfdescError):
    """A weight file is missing or does not fit the model."""


class ConfigError(SelfdescError):
    """An unknown feature name, option or malformed configuration."""

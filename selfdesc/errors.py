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


class StopRequested(Exception):
    """Not an error: the user asked a long run to stop (SIGINT/SIGTERM, or its time limit) and it
    stopped cleanly. ``signum`` is the signal, ``None`` for a time limit. The CLI prints the
    message and exits with ``128 + signum`` (130 for SIGINT, 143 for SIGTERM), 0 for a time limit."""

    def __init__(self, message: str, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 0 if self.signum is None else 128 + int(self.signum)

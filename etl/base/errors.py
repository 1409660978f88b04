"""Errors every layer may raise; the command line turns them into one plain message."""

from __future__ import annotations


class UserError(Exception):
    """An error to show as one plain message (no traceback), exit status 2 by default."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (library errors can run to many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

"""Errors a user can cause and fix. The CLI prints their message as one line, no traceback."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input (a file, URL, option or device reply).

    The message names the input and says what was expected, e.g.
    ``"sim://spine?fps=abc: fps must be a number of pulses per second (7.5, 15 or 30)"``.
    """


class SourceError(InputError):
    """A frame or dose source could not be opened or answered out of protocol."""

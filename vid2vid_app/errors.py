"""Errors the library raises for bad user input.

Library code raises :class:`UserError` with one clear sentence naming the file and what is wrong;
the CLI turns it into a non-zero exit with that message (no traceback).
"""


class UserError(Exception):
    """Bad input or an impossible request, described in one sentence for the user."""

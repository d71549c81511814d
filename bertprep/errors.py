"""Errors shared by every stage."""


class UserError(Exception):
    """A mistake in the user's input or options.

    The ``bertprep`` command prints it as one line and exits with code 2, no traceback.
    Library callers catch it like any exception.
    """

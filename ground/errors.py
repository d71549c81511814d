"""Errors shared by every stage."""


class UserError(Exception):
    """A mistake in the user's input or options.

    The ``bertprep`` command prints it as one line and exits with code 2, no traceback.
    Library callers catch it like any exception.
    """


class DryRun(Exception):
    """A Beam ``--dry_run True`` translated the job and stopped before running it.

    Nothing ran and nothing was written; the ``bertprep`` command prints the message and exits 0.
    """

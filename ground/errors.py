"""Errors shared by every stage."""

import errno
import os


class UserError(Exception):
    """A mistake in the user's input or options.

    The ``bertprep`` command prints it as one line and exits with code 2, no traceback.
    Library callers catch it like any exception.
    """


class DryRun(Exception):
    """A Beam ``--dry_run True`` translated the job and stopped before running it.

    Nothing ran and nothing was written; the ``bertprep`` command prints the message and exits 0.
    """


_WHY = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory, a file was expected",
    errno.EEXIST: "it already exists",
    errno.ENOENT: "no such file or directory",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error that reached a command: what failed and where.

    The commands print it instead of a traceback: a full disk, a read-only or misplaced output
    are the user's to fix, not a bug of ours.
    """
    why = _WHY.get(exc.errno) or exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.EEXIST and exc.filename and os.path.isfile(exc.filename):
        why = "it is a file, a directory was expected"  # mkdir over a file
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
    return f"{where}: {why}" if where else why

"""Subprocesses for tests that can never hang the suite.

``subprocess.run(..., timeout=T)`` kills only the direct child and then waits, without a
timeout, for its pipes to close. A child that has children of its own (torchrun's ranks, Beam's
SDK worker processes) leaves them holding the pipes, and that wait never ends. Here every child
leads its own process group, and a timeout kills the whole group.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and every process in its group; reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def popen(cmd: Sequence[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` with the child leading a new process group (see ``kill_group``)."""
    return subprocess.Popen(list(cmd), start_new_session=True, **kwargs)


def run(
    cmd: Sequence[str], timeout: float = 300, capture: bool = True, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion within ``timeout`` seconds (text mode, output captured).

    Raises:
        AssertionError: the command ran past ``timeout``; its group is killed first and the
            message carries the tail of its stderr.
    """
    pipe = subprocess.PIPE if capture else None
    proc = popen(cmd, stdout=pipe, stderr=pipe, text=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate(timeout=30)
        raise AssertionError(
            f"{' '.join(map(str, cmd))} ran past {timeout} s; stderr tail:\n{(err or '')[-3000:]}"
        ) from None
    finally:
        kill_group(proc)  # also ends any stray process the child left behind in its group
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

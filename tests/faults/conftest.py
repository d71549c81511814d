"""Faults made for real: a full disk is a small tmpfs, a read-only output a read-only tmpfs.

Mounting needs root (CAP_SYS_ADMIN), which CI and this project's machines have; elsewhere the
tests that need it are skipped with that reason and can be run by hand as root. Root ignores
file modes, so "read-only" is a read-only mount, the one read-only that holds for root too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def small_disk(tmp_path):
    """``make(name, size="64k", read_only=False) -> Path``: an empty tmpfs of ``size`` mounted
    at ``tmp_path/name`` (read-only if asked); unmounted after the test."""
    mounted: list[Path] = []

    def make(name: str, size: str = "64k", read_only: bool = False) -> Path:
        where = tmp_path / name
        where.mkdir()
        opts = f"size={size},mode=0777" + (",ro" if read_only else "")
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs ({res.stderr.strip()}): needs root; run as root")
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def one_line_error(err: str, command: str) -> str:
    """The command's error line; fails when stderr holds a traceback or no such line."""
    assert "Traceback" not in err, err[-3000:]
    lines = [x for x in err.splitlines() if x.startswith(f"bertprep {command}: error:")]
    assert lines, err[-3000:]
    return lines[-1]


def leftovers(root: Path) -> list[str]:
    """Temp files and completion markers under ``root`` (none may survive a failed stage)."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name == "_SUCCESS" or p.name.endswith(".tmp") or p.name.startswith(".tmp")
    )

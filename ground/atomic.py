"""The one atomic writer of local files: temp file beside the target, fsync, rename, fsync dir.

A reader never sees a half-written file, and a failure (a full disk, an interrupt) removes the
temp file and leaves the target as it was. Everything that writes a finished local file uses
this module: shards and manifests (:mod:`sharding`), vocab and Punkt files, checkpoints, the
report, exported models. Beam-filesystem paths (``gs://``) go through :mod:`pipeline.common.fs`,
which calls :func:`atomic_path` for local paths.

Files are created mode ``0o666`` minus the process umask, as ``open()`` would create them;
``tempfile.mkstemp`` alone would leave them ``0o600`` whatever the umask, so that another user
or container could not read a shard.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    # os.umask can only be read by setting it; restore at once (single-threaded at call sites
    # that matter: the value is the same before and after).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on normal exit fsync it and rename it over ``path``.

    For writers that need a file name (h5py, ``torch.save``, matplotlib). On an exception the
    temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (parent directories created)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, no newline translation) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp directory beside ``path``; on normal exit publish it as ``path``.

    Every file in it is fsynced and gets mode ``0o666`` minus the umask (directories
    ``0o777`` minus it, whatever the writer chose), then it
    replaces ``path`` (an existing ``path`` is moved aside first and removed after). On an
    exception the temp directory is removed and ``path`` is untouched. For outputs that are
    a directory as a whole (an exported model, a saved classifier).
    """

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        mask = _umask()
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
                # writers such as safetensors create their file 0600 whatever the umask
                os.chmod(f, 0o666 & ~mask)
            elif f.is_dir():
                os.chmod(f, 0o777 & ~mask)
        os.chmod(tmp, 0o777 & ~mask)
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)

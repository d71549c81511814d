"""File access through Beam's FileSystems, so local paths, ``gs://`` and any registered scheme work.

Every stage opens its inputs and writes its outputs by path through these helpers; the pure
modules under them take file objects or bytes. The exceptions are local by nature and say so:
vocab files and Punkt parameters (the vocab stage's local output directory, see
:mod:`pipeline.vocab.files`) and the classic one-sentence-per-line format. Compression is never
applied implicitly (Beam's default would gunzip ``.gz`` and bunzip ``.bz2`` behind our back):
readers see the raw bytes and decide. Writes are atomic: local paths through
:mod:`ground.atomic` (temp + fsync + rename), other schemes a temporary name in the destination
directory, then a rename.
"""

from __future__ import annotations

import glob as _glob
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ground import atomic
from ground.errors import UserError

_RAW = CompressionTypes.UNCOMPRESSED
_COPY_CHUNK = 8 << 20  # bytes per read when copying a local file to its destination


@dataclass(frozen=True, order=True)
class InputFile:
    """One matched input file.

    ``relpath`` is the path relative to the input root (the directory part of the pattern
    before its first wildcard), ``/``-separated: it is what document ids hash, so the same
    files under ``gs://bucket/x/`` and ``/data/x/`` give the same ids.
    """

    relpath: str
    path: str
    size: int


def join(base: str, *parts: str) -> str:
    """Join path components with the separator of ``base``'s filesystem."""
    return FileSystems.join(base, *parts)


def _root_of(pattern: str) -> str:
    """Directory prefix of ``pattern`` before its first wildcard (the input root)."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    head = pattern[:cut]
    return head[: head.rfind("/") + 1] if "/" in head else ""


def expand(pattern: str, directory_glob: str | None = None) -> list[InputFile]:
    """Match ``pattern`` (a file, a glob, or a directory) and return files sorted by relpath.

    Args:
        pattern: a path or glob on any Beam filesystem.
        directory_glob: when ``pattern`` names a directory, the glob applied inside it
            (e.g. ``"*.txt"`` for books); ``None`` means a directory is an error.

    Raises:
        UserError: nothing matched, or a directory was given where a file was expected.
    """
    is_glob = any(c in pattern for c in "*?[")
    if not is_glob and (_is_local_dir(pattern) or _is_remote_prefix(pattern, directory_glob)):
        if directory_glob is None:
            raise UserError(f"{pattern} is a directory; give a file or a glob")
        pattern = pattern.rstrip("/") + "/" + directory_glob
        is_glob = True
    root = _root_of(pattern) if is_glob else pattern[: pattern.rfind("/") + 1]
    try:
        results = FileSystems.match([pattern])
    except Exception as exc:  # Beam raises BeamIOError with per-pattern causes
        raise UserError(f"cannot list {pattern}: {exc}") from None
    files = []
    for meta in results[0].metadata_list:
        path = meta.path
        rel = path[len(root) :] if path.startswith(root) else os.path.basename(path)
        if _is_local_dir(path):
            continue
        files.append(
            InputFile(relpath=rel.replace(os.sep, "/"), path=path, size=meta.size_in_bytes)
        )
    if not files:
        raise UserError(f"no input files match {pattern}")
    return sorted(files)


def _is_local_dir(path: str) -> bool:
    return "://" not in path and os.path.isdir(path)


def _is_remote_prefix(path: str, directory_glob: str | None) -> bool:
    """On object stores a "directory" is a prefix: not a file, but files under ``path/``."""
    if "://" not in path or directory_glob is None:
        return False
    return path.endswith("/") or not exists(path)


def open_read(path: str):
    """Open ``path`` for binary reading, raw bytes (no implicit decompression).

    Raises:
        OSError: as the filesystem raised it (permission denied, a missing file): callers that
            read inputs count such a file, and the commands print it as one line.
        UserError: any other failure (an unknown scheme, no credentials), as one line.
    """
    try:
        return FileSystems.open(path, compression_type=_RAW)
    except OSError:
        raise
    except Exception as exc:
        raise UserError(f"cannot open {path}: {exc}") from None


def exists(path: str) -> bool:
    """Whether ``path`` exists on its filesystem.

    Raises:
        UserError: the filesystem could not be asked (no credentials, no network, unknown
            scheme), with the path and the filesystem's own reason on one line.
    """
    try:
        return FileSystems.exists(path)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise UserError(f"cannot check {path}: {reason}") from None


def makedirs(path: str) -> None:
    """Create a directory (no-op on object stores, where directories are prefixes)."""
    if "://" in path:
        return
    os.makedirs(path, exist_ok=True)


def list_files(pattern: str) -> list[str]:
    """Paths matching ``pattern``, sorted; an empty list when nothing matches."""
    if "://" not in pattern:
        return sorted(p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p))
    try:
        result = FileSystems.match([pattern])
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise UserError(f"cannot list {pattern}: {reason}") from None
    return sorted(m.path for m in result[0].metadata_list)


def stale_temps(directory: str) -> list[str]:
    """Temp files an interrupted write left in ``directory`` (``.NAME.*.tmp`` of
    :mod:`ground.atomic`, ``.NAME.tmp-*`` of this module): hidden, so ``*`` never lists them,
    and a stage that clears its output directory must delete them too."""
    pattern = join(directory, ".*.tmp*")
    if "://" not in pattern:
        return sorted(p for p in _glob.glob(pattern) if os.path.isfile(p))
    return [p for p in list_files(pattern) if split_name(p).startswith(".")]


def split_name(path: str) -> str:
    """The last component of ``path``."""
    return FileSystems.split(path)[1]


def delete(paths: list[str]) -> None:
    """Delete files that exist; missing ones are ignored."""
    present = [p for p in paths if exists(p)]
    if present:
        FileSystems.delete(present)


def _tmp_name(path: str) -> str:
    head, tail = FileSystems.split(path)
    return FileSystems.join(head, f".{tail}.tmp-{uuid.uuid4().hex[:12]}")


def write_bytes(path: str, data: bytes) -> None:
    """Atomically write ``data`` to ``path`` (temporary name, then rename)."""
    if "://" not in path:
        atomic.write_bytes(path, data)
        return
    tmp = _tmp_name(path)
    with FileSystems.create(tmp, compression_type=_RAW) as out:
        out.write(data)
    _replace(tmp, path)


def publish_local(local_path: str, path: str) -> None:
    """Copy a finished local file to ``path`` atomically, then remove the local file.

    Writers that need a seekable local file (Parquet, HDF5) write to a local temporary file
    and publish it with this function.
    """
    if "://" not in path:
        try:
            with atomic.atomic_path(path) as tmp:
                shutil.move(local_path, tmp)
        except BaseException:
            Path(local_path).unlink(missing_ok=True)  # a full disk must not leave it in /tmp
            raise
        return
    tmp = _tmp_name(path)
    with open(local_path, "rb") as src, FileSystems.create(tmp, compression_type=_RAW) as out:
        while chunk := src.read(_COPY_CHUNK):
            out.write(chunk)
    os.unlink(local_path)
    _replace(tmp, path)


def move(src: str, dst: str) -> None:
    """Rename a finished file ``src`` to ``dst`` (replacing it), on the same filesystem."""
    if "://" not in dst:
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    _replace(src, dst)


def _replace(tmp: str, path: str) -> None:
    if "://" not in path:
        os.replace(tmp, path)
        return
    if exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])

"""Training checkpoints: atomic writes, ``weights_only`` loads, keep-last-K rotation, RNG state.

A checkpoint is one ``torch.save`` file holding a dict of tensors and plain Python values only
(dict, list, tuple, str, int, float, bool, None), so ``torch.load(path, weights_only=True)``
reads it without unpickling arbitrary objects. Keys written by :func:`make_state`:

``format_version``, ``step``, ``phase``, ``config`` (dict), ``model``, ``optimizer``,
``scheduler``, ``scaler``, ``sampler`` (state dicts, ``None`` when absent) and ``rng``.

Files are ``ckpt-{step:08d}.pt`` in one directory; the newest is the highest step. Each has a
sidecar ``ckpt-{step:08d}.pt.sha256`` (``sha256sum`` format) written before the checkpoint is
renamed into place; :func:`load_checkpoint` checks it, because torch's zip format does not:
flipped bytes inside a tensor load silently as garbage weights or optimizer moments.
A checkpoint without a sidecar (older bertprep) loads with a warning.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import random
import re
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from ground.atomic import atomic_path, write_text
from ground.errors import UserError

FORMAT_VERSION = 1
LOW_DISK_BYTES = 64 << 20  # a failed write with less free space than this was a full disk
REQUIRED_KEYS = ("format_version", "step", "phase", "model")
_NAME = re.compile(r"^ckpt-(\d{8,})\.pt$")
_PLAIN = (str, int, float, bool, type(None))


def _check_plain(obj, where: str = "state") -> None:
    """Raise TypeError if ``obj`` holds anything but tensors and plain containers/values."""
    if isinstance(obj, (torch.Tensor, *_PLAIN)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
    else:
        raise TypeError(f"{where}: {type(obj).__name__} would need pickle; convert it first")


def rng_state() -> dict:
    """Python, NumPy, torch CPU and (if present) CUDA generator states as plain values/tensors."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_state(*, step: int, phase: int, config: dict, model, optimizer=None, scheduler=None,
               scaler=None, sampler=None, with_rng: bool = True) -> dict:  # fmt: skip
    """The checkpoint dict from live objects (anything with ``state_dict()``, or ``None``).

    ``model`` may be wrapped by DDP or ``torch.compile``; its unwrapped keys are saved so a
    checkpoint loads into a bare ``BertForPreTraining``.
    """
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    state = {
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "phase": int(phase),
        "config": dict(config),
        "model": model.state_dict(),
    }
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler),
                     ("sampler", sampler)):  # fmt: skip
        state[key] = None if obj is None else obj.state_dict()
    state["rng"] = rng_state() if with_rng else None
    return state


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` atomically: temp file in the same directory, fsync, rename.

    Raises:
        TypeError: ``state`` holds a value that ``weights_only`` loading would reject.
    """
    _check_plain(state)
    path = Path(path)
    side = sidecar_path(path)
    previous = side.read_text(encoding="utf-8") if side.is_file() else None
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                _torch_save(state, f, path)
            # The sidecar lands first: a crash before the rename leaves a sidecar without its
            # checkpoint (ignored, rotated away), never a new checkpoint without its checksum.
            write_text(side, f"{file_sha256(tmp)}  {path.name}\n")
    except BaseException:
        # The checkpoint in place is the previous one (or none): so must its sidecar be.
        if previous is None:
            side.unlink(missing_ok=True)
        else:
            write_text(side, previous)
        raise


def _torch_save(state: dict, f, path: Path) -> None:
    """``torch.save`` whose failure to write says why: torch reports a full disk as a
    RuntimeError ("enforce fail ... unexpected pos"), never naming the disk."""
    try:
        torch.save(state, f)
    except RuntimeError as exc:
        free = shutil.disk_usage(path.parent).free
        code = errno.ENOSPC if free < LOW_DISK_BYTES else errno.EIO
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OSError(
            code, f"writing the checkpoint failed ({first}); {free} bytes free", str(path)
        ) from None


def sidecar_path(path: str | os.PathLike) -> Path:
    """``ckpt-N.pt`` -> ``ckpt-N.pt.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def file_sha256(path: str | os.PathLike, block: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(block):
            digest.update(piece)
    return digest.hexdigest()


def verify_checkpoint(path: str | os.PathLike) -> str | None:
    """Why ``path`` fails its sha256 sidecar, or ``None`` (good, or no sidecar to check)."""
    path, side = Path(path), sidecar_path(path)
    if not side.is_file():
        return None
    try:
        want = side.read_text(encoding="utf-8").split()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return f"{side.name} is unreadable"
    if file_sha256(path) != want:
        return f"sha256 differs from {side.name}: the file is corrupt"
    return None


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``.

    Raises:
        UserError: missing file, corrupt or truncated file, unsafe content, missing keys or
            a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path}: no such file")
    problem = verify_checkpoint(path)
    if problem:
        raise UserError(f"checkpoint {path}: {problem}{_newest_good_hint(path)}")
    if not sidecar_path(path).is_file():
        print(f"checkpoint {path}: no .sha256 sidecar, loaded unverified", file=sys.stderr)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):  # not a pickled object: garbage bytes
            found = re.search(r"Unpickler error:\s*(.+)", str(e))
            why = found.group(1).strip() if found else ""
            raise UserError(
                f"checkpoint {path}: corrupt or not a checkpoint ({why or 'unreadable'})"
            ) from None
        # torch's message goes on to suggest weights_only=False: never for a file we did not
        # write; say what was refused and stop there.
        raise UserError(
            f"checkpoint {path}: refused: it holds pickled Python objects, which bertprep never "
            "loads (a bertprep checkpoint holds only tensors and plain values)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {path}: corrupt or not a checkpoint ({first})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise UserError(f"checkpoint {path}: missing keys, expected at least {REQUIRED_KEYS}")
    if state["format_version"] > FORMAT_VERSION:
        raise UserError(
            f"checkpoint {path}: format version {state['format_version']} is newer than "
            f"this bertprep ({FORMAT_VERSION})"
        )
    return state


def _newest_good_hint(bad: Path) -> str:
    """'; the newest good checkpoint is X: ...' for a corrupt checkpoint in a ckpt directory."""
    for _, p in reversed(list_checkpoints(bad.parent)):
        if p != bad and verify_checkpoint(p) is None and sidecar_path(p).is_file():
            return f"; the newest good checkpoint is {p}: resume from it with --resume {p}"
    return "; no other verified checkpoint in its directory"


def checkpoint_path(directory: str | os.PathLike, step: int) -> Path:
    """``directory/ckpt-{step:08d}.pt``."""
    return Path(directory) / f"ckpt-{step:08d}.pt"


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of the checkpoints in ``directory``, oldest first (temp files ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """Path of the highest-step checkpoint, or ``None``."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def save_and_rotate(directory: str | os.PathLike, state: dict, keep_last: int) -> Path:
    """Save ``state`` as ``ckpt-{step}.pt`` and delete all but the newest ``keep_last`` files.

    The new file is complete on disk before any old one is removed, so a crash at any point
    leaves at least one loadable checkpoint.
    """
    if keep_last < 1:
        raise UserError(f"--keep-last must be >= 1, got {keep_last}")
    path = checkpoint_path(directory, state["step"])
    save_checkpoint(path, state)
    for _, old in list_checkpoints(directory)[:-keep_last]:
        old.unlink(missing_ok=True)
        sidecar_path(old).unlink(missing_ok=True)
    return path

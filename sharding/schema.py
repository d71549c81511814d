"""The shard schema: NVIDIA's BERT pretraining HDF5 layout, plus a few file attributes.

One shard is one HDF5 file holding N instances padded to L tokens and P masked positions:

=======================  ======  ======  ===============================================
dataset                  dtype   shape   meaning
=======================  ======  ======  ===============================================
``input_ids``            int32   [N, L]  ``[CLS] A [SEP] B [SEP]`` token ids, 0-padded
``input_mask``           int8    [N, L]  1 on real tokens, then 0 on padding
``segment_ids``          int8    [N, L]  0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``, 0 on padding
``masked_lm_positions``  int32   [N, P]  sorted positions of masked tokens, 0-padded
``masked_lm_ids``        int32   [N, P]  original token ids at those positions, 0-padded
``next_sentence_labels`` int8    [N]     1 = B is a random next (from another document)
=======================  ======  ======  ===============================================

This is exactly what NVIDIA's ``create_pretraining_data.py`` writes and what their
``run_pretraining.py`` (and DeepSpeed's BERT example) read. Their loader finds the number of
masked tokens as the index of the first 0 in ``masked_lm_positions``; position 0 always holds
``[CLS]``, which is never masked, so 0 is free to mean padding.

**Unmasked variant** (``--unmasked``, for dynamic masking in the loader): the two
``masked_lm_*`` datasets are *absent* and the file attribute ``masked`` is false. We chose
absence over P = 0 columns so that a foreign loader expecting static masks fails loudly on the
missing key instead of silently training without an MLM loss.

File attributes (on the root group; foreign NVIDIA shards have none and are inferred from
shapes): ``bertprep_schema_version`` (:data:`SCHEMA_VERSION`), ``seq_length`` (L),
``max_predictions`` (P, 0 when unmasked), ``masked`` (bool), ``nsp`` (bool: false for MLM-only
shards whose instances have one segment and label 0).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ground.errors import UserError

SCHEMA_VERSION = 1

INPUT_IDS = "input_ids"
INPUT_MASK = "input_mask"
SEGMENT_IDS = "segment_ids"
MASKED_LM_POSITIONS = "masked_lm_positions"
MASKED_LM_IDS = "masked_lm_ids"
NEXT_SENTENCE_LABELS = "next_sentence_labels"

ROW_KEYS = (INPUT_IDS, INPUT_MASK, SEGMENT_IDS)  # [N, L]
MASK_KEYS = (MASKED_LM_POSITIONS, MASKED_LM_IDS)  # [N, P]
ALL_KEYS = ROW_KEYS + MASK_KEYS + (NEXT_SENTENCE_LABELS,)  # NVIDIA's loader order

DTYPES: dict[str, np.dtype] = {
    INPUT_IDS: np.dtype(np.int32),
    INPUT_MASK: np.dtype(np.int8),
    SEGMENT_IDS: np.dtype(np.int8),
    MASKED_LM_POSITIONS: np.dtype(np.int32),
    MASKED_LM_IDS: np.dtype(np.int32),
    NEXT_SENTENCE_LABELS: np.dtype(np.int8),
}

ATTR_SCHEMA_VERSION = "bertprep_schema_version"
ATTR_SEQ_LENGTH = "seq_length"
ATTR_MAX_PREDICTIONS = "max_predictions"
ATTR_MASKED = "masked"
ATTR_NSP = "nsp"

TRAINING = "training"
VALIDATION = "validation"
SHARD_SUFFIXES = (".hdf5", ".h5")


class SchemaError(UserError):
    """Arrays or a file that do not follow the shard schema."""


@dataclass(frozen=True)
class ShardMeta:
    """Shape facts of one shard: N instances, L tokens, P masked slots (0 when unmasked)."""

    count: int
    seq_length: int
    max_predictions: int
    masked: bool
    nsp: bool | None = None  # None: unknown (a foreign shard without our attributes)


def keys_for(masked: bool) -> tuple[str, ...]:
    """Datasets a shard holds: all six when masked, the four non-``masked_lm_*`` ones otherwise."""
    return ALL_KEYS if masked else tuple(k for k in ALL_KEYS if k not in MASK_KEYS)


def shard_name(split: str, index: int) -> str:
    """File name of shard ``index`` of ``split``: ``shard_training_00003.hdf5``.

    NVIDIA's runner reads every file whose name contains ``training``; validation shards are
    named ``shard_validation_NNNNN.hdf5`` so they never match that rule.
    """
    if split not in (TRAINING, VALIDATION):
        raise ValueError(f"split must be {TRAINING!r} or {VALIDATION!r}, not {split!r}")
    if index < 0:
        raise ValueError(f"shard index must be >= 0, got {index}")
    return f"shard_{split}_{index:05d}.hdf5"


def split_of(name: str) -> str | None:
    """Split a shard file belongs to by its name, NVIDIA's rule first.

    ``training`` anywhere in the name -> training; else ``validation``, ``test`` or ``eval`` as
    a name component (NVIDIA names held-out shards ``*_test_*``) -> validation; else None.
    """
    if not name.endswith(SHARD_SUFFIXES):
        return None
    if TRAINING in name:
        return TRAINING
    if re.search(r"(^|[_.\-])(validation|test|eval)([_.\-]|$)", name):
        return VALIDATION
    return None


def natural_key(name: str) -> tuple:
    """Sort key that orders ``x_2`` before ``x_10`` (foreign shards are not zero-padded)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def empty_arrays(count: int, seq_length: int, max_predictions: int, masked: bool = True):
    """Zero-filled arrays for ``count`` instances with the schema's dtypes and shapes.

    Returns a dict key -> array: [count, seq_length] for row keys, [count, max_predictions]
    for ``masked_lm_*`` (absent when ``masked`` is false), [count] for the NSP labels.
    """
    shapes = {k: (count, seq_length) for k in ROW_KEYS}
    shapes.update({k: (count, max_predictions) for k in MASK_KEYS})
    shapes[NEXT_SENTENCE_LABELS] = (count,)
    return {k: np.zeros(shapes[k], DTYPES[k]) for k in keys_for(masked)}


def validate_arrays(arrays: Mapping[str, np.ndarray], *, nsp: bool | None = None) -> ShardMeta:
    """Check keys, exact dtypes and consistent shapes; return the shard's :class:`ShardMeta`.

    Content (ids, masks, positions) is checked by :mod:`sharding.verify`; this is the cheap
    structural check every write goes through. Raises :class:`SchemaError` naming the key.
    """
    keys = set(arrays)
    has_mask = [k in keys for k in MASK_KEYS]
    if any(has_mask) and not all(has_mask):
        raise SchemaError(f"{MASK_KEYS[0]} and {MASK_KEYS[1]} must be both present or both absent")
    masked = all(has_mask)
    expected = set(keys_for(masked))
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        raise SchemaError(f"wrong datasets: missing {missing}, unexpected {extra}")
    for key in expected:
        got = np.asarray(arrays[key]).dtype
        if got != DTYPES[key]:
            raise SchemaError(f"{key}: dtype {got}, the schema needs {DTYPES[key]}")
    ids = arrays[INPUT_IDS]
    if ids.ndim != 2:
        raise SchemaError(f"{INPUT_IDS}: shape {ids.shape}, expected [N, L]")
    count, seq_length = ids.shape
    max_pred = arrays[MASKED_LM_POSITIONS].shape[1] if masked else 0
    for key in expected:
        want = {NEXT_SENTENCE_LABELS: (count,)}.get(
            key, (count, max_pred) if key in MASK_KEYS else (count, seq_length)
        )
        if arrays[key].ndim != len(want) or tuple(arrays[key].shape) != want:
            raise SchemaError(f"{key}: shape {tuple(arrays[key].shape)}, expected {want}")
    return ShardMeta(count, seq_length, max_pred, masked, nsp)


def meta_from_file(f, name: str = "") -> ShardMeta:
    """:class:`ShardMeta` of an open ``h5py.File``: from our attributes or, if absent, shapes."""
    masked = all(k in f for k in MASK_KEYS)
    for key in keys_for(masked):
        if key not in f:
            raise SchemaError(f"{name or f.filename}: dataset {key!r} is missing")
    shape = f[INPUT_IDS].shape
    if len(shape) != 2:
        raise SchemaError(f"{name or f.filename}: {INPUT_IDS} has shape {shape}, expected [N, L]")
    max_pred = f[MASKED_LM_POSITIONS].shape[1] if masked and f[MASKED_LM_POSITIONS].ndim == 2 else 0
    nsp = bool(f.attrs[ATTR_NSP]) if ATTR_NSP in f.attrs else None
    return ShardMeta(int(shape[0]), int(shape[1]), int(max_pred), masked, nsp)

"""Verify a shard directory: schema, content and the manifest's counts and checksums.

Every problem names its file (shard, ``manifest.json`` or ``vocab.txt``) and, for content,
the first bad row and how many rows share the problem. Content rules (per instance, with
``n`` = masked count by NVIDIA's first-zero rule and "original" ids = stored ids with the
masked labels put back):

- ``input_mask`` is 1...1 0...0 starting with 1; padding ids, segments, positions are 0;
- ids lie in [0, vocab size); no ``[PAD]`` among real tokens; unmasked shards hold no ``[MASK]``;
- original ids: ``[CLS]`` first and only there, ``[SEP]`` last, two ``[SEP]`` with NSP and one
  without; segment ids 0 through the first ``[SEP]`` and 1 after it (all 0 without NSP);
- masked positions strictly increasing in [1, length); labels are not ``[PAD]``/``[CLS]``/
  ``[SEP]``/``[MASK]`` (the *stored* id at a masked position may be anything: Google's classic
  random replacement can even draw a special token);
- NSP labels are 0 or 1 (0 without NSP).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ground.errors import UserError
from sharding import manifest as mf
from sharding import schema
from sharding.reader import ShardReader
from sharding.vocab import Vocab, load_vocab
from sharding.writer import file_sha256

BLOCK_ROWS = 1 << 13  # rows checked at once: bounds memory (~100 MB at L=512) for huge shards


@dataclass(frozen=True)
class Problem:
    """One verification failure: the file it concerns and what is wrong."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


def _rows(bad: np.ndarray, offset: int, what: str) -> str | None:
    rows = np.flatnonzero(bad)
    if rows.size == 0:
        return None
    more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
    return f"row {rows[0] + offset}{more}: {what}"


def check_arrays(
    arrays: dict[str, np.ndarray], vocab: Vocab | None, nsp: bool, offset: int = 0
) -> list[str]:
    """Content problems of a block of rows (keys/dtypes/shapes already checked).

    Args:
        arrays: schema arrays of rows ``offset ...``; ``masked_lm_*`` absent when unmasked.
        vocab: token-level checks are skipped when None.
        nsp: whether instances are ``[CLS] A [SEP] B [SEP]`` (else ``[CLS] A [SEP]``).
    Returns problem messages ("row R (and K more rows): what").
    """
    ids = arrays[schema.INPUT_IDS].astype(np.int64)
    mask = arrays[schema.INPUT_MASK].astype(np.int64)
    seg = arrays[schema.SEGMENT_IDS].astype(np.int64)
    nsp_labels = arrays[schema.NEXT_SENTENCE_LABELS].astype(np.int64)
    count, seq_len = ids.shape
    col = np.arange(seq_len)
    length = mask.sum(1)
    real = col[None, :] < length[:, None]
    found = [
        _rows(~np.isin(mask, (0, 1)).all(1), offset, "input_mask values other than 0/1"),
        _rows((mask != real).any(1) | (length == 0), offset, "input_mask is not 1...1 0...0"),
        _rows(((ids != 0) & ~real).any(1), offset, "non-zero input_ids in padding"),
        _rows(~np.isin(seg, (0, 1)).all(1), offset, "segment_ids values other than 0/1"),
        _rows(((seg != 0) & ~real).any(1), offset, "non-zero segment_ids in padding"),
        _rows(~np.isin(nsp_labels, (0, 1) if nsp else (0,)), offset, "bad next_sentence_labels"),
    ]
    if vocab is not None:
        found.append(
            _rows(
                ((ids < 0) | (ids >= vocab.size)).any(1), offset, f"ids outside [0, {vocab.size})"
            )
        )
    original = ids.copy()
    if schema.MASKED_LM_POSITIONS in arrays:
        pos = arrays[schema.MASKED_LM_POSITIONS].astype(np.int64)
        labels = arrays[schema.MASKED_LM_IDS].astype(np.int64)
        max_pred = pos.shape[1]
        is_zero = pos == 0
        n = np.where(is_zero.any(1), is_zero.argmax(1), max_pred)
        used = np.arange(max_pred)[None, :] < n[:, None]
        in_range = (pos >= 1) & (pos < length[:, None])
        bad_pos = (used & ~in_range).any(1)
        bad_order = (used[:, 1:] & (np.diff(pos, axis=1) <= 0)).any(1)
        found += [
            _rows(bad_pos, offset, "masked position outside [1, length)"),
            _rows(bad_order, offset, "masked positions not strictly increasing"),
            _rows(
                (~used & ((pos != 0) | (labels != 0))).any(1),
                offset,
                "masked_lm padding is not 0 after the first 0 position",
            ),
        ]
        if vocab is not None:
            bad_label = used & (
                np.isin(labels, [vocab.pad, vocab.cls, vocab.sep, vocab.mask])
                | (labels < 0)
                | (labels >= vocab.size)
            )
            found.append(_rows(bad_label.any(1), offset, "masked label is a special or bad id"))
        ok = ~bad_pos
        rr, cc = np.nonzero(used & ok[:, None])
        original[rr, pos[rr, cc]] = labels[rr, cc]
    elif vocab is not None:
        found.append(_rows(((ids == vocab.mask) & real).any(1), offset, "[MASK] in unmasked shard"))
    if vocab is not None:
        found += _structure(original, seg, real, length, vocab, nsp, offset)
    return [p for p in found if p]


def _structure(original, seg, real, length, vocab: Vocab, nsp: bool, offset: int) -> list:
    rows = np.arange(len(length))
    last = original[rows, np.maximum(length - 1, 0)]
    is_sep = (original == vocab.sep) & real
    first_sep = np.where(is_sep.any(1), is_sep.argmax(1), length)
    col = np.arange(original.shape[1])[None, :]
    want_seg = ((col > first_sep[:, None]) & real) if nsp else np.zeros_like(real)
    return [
        _rows(original[:, 0] != vocab.cls, offset, "does not start with [CLS]"),
        _rows(((original == vocab.cls) & real).sum(1) != 1, offset, "[CLS] appears more than once"),
        _rows(last != vocab.sep, offset, "does not end with [SEP]"),
        _rows(is_sep.sum(1) != (2 if nsp else 1), offset, f"not {2 if nsp else 1} [SEP] tokens"),
        _rows(((original == vocab.pad) & real).any(1), offset, "[PAD] among real tokens"),
        _rows((seg != want_seg).any(1), offset, "segment_ids do not match the [SEP] layout"),
    ]


def verify_shard(
    path: Path,
    vocab: Vocab | None,
    *,
    expected: mf.ShardEntry | None = None,
    manifest: dict | None = None,
    nsp: bool | None = None,
) -> list[Problem]:
    """Problems of one shard file: structure, content, and the manifest entry if given."""
    name = path.name
    if not path.is_file():
        return [Problem(name, "missing" + (" (listed in manifest.json)" if expected else ""))]
    checksum: list[Problem] = []
    if expected is not None and file_sha256(path) != expected.sha256:
        checksum.append(Problem(name, "sha256 does not match manifest.json (corrupt or replaced)"))
    problems: list[Problem] = []
    try:
        with h5py.File(path, "r") as f:
            meta = schema.meta_from_file(f, name)
            for key in schema.keys_for(meta.masked):
                if f[key].dtype != schema.DTYPES[key]:
                    problems.append(
                        Problem(name, f"{key} has dtype {f[key].dtype}, needs {schema.DTYPES[key]}")
                    )
            extra = sorted(set(f.keys()) - set(schema.keys_for(meta.masked)))
            if extra:
                problems.append(Problem(name, f"unexpected datasets {extra}"))
            shapes = {k: f[k].shape for k in schema.keys_for(meta.masked)}
    except (OSError, schema.SchemaError) as exc:
        return checksum + [Problem(name, f"unreadable or not in the schema: {exc}")]
    want = {k: (meta.count, meta.seq_length) for k in schema.ROW_KEYS}
    want.update({k: (meta.count, meta.max_predictions) for k in schema.MASK_KEYS})
    want[schema.NEXT_SENTENCE_LABELS] = (meta.count,)
    for key, shape in shapes.items():
        if tuple(shape) != want[key]:
            problems.append(Problem(name, f"{key} has shape {tuple(shape)}, expected {want[key]}"))
    if manifest is not None:
        for attr in ("seq_length", "max_predictions", "masked"):
            if getattr(meta, attr) != manifest[attr]:
                problems.append(
                    Problem(name, f"{attr} {getattr(meta, attr)} != manifest's {manifest[attr]}")
                )
    if problems:  # wrong dtypes, shapes or config: content checks would only add noise
        return checksum + problems
    if expected is not None and meta.count != expected.count:
        checksum.append(
            Problem(name, f"{meta.count} instances, manifest.json says {expected.count}")
        )
    problems = checksum
    use_nsp = nsp if nsp is not None else (meta.nsp if meta.nsp is not None else True)
    reader = ShardReader(path)
    for start in range(0, meta.count, BLOCK_ROWS):
        try:
            block = reader.read_rows(start, min(meta.count, start + BLOCK_ROWS))
        except (OSError, UserError) as exc:  # a damaged chunk: gzip or checksum failure
            return problems + [Problem(name, f"rows from {start} unreadable: {exc}")]
        problems += [Problem(name, m) for m in check_arrays(block, vocab, use_nsp, start)]
    return problems


def _listed(directory: Path, manifest: dict | None) -> list[tuple[str, mf.ShardEntry | None]]:
    if manifest is not None:
        return [(e.file, e) for e in mf.entries(manifest)]
    names = [p.name for p in directory.iterdir() if p.is_file() and schema.split_of(p.name)]
    return [(n, None) for n in sorted(names, key=schema.natural_key)]


def verify_listing(path: Path, entry: mf.ShardEntry | None) -> list[Problem]:
    """The cheap check of one listed shard: present, and its size and sha256 as listed.

    Reads each file once (for the hash) and never opens it as HDF5.
    """
    if not path.is_file():
        return [Problem(path.name, "missing" + (" (listed in manifest.json)" if entry else ""))]
    if entry is None:
        return []
    size = path.stat().st_size
    if size != entry.bytes:
        return [Problem(path.name, f"{size} bytes, manifest.json says {entry.bytes}")]
    if file_sha256(path) != entry.sha256:
        return [Problem(path.name, "sha256 does not match manifest.json (corrupt or replaced)")]
    return []


def verify_dir(
    directory: str | os.PathLike, vocab_path: str | None = None, *, listing_only: bool = False
) -> list[Problem]:
    """Every problem of a shard directory (empty list = valid).

    Uses ``DIR/manifest.json`` when present (counts, checksums, config agreement, stray
    shards) and ``vocab_path`` or ``DIR/vocab.txt`` for id checks. ``listing_only``: what ties
    the directory together (every listed shard present with its size and sha256, no stray
    shard, vocab and tokenizer checksums), without reading shard content; the pipeline runs
    it after workers have verified each shard's content as they wrote it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"shard directory {directory} does not exist")
    problems: list[Problem] = []
    try:
        manifest = mf.load_manifest(directory)
    except UserError as exc:
        return [Problem(mf.MANIFEST_NAME, str(exc))]
    vocab_file = Path(vocab_path) if vocab_path else directory / mf.VOCAB_NAME
    vocab = None
    if vocab_file.is_file():
        vocab = load_vocab(vocab_file)
        if manifest is not None:
            info = mf.vocab_info(vocab_file)
            for key in ("sha256", "size"):
                if manifest["vocab"].get(key) != info[key]:
                    problems.append(Problem(vocab_file.name, f"{key} differs from manifest.json"))
    else:
        problems.append(Problem(vocab_file.name, "missing: id checks need the vocab (--vocab)"))
    tokenizer = directory / mf.TOKENIZER_NAME
    if manifest is not None and not tokenizer.is_file():
        problems.append(Problem(mf.TOKENIZER_NAME, "missing"))
    elif manifest is not None and "tokenizer" in manifest:
        if file_sha256(tokenizer) != manifest["tokenizer"].get("sha256"):
            problems.append(Problem(mf.TOKENIZER_NAME, "sha256 differs from manifest.json"))
    listed = _listed(directory, manifest)
    if not listed:
        problems.append(Problem(str(directory), "no shards"))
    names = {n for n, _ in listed}
    for p in sorted(directory.iterdir()):
        if p.suffix in schema.SHARD_SUFFIXES and p.name not in names:
            why = (
                "shard file not listed in manifest.json"
                if manifest is not None
                else "ignored: the name has neither 'training' nor 'validation'/'test'"
            )
            problems.append(Problem(p.name, why))
    nsp = manifest["nsp"] if manifest is not None else None
    lengths: dict[int, str] = {}
    if listing_only:
        for name, entry in listed:
            problems += verify_listing(directory / name, entry)
        return problems
    for name, entry in listed:
        problems += verify_shard(
            directory / name, vocab, expected=entry, manifest=manifest, nsp=nsp
        )
        if (directory / name).is_file():
            try:
                lengths.setdefault(ShardReader(directory / name).meta.seq_length, name)
            except UserError:
                pass
    if len(lengths) > 1:
        shown = ", ".join(f"{length} ({n})" for length, n in sorted(lengths.items()))
        problems.append(Problem(str(directory), f"mixed seq lengths in one directory: {shown}"))
    return problems

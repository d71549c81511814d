"""Read shards: one file (:class:`ShardReader`), a directory (:class:`ShardSet`), one instance.

The runner loads like NVIDIA's: a whole shard in memory at a time (:meth:`ShardReader.read_all`).
Readers hold no open HDF5 handle between calls, so they can be pickled to and used in forked
DataLoader workers (an h5py handle inherited across ``fork`` is not safe to use).

A directory is described by its ``manifest.json`` when present; a foreign directory in NVIDIA's
schema (no manifest) is listed by NVIDIA's name rule (``training`` in the name) and checked for
consistent shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ground.errors import UserError
from sharding import manifest as mf
from sharding import schema
from sharding.writer import file_sha256


class ShardReader:
    """One shard file, opened only while a call runs (fork- and pickle-safe)."""

    def __init__(self, path: str | os.PathLike, sha256: str | None = None):
        self.path = Path(path)
        self.sha256 = sha256  # the manifest's, when the directory has one
        self._meta: schema.ShardMeta | None = None
        self._verified = False

    def verify(self) -> None:
        """Check the file against the manifest's sha256 once (a no-op without one).

        :class:`UserError` for a mismatch: a shard corrupted or replaced after it was written
        would otherwise be read as data (gzip only checks its own frames).
        """
        if self._verified or self.sha256 is None:
            return
        if file_sha256(self.path) != self.sha256:
            raise UserError(
                f"shard {self.path.name}: sha256 differs from manifest.json, the file is corrupt "
                f"or was replaced ({self.path}); `bertprep shards verify "
                f"{self.path.parent}` lists every problem"
            )
        self._verified = True

    def _open(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r")
        except FileNotFoundError:
            raise UserError(f"shard {self.path.name} is missing ({self.path})") from None
        except OSError as exc:
            raise UserError(f"shard {self.path.name} is not a readable HDF5 file: {exc}") from None

    @property
    def meta(self) -> schema.ShardMeta:
        """Count, L, P, masked and NSP flags (read once from the file's metadata)."""
        if self._meta is None:
            with self._open() as f:
                self._meta = schema.meta_from_file(f, self.path.name)
        return self._meta

    def __len__(self) -> int:
        return self.meta.count

    def read_all(self, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Every dataset of the shard in memory: key -> array with the schema's shape and dtype.

        ``keys`` limits the read (e.g. ``("input_mask",)`` for instance lengths only).
        """
        return self.read_rows(0, len(self), keys)

    def read_rows(
        self, start: int, stop: int, keys: tuple[str, ...] | None = None
    ) -> dict[str, np.ndarray]:
        """Instances ``[start, stop)`` of every dataset (or of ``keys``)."""
        available = schema.keys_for(self.meta.masked)
        keys = available if keys is None else tuple(keys)
        missing = [k for k in keys if k not in available]
        if missing:
            raise schema.SchemaError(f"{self.path.name}: no dataset {missing[0]!r}")
        with self._open() as f:
            try:
                return {k: f[k][start:stop] for k in keys}
            except (OSError, ValueError) as exc:  # a damaged chunk: gzip or checksum failure
                raise UserError(
                    f"shard {self.path.name}: rows {start}..{stop - 1} are unreadable ({exc}); "
                    f"the file is corrupt (`bertprep shards verify {self.path.parent}`)"
                ) from None

    def __repr__(self) -> str:
        return f"ShardReader({str(self.path)!r})"


@dataclass
class ShardSet:
    """The shards of one directory, split into training and validation, in a stable order.

    Build with :meth:`open`. ``manifest`` is None for a foreign directory without one.
    """

    directory: Path
    training: list[ShardReader]
    validation: list[ShardReader]
    seq_length: int
    max_predictions: int
    masked: bool
    nsp: bool | None
    vocab_size: int | None
    manifest: dict | None = None
    ignored: list[str] = field(default_factory=list)  # files that look like no shard of ours

    @classmethod
    def open(cls, directory: str | os.PathLike) -> ShardSet:
        """List and check a shard directory; :class:`UserError` for a missing shard or
        mixed seq lengths / max predictions / masked flags."""
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"shard directory {directory} does not exist")
        manifest = mf.load_manifest(directory)
        ignored: list[str] = []
        if manifest is not None:
            names = {s: [e.file for e in mf.entries(manifest, s)] for s in mf.schema_splits()}
            for name in names[schema.TRAINING] + names[schema.VALIDATION]:
                if not (directory / name).is_file():
                    raise UserError(
                        f"shard {name} is listed in {directory / mf.MANIFEST_NAME} but missing"
                    )
        else:
            names = {schema.TRAINING: [], schema.VALIDATION: []}
            for path in sorted(directory.iterdir(), key=lambda p: schema.natural_key(p.name)):
                split = schema.split_of(path.name) if path.is_file() else None
                if split is None:
                    if path.suffix in schema.SHARD_SUFFIXES:
                        ignored.append(path.name)
                    continue
                names[split].append(path.name)
        sums = {e.file: e.sha256 for e in mf.entries(manifest)} if manifest is not None else {}
        readers = {s: [ShardReader(directory / n, sums.get(n)) for n in names[s]] for s in names}
        all_readers = readers[schema.TRAINING] + readers[schema.VALIDATION]
        if not all_readers:
            raise UserError(f"{directory}: no shards (no manifest.json and no *training*.hdf5)")
        metas = {r.path.name: r.meta for r in all_readers}
        _check_uniform(directory, metas, manifest)
        first = next(iter(metas.values()))
        nsp = manifest["nsp"] if manifest is not None else first.nsp
        return cls(
            directory=directory,
            training=readers[schema.TRAINING],
            validation=readers[schema.VALIDATION],
            seq_length=first.seq_length,
            max_predictions=first.max_predictions,
            masked=first.masked,
            nsp=nsp,
            vocab_size=_vocab_size(directory, manifest),
            manifest=manifest,
            ignored=ignored,
        )

    def counts(self, split: str = schema.TRAINING) -> list[int]:
        """Instances per shard of ``split``, in shard order."""
        return [len(r) for r in (self.training if split == schema.TRAINING else self.validation)]


def _check_uniform(directory: Path, metas: dict[str, schema.ShardMeta], manifest) -> None:
    # One directory = one phase: a loader batches rows of every shard together.
    for attr, label in (
        ("seq_length", "seq length"),
        ("max_predictions", "max predictions"),
        ("masked", "masked flag"),
    ):
        values = {}
        for name, meta in metas.items():
            values.setdefault(getattr(meta, attr), name)
        if manifest is not None:
            values.setdefault(manifest[attr], mf.MANIFEST_NAME)
        if len(values) > 1:
            shown = ", ".join(f"{v} ({n})" for v, n in values.items())
            raise UserError(f"{directory}: mixed {label}s in one directory: {shown}")


def _vocab_size(directory: Path, manifest) -> int | None:
    if manifest is not None and "size" in manifest["vocab"]:
        return int(manifest["vocab"]["size"])
    vocab = directory / mf.VOCAB_NAME
    return mf.vocab_info(vocab)["size"] if vocab.is_file() else None


@dataclass(frozen=True)
class Instance:
    """One decoded instance (all arrays int64, lengths exact, no padding).

    ``input_ids`` are the stored ids (with ``[MASK]``/random replacements); ``original_ids``
    restore the label at each masked position. ``masked_positions``/``masked_labels`` are empty
    for unmasked shards.
    """

    input_ids: np.ndarray
    original_ids: np.ndarray
    segment_ids: np.ndarray
    masked_positions: np.ndarray
    masked_labels: np.ndarray
    next_sentence_label: int


def num_masked(positions: np.ndarray) -> int:
    """NVIDIA's rule: masked count = index of the first 0 in ``masked_lm_positions`` (else P)."""
    zeros = np.flatnonzero(np.asarray(positions) == 0)
    return int(zeros[0]) if zeros.size else int(len(positions))


def decode_instance(arrays: dict[str, np.ndarray], i: int) -> Instance:
    """Instance ``i`` of a shard's arrays (from :meth:`ShardReader.read_all`), following
    NVIDIA's loader: length = sum of ``input_mask``; masked count by :func:`num_masked`."""
    length = int(np.asarray(arrays[schema.INPUT_MASK][i], dtype=np.int64).sum())
    ids = np.asarray(arrays[schema.INPUT_IDS][i][:length], dtype=np.int64)
    segments = np.asarray(arrays[schema.SEGMENT_IDS][i][:length], dtype=np.int64)
    if schema.MASKED_LM_POSITIONS in arrays:
        row = arrays[schema.MASKED_LM_POSITIONS][i]
        n = num_masked(row)
        positions = np.asarray(row[:n], dtype=np.int64)
        labels = np.asarray(arrays[schema.MASKED_LM_IDS][i][:n], dtype=np.int64)
    else:
        positions = labels = np.zeros(0, np.int64)
    if positions.size and (positions.min() < 0 or positions.max() >= length):
        raise schema.SchemaError(f"instance {i}: masked position outside its {length} tokens")
    original = ids.copy()
    original[positions] = labels
    return Instance(
        input_ids=ids,
        original_ids=original,
        segment_ids=segments,
        masked_positions=positions,
        masked_labels=labels,
        next_sentence_label=int(arrays[schema.NEXT_SENTENCE_LABELS][i]),
    )

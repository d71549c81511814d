"""Write one shard: gzip HDF5 in the NVIDIA schema, atomically, with deterministic bytes.

Choices, measured with ``benchmarks/bench_shards.py`` (CPU seconds per shard of 32,768 seq-128
or 8,192 seq-512 instances cut from real book text with the bert-base-uncased vocab):

- gzip level :data:`DEFAULT_GZIP_LEVEL` = 1. Level 4 (h5py's and so NVIDIA's default) is
  only 3% smaller (seq 128: 220 vs 227 bytes/instance; seq 512: 877 vs 901) but costs 50% more
  write CPU (0.39 vs 0.26 s) and reads no faster (0.11 vs 0.08 s); 6 and 9 save another 1-2%
  for 3-7x the write time. Uncompressed shards are 4x larger (930 bytes/instance at seq 128).
- the shuffle filter (byte transposition before gzip) is on: ids are < 2**16 in int32 cells,
  so the high bytes form long zero runs once shuffled; 16% smaller shards at level 1 and
  slightly faster writes.
- chunks of about :data:`CHUNK_BYTES` = 1 MiB of ``input_ids`` (the same row count for every
  dataset): whole-shard reads decompress chunk by chunk, and 64 KiB chunks (near h5py's
  automatic size) read 20% slower and store 6% more; chunks over 1 MiB gain < 1% in size while
  a row-range read (inspect, partial loads) would decompress more than it needs.
- no timestamps (``track_times=False``) and a fixed attribute order, so the same arrays give
  a byte-identical file with the same h5py/HDF5/zlib build.

HDF5 needs a seekable local file: callers writing to object storage write here first and
copy the finished file (Beam ``FileSystems.copy``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ground.atomic import atomic_path
from sharding import schema

DEFAULT_GZIP_LEVEL = 1
DEFAULT_SHUFFLE = True
CHUNK_BYTES = 1 << 20  # target uncompressed bytes per chunk of input_ids


@dataclass(frozen=True)
class ShardFile:
    """A written shard: file name (no directory), instance count, sha256 hex and size in bytes."""

    name: str
    count: int
    sha256: str
    bytes: int


def chunk_rows(count: int, seq_length: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk: about ``chunk_bytes`` of int32 ``input_ids``, at least 1, at most N."""
    return max(1, min(count, chunk_bytes // max(1, 4 * seq_length)))


def file_sha256(path: str | os.PathLike, block: int = 1 << 22) -> str:
    """sha256 hex digest of a file, read in ``block``-byte pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(block):
            digest.update(piece)
    return digest.hexdigest()


def _write_h5(
    tmp: str,
    arrays: Mapping[str, np.ndarray],
    meta: schema.ShardMeta,
    level: int,
    shuffle: bool,
    chunk_bytes: int,
) -> None:
    rows = chunk_rows(meta.count, meta.seq_length, chunk_bytes)
    with h5py.File(tmp, "w", track_order=False) as f:
        # Attributes first and in a fixed order: part of the deterministic-bytes contract.
        f.attrs[schema.ATTR_SCHEMA_VERSION] = np.int64(schema.SCHEMA_VERSION)
        f.attrs[schema.ATTR_SEQ_LENGTH] = np.int64(meta.seq_length)
        f.attrs[schema.ATTR_MAX_PREDICTIONS] = np.int64(meta.max_predictions)
        f.attrs[schema.ATTR_MASKED] = np.bool_(meta.masked)
        f.attrs[schema.ATTR_NSP] = np.bool_(True if meta.nsp is None else meta.nsp)
        for key in schema.keys_for(meta.masked):
            data = np.ascontiguousarray(arrays[key])
            chunks = (rows,) + tuple(max(1, d) for d in data.shape[1:])
            f.create_dataset(
                key,
                data=data,
                dtype=schema.DTYPES[key],
                chunks=chunks,
                compression="gzip" if level > 0 else None,
                compression_opts=level if level > 0 else None,
                shuffle=shuffle and data.dtype.itemsize > 1,
                track_times=False,
            )


def write_shard(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    *,
    nsp: bool = True,
    compression_level: int = DEFAULT_GZIP_LEVEL,
    shuffle: bool = DEFAULT_SHUFFLE,
    chunk_bytes: int = CHUNK_BYTES,
) -> ShardFile:
    """Write ``arrays`` (schema keys -> arrays, exact dtypes) to ``path`` atomically.

    The file is written to a hidden temp file in the same directory, fsynced, hashed and
    renamed over ``path``; on any error the temp file is removed and ``path`` is untouched.

    Args:
        path: local destination, e.g. ``DIR/shard_training_00003.hdf5``.
        arrays: see :mod:`sharding.schema`; the ``masked_lm_*`` keys are absent for unmasked
            shards. At least one instance.
        nsp: false for MLM-only shards (one segment, labels 0); stored as an attribute.
        compression_level: gzip level 0-9 (0 = no compression).
        shuffle: HDF5 byte-shuffle filter before gzip on multi-byte datasets.
        chunk_bytes: target uncompressed bytes per ``input_ids`` chunk.

    Returns:
        :class:`ShardFile` with the final file name, count, sha256 and size.
    """
    meta = schema.validate_arrays(arrays, nsp=nsp)
    if meta.count < 1:
        raise schema.SchemaError("a shard needs at least one instance")
    if not 0 <= compression_level <= 9:
        raise ValueError(f"gzip level must be 0..9, got {compression_level}")
    path = Path(path)
    with atomic_path(path, mkdir=False) as tmp:
        _write_h5(str(tmp), arrays, meta, compression_level, shuffle, chunk_bytes)
        digest = file_sha256(tmp)
        size = os.path.getsize(tmp)
    return ShardFile(path.name, meta.count, digest, size)

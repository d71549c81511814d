"""On-disk buckets of instances between the group builders and the shard writers.

A bucket is an uncompressed HDF5 file holding one group's instances of one phase and split as
padded arrays in NVIDIA's schema (contiguous datasets, so a strided row read is cheap). Instance
payloads travel through these files, never through a Beam shuffle. HDF5 needs local files:
remote buckets are copied to a local temporary file to read, and written locally then published.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import h5py
import numpy as np

from pipeline.common import fs


def write_bucket(path: str, arrays: dict[str, np.ndarray]) -> int:
    """Write ``arrays`` (equal first dimension) to ``path`` atomically; returns the row count."""
    fd, local = tempfile.mkstemp(suffix=".hdf5", prefix="bertprep-bucket-")
    os.close(fd)
    try:
        with h5py.File(local, "w", track_order=True) as f:
            for key in sorted(arrays):
                f.create_dataset(key, data=arrays[key], track_times=False)
        fs.publish_local(local, path)
    finally:
        if os.path.exists(local):
            os.unlink(local)
    return len(next(iter(arrays.values()))) if arrays else 0


@contextmanager
def _local(path: str) -> Iterator[str]:
    if "://" not in path:
        yield path
        return
    fd, local = tempfile.mkstemp(suffix=".hdf5", prefix="bertprep-bucket-")
    os.close(fd)
    try:
        with fs.open_read(path) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
        yield local
    finally:
        os.unlink(local)


def read_rows(path: str, first: int, step: int) -> dict[str, np.ndarray]:
    """Rows ``first::step`` of every dataset in the bucket at ``path``."""
    with _local(path) as local, h5py.File(local, "r") as f:
        return {key: f[key][first::step] for key in f}


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate row blocks key by key (keys of the first block)."""
    keys = list(parts[0])
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}

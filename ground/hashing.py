"""splitmix64: the counter-based hash behind every mask, in the pipeline and in the runner.

:func:`mix64` is the splitmix64 finaliser (Steele, Lea and Flood 2014; Vigna's constants) on
uint64 numpy arrays, wrapping arithmetic; :data:`GOLDEN` is its increment (2**64 / phi), used to
spread counters before mixing; :func:`unit_floats` turns hashes into uniform floats in [0, 1).

Two users, who hash different keys and never have to agree with each other:

- :mod:`pipeline.instances.masking` / :mod:`pipeline.instances.types` (static masks written into
  the shards): keys from the instance seed (blake2b of seed, phase, document id, dupe index),
  the instance index and the token position;
- :mod:`pretrain.collate` (dynamic masking of unmasked shards while training): keys from
  (seed, epoch, sample id), the token position and a stream number.

Nothing compares a shard's mask with a dynamic one. Both do depend on these exact bits: a
change here changes every masked shard (the golden data hashes) and every dynamic mask (a
resumed run would no longer mask as the uninterrupted one did), so this function is fixed.
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic); returns a new uint64 array
    of the same shape."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def unit_floats(h: np.ndarray) -> np.ndarray:
    """uint64 hashes -> float64 uniform on [0, 1) using the top 53 bits (same shape)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

"""Equal-count shards: how many instances each shard gets and which ones.

Ranks of a data-parallel run each read whole shards, so shards must hold the same number of
instances (at most 1 apart) for every GPU to get the same work. The split is over a *global*
order of instances: shard ``s`` holds positions ``[start_s, stop_s)`` of that order, with the
``total % num_shards`` extra instances going to the first shards.
"""

from __future__ import annotations

import numpy as np

from ground.errors import UserError


def check_split(total: int, num_shards: int) -> None:
    """Refuse splits that cannot give every shard an instance (:class:`UserError`)."""
    if num_shards <= 0:
        raise UserError(f"--num-shards must be at least 1, got {num_shards}")
    if total < num_shards:
        raise UserError(
            f"only {total} instances for {num_shards} shards: every shard needs at least one; "
            "lower --num-shards or add input"
        )


def shard_sizes(total: int, num_shards: int) -> list[int]:
    """Instance count per shard: ``total`` split into ``num_shards`` sizes at most 1 apart."""
    check_split(total, num_shards)
    base, extra = divmod(total, num_shards)
    return [base + (1 if s < extra else 0) for s in range(num_shards)]


def shard_bounds(total: int, num_shards: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each shard in the global order (half-open, contiguous, covering)."""
    stops = np.cumsum(shard_sizes(total, num_shards))
    starts = np.concatenate([[0], stops[:-1]])
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def shard_of_position(position, total: int, num_shards: int):
    """Shard holding global position(s) ``position`` (int or int array, each in [0, total)).

    Vectorised inverse of :func:`shard_bounds`: lets a distributed writer route an instance
    once its rank in the global order is known, without materialising the bounds per element.
    """
    check_split(total, num_shards)
    pos = np.asarray(position, dtype=np.int64)
    if pos.size and (pos.min() < 0 or pos.max() >= total):
        raise ValueError(f"positions must lie in [0, {total})")
    base, extra = divmod(total, num_shards)
    cut = extra * (base + 1)  # positions before this belong to the (base + 1)-sized shards
    shard = np.where(pos < cut, pos // (base + 1), extra + (pos - cut) // max(base, 1))
    return int(shard) if np.ndim(position) == 0 else shard


def global_permutation(total: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(total)`` (int64 [total]); same seed -> same order."""
    return np.random.Generator(np.random.PCG64(seed)).permutation(total)


def shuffled_assignment(total: int, num_shards: int, seed: int) -> list[np.ndarray]:
    """Instance indices per shard after a global seeded shuffle.

    Returns ``num_shards`` int64 arrays; together they hold each index of ``range(total)``
    exactly once and their lengths are :func:`shard_sizes`. Within a shard the indices are in
    shuffled order (the order to write them in).
    """
    order = global_permutation(total, seed)
    return [order[a:b] for a, b in shard_bounds(total, num_shards)]

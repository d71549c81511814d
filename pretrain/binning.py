"""Which rows of which shard each rank batches, in what order: pure functions of the seed.

The plan, per epoch ``e`` (all randomness from ``numpy.random.default_rng([seed, e, ...])``):

1. Shard order: a permutation of the training shards from ``(seed, e)``.
2. Within shard ``s``: a permutation of its rows from ``(seed, e, s)``.
3. Blocks: the shuffled rows (of each length bin separately when binning, keeping the
   shuffled order) are cut into blocks of ``G`` rows: ``world_size x micro_batch`` by
   default, or a whole global batch (``x accumulation``) when the loader is given one; the last
   ``< G`` rows of each (shard, bin) are dropped for this epoch (a different tail each epoch,
   since the shuffle changes).
4. Block order: without binning, blocks in order. With binning, the sequence of bins is a
   uniform random permutation of the multiset {bin k repeated blocks_k times} from
   ``(seed, e, s)``; this is exactly drawing the next bin with probability proportional to its
   remaining samples. It depends on neither rank nor batch layout, so every rank takes the
   same bin at every step.
5. Dealing: block ``[G]`` -> ``A`` micro-batches per rank; rank ``r``'s micro-batch ``a`` is
   ``block[a*W*B + r :: W][:B]`` (round-robin inside each run of ``W*B`` rows).

Consequences (tested): ranks get disjoint rows and the same number of micro-batches; the union
over ranks of micro-step ``j`` is rows ``[j*W*B, (j+1)*W*B)`` of the block sequence; with
blocks of a whole global batch, the union of one global step is the same for every world size.
"""

from __future__ import annotations

import numpy as np

_ROWS, _BINS = 1, 2  # rng stream ids inside (seed, epoch, shard)


def length_bins(lengths: np.ndarray, bin_size: int) -> np.ndarray:
    """Bin of each instance: ``(length - 1) // bin_size`` (int64 [N]; lengths 1..bin_size -> 0)."""
    return (np.asarray(lengths, dtype=np.int64) - 1) // bin_size


def shard_order(seed: int, epoch: int, num_shards: int) -> np.ndarray:
    """int64 [num_shards]: the order in which epoch ``epoch`` visits the training shards."""
    return np.random.default_rng([seed, epoch]).permutation(num_shards)


def row_order(seed: int, epoch: int, shard: int, count: int) -> np.ndarray:
    """int64 [count]: the shuffled rows of shard ``shard`` (its index in the shard set)."""
    return np.random.default_rng([seed, epoch, shard, _ROWS]).permutation(count)


def blocks_per_shard(count: int, block: int, bins: np.ndarray | None = None) -> int:
    """Global batches shard contributes per epoch (the same every epoch)."""
    if bins is None:
        return count // block
    return int(sum(c // block for c in np.bincount(np.asarray(bins, dtype=np.int64))))


def shard_plan(
    count: int,
    *,
    seed: int,
    epoch: int,
    shard: int,
    world_size: int,
    rank: int,
    micro_batch: int,
    block: int,
    bins: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank ``rank``'s micro-batches from one shard in one epoch.

    Args: ``count`` rows in the shard; ``bins`` int [count] length bin per row, or None for
    no binning; ``block`` (rows per block, G above) a multiple of ``world_size * micro_batch``.
    Returns ``(rows [S, micro_batch], bin_of_batch [S])`` int64, with
    ``S = blocks * block / (world_size * micro_batch)``; ``bin_of_batch`` is 0 without
    binning.
    """
    step = world_size * micro_batch
    accum = block // step
    order = row_order(seed, epoch, shard, count)
    if bins is None:
        groups = {0: order}
    else:
        bins = np.asarray(bins, dtype=np.int64)
        ob = bins[order]
        groups = {int(k): order[ob == k] for k in np.unique(bins)}
    blocks = {k: rows[: len(rows) // block * block] for k, rows in groups.items()}
    counts = {k: len(v) // block for k, v in blocks.items()}
    labels = np.repeat(np.array(list(counts), np.int64), list(counts.values()))
    if bins is not None:
        labels = np.random.default_rng([seed, epoch, shard, _BINS]).permutation(labels)
    used = dict.fromkeys(counts, 0)
    out = np.empty((len(labels) * accum, micro_batch), np.int64)
    for i, k in enumerate(labels.tolist()):
        chunk = blocks[k][used[k] * block : (used[k] + 1) * block]
        used[k] += 1
        out[i * accum : (i + 1) * accum] = chunk.reshape(accum, step)[:, rank::world_size]
    return out, np.repeat(labels, accum)

"""Pure planning of the instances stage: splits, groups, shard assignment. No Beam, no I/O.

Scheme (documented in docs/architecture.md):

* **Split.** A document is in the validation split when a hash of its id falls under
  ``validation_fraction``; its instances go to validation shards, and it never serves as
  another document's random next in training (and vice versa).
* **Groups.** Random-next draws need other documents on the same worker. Documents go to
  ``G`` random groups by a seeded hash of their id, ``G = round(estimated tokens /
  group_tokens)``, so groups hold about ``group_tokens`` tokens each whatever the document
  sizes (a book is 1,000x a stub article; counting documents would not balance work). NSP
  draws within the group: every other document in a group of ~2M tokens is a fair draw.
* **Shards.** Each group's instances are written to an on-disk bucket. For one split with ``N``
  instances and ``S`` shards, instance ``j`` of group ``g`` has global position
  ``offset[g] + j`` and goes to shard ``position % S``: shard sizes differ by at most one and
  every shard is a uniform mix of all groups. Each shard is then shuffled with its own seeded
  permutation.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

TRAINING = "training"
VALIDATION = "validation"
CHARS_PER_TOKEN = 4.5  # English WordPiece: planning estimate only, never affects correctness


def _unit_hash(*parts: object) -> float:
    """A deterministic float in [0, 1) from its arguments."""
    raw = "\x00".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big") / 2.0**64


def split_of(doc_id: str, validation_fraction: float) -> str:
    """``validation`` for a fixed fraction of documents chosen by id (not seed), else training."""
    return VALIDATION if _unit_hash("validation", doc_id) < validation_fraction else TRAINING


def groups_per_split(groups: int, validation_fraction: float) -> dict[str, int]:
    """NSP groups of each split: ``groups`` is sized for the whole corpus, so validation gets
    its share (at least one) and its groups hold about as many tokens as training's."""
    return {
        TRAINING: groups,
        VALIDATION: max(1, round(groups * validation_fraction)),
    }


def num_groups(estimated_tokens: int, group_tokens: int) -> int:
    """Number of NSP groups: about ``group_tokens`` tokens each, at least one."""
    return max(1, round(estimated_tokens / max(1, group_tokens)))


def group_of(doc_id: str, seed: int, groups: int) -> int:
    """The random group of a document: a seeded hash of its id."""
    return int(_unit_hash("group", seed, doc_id) * groups)


def shard_seed(seed: int, phase: str, split: str, shard: int) -> int:
    """Seed of one shard's within-shard shuffle."""
    return int(_unit_hash("shard", seed, phase, split, shard) * 2**63)


def auto_num_shards(total: int, target_per_shard: int = 32768, max_shards: int = 1024) -> int:
    """Default shard count: about ``target_per_shard`` instances per shard."""
    return max(1, min(max_shards, math.ceil(total / target_per_shard)))


@dataclass(frozen=True)
class Bucket:
    """One group's instances of one phase and split, stored on disk."""

    path: str
    group: int
    count: int


@dataclass(frozen=True)
class ShardPlan:
    """Which rows of which buckets make shard ``index`` of ``num_shards``.

    ``sources`` holds ``(bucket path, first row, step)``: rows ``first::step`` of that bucket.
    """

    phase: str
    split: str
    index: int
    num_shards: int
    sources: tuple[tuple[str, int, int], ...]
    count: int


def plan_shards(phase: str, split: str, buckets: list[Bucket], num_shards: int) -> list[ShardPlan]:
    """Round-robin assignment of the split's instances to ``num_shards`` shards.

    Buckets are ordered by group; positions run through them in that order. Raises
    ``ValueError`` when there are fewer instances than shards.
    """
    buckets = sorted((b for b in buckets if b.count > 0), key=lambda b: b.group)
    total = sum(b.count for b in buckets)
    if num_shards < 1 or total < num_shards:
        raise ValueError(f"{phase} {split}: {total} instances cannot fill {num_shards} shards")
    sources: list[list[tuple[str, int, int]]] = [[] for _ in range(num_shards)]
    counts = [0] * num_shards
    offset = 0
    for b in buckets:
        for s in range(num_shards):
            first = (s - offset) % num_shards
            if first < b.count:
                sources[s].append((b.path, first, num_shards))
                counts[s] += len(range(first, b.count, num_shards))
        offset += b.count
    return [
        ShardPlan(phase, split, s, num_shards, tuple(sources[s]), counts[s])
        for s in range(num_shards)
    ]


def shuffle_rows(arrays: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Apply one seeded permutation to every array's first axis."""
    n = len(next(iter(arrays.values())))
    perm = np.random.default_rng(seed).permutation(n)
    return {k: v[perm] for k, v in arrays.items()}

"""Batch assembly (:func:`collate`) and its MLM labels: static shard masks or dynamic masking.

Both produce the same layout, ``masked_lm_positions`` [B, P] (sorted, 0-padded: position 0
is ``[CLS]``, never masked) and ``masked_lm_labels`` [B, P] (original token ids, ``-100`` on
padding slots), plus the (possibly modified) ``input_ids``.

Dynamic masking follows Google's ``create_masked_lm_predictions``: ``k = min(P, max(1,
round(n * 0.15)))`` positions of an ``n``-token instance, never on ``[CLS]``/``[SEP]``/``[PAD]``;
80% become ``[MASK]``, 10% a random word (never a special token nor ``[unusedN]``), 10% stay.

Randomness is a counter-based hash (splitmix64, :mod:`ground.hashing`) of ``(seed, epoch,
sample_id, position, stream)``, not a stateful generator: a sample's mask depends on nothing
else (not on the rank, the worker, the batch it lands in, nor on how many samples came before),
so a resumed run or another world size masks every sample exactly like an uninterrupted one. It
is also vectorised over the whole batch (no per-sample generator construction).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from ground.errors import UserError
from ground.hashing import GOLDEN, mix64, unit_floats
from sharding import schema
from sharding.manifest import VOCAB_NAME
from sharding.reader import ShardSet
from sharding.vocab import Vocab, load_vocab

IGNORE_INDEX = -100
MASK_PROB = 0.15
_UNUSED = re.compile(r"^\[unused\d+\]$")
# Independent hash streams per token: which positions, what to do with them, which random word.
_STREAM_SELECT, _STREAM_ACTION, _STREAM_WORD = 0, 1, 2


def default_max_predictions(seq_length: int, mask_prob: float = MASK_PROB) -> int:
    """P for unmasked shards: ``mask_prob * L`` rounded up to a multiple of 4 (128 -> 20,
    512 -> 80: NVIDIA's values)."""
    return 4 * math.ceil(seq_length * mask_prob / 4)


def replacement_ids(vocab: Vocab) -> np.ndarray:
    """int64 ids a masked token may be replaced with: every token except the five special
    ones and ``[unusedN]`` placeholders (sorted)."""
    special = set(vocab.special_ids.tolist())
    keep = [i for i, t in enumerate(vocab.tokens) if i not in special and not _UNUSED.match(t)]
    return np.asarray(keep, dtype=np.int64)


def sample_keys(seed: int, epoch: int, sample_ids: np.ndarray) -> np.ndarray:
    """uint64 [B]: one hash key per sample from (seed, epoch, sample id) only."""
    with np.errstate(over="ignore"):
        key = mix64(np.asarray([seed & (2**64 - 1)], dtype=np.uint64))
        key = mix64(key + np.uint64(epoch & (2**64 - 1)) * GOLDEN)
        ids = np.asarray(sample_ids, dtype=np.int64).astype(np.uint64)
        return mix64(key + mix64(ids + GOLDEN))


def _uniform(keys: np.ndarray, positions: np.ndarray, stream: int) -> np.ndarray:
    """float64 [B, K] in [0, 1): hash of (sample key [B], token position [B, K] or [K], stream)."""
    pos = np.asarray(positions).astype(np.uint64) * np.uint64(3) + np.uint64(stream + 1)
    with np.errstate(over="ignore"):
        h = mix64(keys[:, None] + pos * GOLDEN)
    return unit_floats(h)


def dynamic_mask(
    input_ids: np.ndarray,
    lengths: np.ndarray,
    sample_ids: np.ndarray,
    *,
    seed: int,
    epoch: int,
    vocab: Vocab,
    replace_ids: np.ndarray,
    max_predictions: int,
    mask_prob: float = MASK_PROB,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask a batch of unmasked instances.

    Args: ``input_ids`` int64 [B, T] (T >= every length), ``lengths`` [B] real tokens per row,
    ``sample_ids`` int64 [B] global sample ids, ``replace_ids`` from :func:`replacement_ids`.
    Returns ``(masked_ids [B, T], positions [B, P], labels [B, P])``, all int64; the input is
    not modified.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    b, t = ids.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    keys = sample_keys(seed, epoch, sample_ids)
    cols = np.arange(t)
    candidate = (cols[None, :] < lengths[:, None]) & ~np.isin(
        ids, (vocab.cls, vocab.sep, vocab.pad)
    )
    # k per row from the real length (specials included) with Python's round (half to even),
    # exactly as Google's reference computes it.
    want = np.maximum(1, np.rint(lengths * mask_prob).astype(np.int64))
    k = np.minimum(np.minimum(want, max_predictions), candidate.sum(1))
    # The k candidates with the smallest hash scores = a uniform random k-subset.
    scores = np.where(candidate, _uniform(keys, cols, _STREAM_SELECT), 2.0)
    if t > max_predictions:  # only the P smallest matter: partition, then sort those
        part = np.argpartition(scores, max_predictions - 1, axis=1)[:, :max_predictions]
        rank = np.argsort(np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        order = np.take_along_axis(part, rank, axis=1)
    else:
        order = np.argsort(scores, axis=1, kind="stable")
    slot = np.arange(order.shape[1])
    chosen = slot[None, :] < k[:, None]
    positions = np.sort(np.where(chosen, order, t), axis=1)  # chosen first, sorted
    valid = positions < t
    positions = np.where(valid, positions, 0)
    rows = np.arange(b)[:, None]
    labels = np.where(valid, ids[rows, positions], IGNORE_INDEX)

    action = _uniform(keys, positions, _STREAM_ACTION)
    word = (_uniform(keys, positions, _STREAM_WORD) * len(replace_ids)).astype(np.int64)
    new = np.where(action < 0.8, vocab.mask, np.where(action < 0.9, replace_ids[word], labels))
    out = ids.copy()
    out[np.broadcast_to(rows, positions.shape)[valid], positions[valid]] = new[valid]
    if positions.shape[1] < max_predictions:  # T < P: pad the slot axis to P
        pad = max_predictions - positions.shape[1]
        positions = np.pad(positions, ((0, 0), (0, pad)))
        labels = np.pad(labels, ((0, 0), (0, pad)), constant_values=IGNORE_INDEX)
    return out, positions, labels


def static_labels(positions: np.ndarray, masked_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of statically masked shards, NVIDIA's rule: the first 0 in a row of
    ``masked_lm_positions`` ends its list.

    Args: ``positions``, ``masked_ids`` [B, P] from the shard. Returns int64 ``(positions,
    labels)`` [B, P] with positions 0 and labels ``-100`` after the end of each list.
    """
    positions = np.asarray(positions, dtype=np.int64)
    valid = np.cumprod(positions != 0, axis=1).astype(bool)
    labels = np.where(valid, np.asarray(masked_ids, dtype=np.int64), IGNORE_INDEX)
    return np.where(valid, positions, 0), labels


class DynamicMasker:
    """Dynamic masking settings for an unmasked shard directory."""

    def __init__(self, shards: ShardSet, seed: int, max_predictions: int | None, mask_prob: float):
        path = shards.directory / VOCAB_NAME
        if not path.is_file():
            raise UserError(f"{shards.directory}: unmasked shards need {VOCAB_NAME} beside them")
        self.vocab = load_vocab(path)
        self.replace = replacement_ids(self.vocab)
        self.seed, self.mask_prob = seed, mask_prob
        self.max_predictions = max_predictions or default_max_predictions(
            shards.seq_length, mask_prob
        )

    def __call__(self, ids, lengths, sample_ids, epoch):
        return dynamic_mask(
            ids, lengths, sample_ids, seed=self.seed, epoch=epoch, vocab=self.vocab,
            replace_ids=self.replace, max_predictions=self.max_predictions,
            mask_prob=self.mask_prob,
        )  # fmt: skip


def collate(
    arrays: dict[str, np.ndarray],
    rows: np.ndarray,
    id_base: int,
    *,
    pad_to_longest: bool,
    masker: DynamicMasker | None,
    epoch: int,
    name: str = "",
) -> dict[str, torch.Tensor]:
    """The batch of ``rows`` (int [B]) of one loaded shard; ``id_base`` = its first sample id."""
    rows = np.asarray(rows, dtype=np.int64)
    lengths = arrays["lengths"][rows]
    width = arrays[schema.INPUT_IDS].shape[1]
    if pad_to_longest:
        width = min(width, -(-int(lengths.max()) // 8) * 8)
    ids = arrays[schema.INPUT_IDS][rows, :width].astype(np.int64)
    sample_ids = id_base + rows
    if masker is not None:
        ids, positions, labels = masker(ids, lengths, sample_ids, epoch)
    else:
        positions, labels = static_labels(
            arrays[schema.MASKED_LM_POSITIONS][rows], arrays[schema.MASKED_LM_IDS][rows]
        )
        if np.any(positions >= np.maximum(lengths, 1)[:, None]):
            raise schema.SchemaError(f"{name}: a masked position lies beyond its instance")
    out = {
        "input_ids": ids,
        "attention_mask": arrays[schema.INPUT_MASK][rows, :width].astype(np.int64),
        "token_type_ids": arrays[schema.SEGMENT_IDS][rows, :width].astype(np.int64),
        "masked_lm_positions": positions,
        "masked_lm_labels": labels,
        "next_sentence_label": arrays[schema.NEXT_SENTENCE_LABELS][rows].astype(np.int64),
        "sample_ids": sample_ids,
    }
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}

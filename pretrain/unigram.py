"""The unigram level: what masked-LM loss and accuracy a model reaches without any context.

A model that has learnt only token frequencies predicts every masked token with the training
unigram distribution ``p(w)``. Its expected cross-entropy on the validation targets is
``-mean log p(w)`` over the validation tokens that may be masked (every real token except
``[CLS]``, ``[SEP]`` and ``[PAD]``), and its accuracy is the share of those tokens equal to
the most frequent training token. Masked positions are a uniform sample of exactly those
tokens, so these are the expected values of the eval MLM metrics of a context-blind model:
eval MLM loss below ``unigram_ce`` is the first sign that pretraining learnt anything beyond
frequencies (the plateau a badly tuned run sits on).

Unmasked and masked shards both work: for masked shards the stored labels are put back before
counting (the original tokens are what the loss is computed on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sharding import schema
from sharding.reader import ShardReader, ShardSet


@dataclass(frozen=True)
class UnigramLevel:
    """Context-blind baselines of the eval MLM metrics (natural log, per token)."""

    cross_entropy: float  # nats per maskable validation token under the training unigram
    accuracy: float  # share of maskable validation tokens equal to the top training token
    train_tokens: int  # maskable tokens counted in the training shards
    validation_tokens: int  # maskable tokens counted in the validation shards

    def to_dict(self) -> dict:
        return {
            "unigram_ce": self.cross_entropy,
            "unigram_acc": self.accuracy,
            "unigram_train_tokens": self.train_tokens,
            "unigram_validation_tokens": self.validation_tokens,
        }


def token_counts(
    readers: list[ShardReader], vocab_size: int, exclude: tuple[int, ...]
) -> np.ndarray:
    """int64 [vocab_size]: how often each id occurs as a real, maskable token in ``readers``.

    ``exclude``: ids never masked ([CLS], [SEP], [PAD]); their counts are zeroed.
    """
    counts = np.zeros(vocab_size, dtype=np.int64)
    for reader in readers:
        arrays = reader.read_all()
        ids = np.asarray(arrays[schema.INPUT_IDS], dtype=np.int64)
        if schema.MASKED_LM_POSITIONS in arrays:  # restore the stored labels
            pos = np.asarray(arrays[schema.MASKED_LM_POSITIONS], dtype=np.int64)
            lab = np.asarray(arrays[schema.MASKED_LM_IDS], dtype=np.int64)
            valid = np.cumprod(pos != 0, axis=1).astype(bool)  # NVIDIA's end-of-list rule
            rows = np.broadcast_to(np.arange(len(ids))[:, None], pos.shape)
            ids = ids.copy()
            ids[rows[valid], pos[valid]] = lab[valid]
        real = np.asarray(arrays[schema.INPUT_MASK]) != 0
        counts += np.bincount(ids[real], minlength=vocab_size)[:vocab_size]
    counts[list(exclude)] = 0
    return counts


def unigram_level(shards: ShardSet, vocab_size: int, special_ids: tuple[int, ...]) -> UnigramLevel:
    """The unigram baselines of ``shards``' validation split, from its training split.

    Args:
        vocab_size: the model's (unpadded) vocabulary size.
        special_ids: ids never masked: [CLS], [SEP], [PAD].

    Training counts get add-one smoothing so a validation token unseen in training has a
    finite cost. Returns NaNs when there is no validation shard.
    """
    train = token_counts(shards.training, vocab_size, special_ids)
    val = token_counts(shards.validation, vocab_size, special_ids)
    n_val = int(val.sum())
    if n_val == 0:
        return UnigramLevel(math.nan, math.nan, int(train.sum()), 0)
    allowed = np.ones(vocab_size, dtype=bool)
    allowed[list(special_ids)] = False
    smoothed = np.where(allowed, train + 1.0, 0.0)
    logp = np.log(np.where(allowed, smoothed, 1.0)) - math.log(smoothed.sum())
    ce = float(-(val * logp).sum() / n_val)
    acc = float(val[int(np.argmax(train))] / n_val)
    return UnigramLevel(ce, acc, int(train.sum()), n_val)

"""Masked-LM selection for blocks of instances, vectorised with numpy.

Every random number here is a counter-based hash (splitmix64, :mod:`ground.hashing`) of the
instance's own seed and the token position, and each instance's seed derives from (seed, phase,
document id, dupe index, instance index). So a mask depends only on its instance, never on which
other instances share a block, a group or a worker.

Google's rule (create_pretraining_data.py): ``num_to_predict = min(max_predictions,
max(1, round(n * masked_lm_prob)))`` with ``n`` counting ``[CLS]``/``[SEP]``; candidates are all
positions except the ``[CLS]``/``[SEP]`` the builder inserted, taken in random order; each chosen
token becomes ``[MASK]`` (80%), a random token (10%) or stays (10%). Taking the candidates with the
smallest hash keys is the same distribution as Google's shuffle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ground.hashing import GOLDEN, mix64, unit_floats
from sharding.vocab import check_tokens

_DECIDE = np.uint64(0xD1B54A32D192ED03)  # separates the 80/10/10 stream from the selection keys
_MAXU = np.uint64(0xFFFFFFFFFFFFFFFF)
_SPECIAL = re.compile(r"^\[[^\]]*\]$")  # [PAD] [UNK] [CLS] [SEP] [MASK] [unusedN]...


@dataclass(frozen=True)
class VocabInfo:
    """What the builder needs from a vocab: special ids and the random-replacement pool.

    ``replace_ids`` (int32 [R]) holds every id that is not a bracketed special token
    (``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``, ``[unusedN]``); ``is_continuation``
    (bool [V]) marks ``##`` pieces for whole-word masking.
    """

    size: int
    cls_id: int
    sep_id: int
    mask_id: int
    replace_ids: np.ndarray
    is_continuation: np.ndarray

    @classmethod
    def from_tokens(cls, tokens: list[str]) -> VocabInfo:
        """Build from the vocab in id order (line i of vocab.txt is id i)."""
        check_tokens(list(tokens))  # the shard contract's rules (sharding.vocab)
        index = {t: i for i, t in enumerate(tokens)}
        replace = [i for i, t in enumerate(tokens) if not _SPECIAL.match(t)]
        cont = np.array([t.startswith("##") for t in tokens], dtype=bool)
        return cls(
            len(tokens),
            index["[CLS]"],
            index["[SEP]"],
            index["[MASK]"],
            np.array(replace, dtype=np.int32),
            cont,
        )

    @classmethod
    def from_vocab_file(cls, path: str) -> VocabInfo:
        """Read a ``vocab.txt`` (one token per line, UTF-8)."""
        with open(path, encoding="utf-8") as f:
            return cls.from_tokens([line.rstrip("\n") for line in f])


def num_to_predict(lengths: np.ndarray, masked_lm_prob: float, max_predictions: int) -> np.ndarray:
    """Google's count per instance: ``min(cap, max(1, round(n * p)))``, int64 [N].

    ``np.rint`` rounds half to even like Python's ``round`` and ``n * p`` is the same float64
    product, so the counts equal Python's.
    """
    raw = np.rint(lengths.astype(np.float64) * masked_lm_prob).astype(np.int64)
    return np.minimum(max_predictions, np.maximum(1, raw))


@dataclass
class MaskResult:
    """Masks for a block of B instances, P = max predictions.

    ``tokens`` int32 [B, L] after replacement; ``positions`` / ``labels`` int32 [B, P], zero past
    ``counts`` (int64 [B]); ``kinds`` int8 [B, P]: 0 [MASK], 1 random token, 2 kept, -1 padding.
    """

    tokens: np.ndarray
    positions: np.ndarray
    labels: np.ndarray
    counts: np.ndarray
    kinds: np.ndarray


def mask_block(
    tokens: np.ndarray,
    candidates: np.ndarray,
    seeds: np.ndarray,
    k: np.ndarray,
    max_predictions: int,
    vocab: VocabInfo,
    whole_word: bool = False,
    classic: bool = False,
) -> MaskResult:
    """Choose and apply masks for B padded instances.

    Args:
        tokens: int32 [B, L], zero padded; not modified.
        candidates: bool [B, L], True where a token may be masked.
        seeds: uint64 [B], one per instance.
        k: int64 [B], tokens to mask per instance (already capped by the candidate count).
        max_predictions: P, the width of the returned position arrays.
        vocab: special ids and replacement pool.
        whole_word: mask whole words (a ``##`` piece joins the token before it); words that would
            overshoot ``k`` are skipped, so fewer than ``k`` may be masked.
        classic: Google's exact replacement pool (the whole vocab) and its word rule (a ``##``
            piece right after ``[SEP]`` joins the last word of segment A).
    """
    b, seq = tokens.shape
    pos_hash = mix64((np.arange(seq, dtype=np.uint64) + np.uint64(1)) * GOLDEN)
    h = mix64(seeds[:, None] ^ pos_hash[None, :])
    keys = np.where(candidates, h, _MAXU)
    p = max_predictions
    if whole_word:
        sel = _whole_word_select(tokens, candidates, keys, k, p, vocab, classic)
    else:
        kth = min(p, seq) - 1
        part = np.argpartition(keys, kth, axis=1)[:, : kth + 1]
        order = np.argsort(np.take_along_axis(keys, part, 1), axis=1, kind="stable")
        sel = np.take_along_axis(part, order, 1)
        if sel.shape[1] < p:
            sel = np.pad(sel, ((0, 0), (0, p - sel.shape[1])))
        sel = np.where(np.arange(p)[None, :] < k[:, None], sel, seq)
    sel = np.sort(sel, axis=1)
    valid = sel < seq
    counts = valid.sum(axis=1)
    safe = np.where(valid, sel, 0)
    labels = np.take_along_axis(tokens, safe, 1)
    d = mix64(np.take_along_axis(h, safe, 1) ^ _DECIDE)
    u = unit_floats(d)
    pool = np.arange(vocab.size, dtype=np.int32) if classic else vocab.replace_ids
    rand_tok = pool[(mix64(d) % np.uint64(len(pool))).astype(np.int64)]
    kinds = np.where(u < 0.8, 0, np.where(u < 0.9, 2, 1)).astype(np.int8)
    new = np.where(kinds == 0, vocab.mask_id, np.where(kinds == 1, rand_tok, labels))
    out = tokens.copy()
    rows = np.broadcast_to(np.arange(b)[:, None], sel.shape)
    out[rows[valid], sel[valid]] = new[valid]
    kinds[~valid] = -1
    return MaskResult(
        out,
        np.where(valid, sel, 0).astype(np.int32),
        np.where(valid, labels, 0).astype(np.int32),
        counts,
        kinds,
    )


def _whole_word_select(tokens, candidates, keys, k, p, vocab, classic) -> np.ndarray:
    """Positions int64 [B, P] of whole words taken in key order (sentinel L = unused).

    Google's loop, vectorised over rows: words in random order; a word that would take the count
    past ``k`` is skipped; stop at ``k``. The loop runs over word ranks (at most L), not rows.
    """
    b, seq = tokens.shape
    cont = vocab.is_continuation[tokens] & candidates
    if classic:  # a ## piece joins the previous candidate word, even across [SEP]
        first = np.zeros_like(candidates)
        first[np.arange(b), np.argmax(candidates, axis=1)] = True
        starts = candidates & (~cont | first)
    else:  # a word never spans [CLS]/[SEP]
        prev = np.zeros_like(candidates)
        prev[:, 1:] = candidates[:, :-1]
        starts = candidates & (~cont | ~prev)
    word = np.cumsum(starts, axis=1) - 1  # word number of each candidate position
    flat = (np.arange(b)[:, None] * seq + word)[candidates]
    lens = np.bincount(flat, minlength=b * seq).reshape(b, seq)  # [row, word] -> pieces
    wkeys = np.full((b, seq), _MAXU)
    rows, cols = np.nonzero(starts)
    wkeys[rows, word[rows, cols]] = keys[rows, cols]
    order = np.argsort(wkeys, axis=1, kind="stable")
    lens_sorted = np.take_along_axis(lens, order, 1)
    got = np.zeros(b, np.int64)
    chosen_sorted = np.zeros((b, seq), bool)
    for j in range(int(starts.sum(axis=1).max(initial=0))):
        n = lens_sorted[:, j]
        ok = (n > 0) & (got + n <= k)
        chosen_sorted[:, j] = ok
        got += np.where(ok, n, 0)
    chosen = np.zeros((b, seq), bool)
    np.put_along_axis(chosen, order, chosen_sorted, 1)
    picked = candidates & np.take_along_axis(chosen, np.maximum(word, 0), 1)
    pos = np.where(picked, np.arange(seq)[None, :], seq)
    pos.sort(axis=1)
    width = min(p, seq)
    sel = np.full((b, p), seq, dtype=np.int64)
    sel[:, :width] = pos[:, :width]
    return sel

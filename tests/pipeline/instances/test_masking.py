"""Masked-LM selection: Google's count formula, the replacement pool, whole words, independence."""

from __future__ import annotations

import numpy as np
import pytest

from ground.errors import UserError
from ground.hashing import mix64
from pipeline.instances.masking import VocabInfo, mask_block, num_to_predict


@pytest.fixture(scope="module")
def vocab(corpus_dir) -> VocabInfo:
    return VocabInfo.from_vocab_file(str(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt"))


def test_num_to_predict_is_pythons_round():
    lengths = np.arange(0, 600)
    for p in (0.15, 0.2, 0.1, 0.125):
        for cap in (20, 80):
            want = [min(cap, max(1, int(round(n * p)))) for n in lengths.tolist()]
            assert num_to_predict(lengths, p, cap).tolist() == want


def test_replacement_pool_excludes_specials(corpus_dir, vocab):
    with open(corpus_dir / "vocab" / "bert-base-uncased-vocab.txt", encoding="utf-8") as f:
        toks = [line.rstrip("\n") for line in f]
    pool = {toks[i] for i in vocab.replace_ids.tolist()}
    assert not any(t.startswith("[") and t.endswith("]") for t in pool)
    assert len(pool) == len(toks) - 994 - 5  # 994 [unusedN] + 5 specials (SOURCES.md)
    assert (vocab.cls_id, vocab.sep_id, vocab.mask_id) == (101, 102, 103)
    with pytest.raises(UserError):
        VocabInfo.from_tokens(["a", "b"])


def _block(vocab, rows=2000, seq=64, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.choice(vocab.replace_ids, size=(rows, seq)).astype(np.int32)
    cand = np.ones((rows, seq), bool)
    cand[:, 0] = cand[:, -1] = False
    seeds = mix64(np.arange(rows, dtype=np.uint64) + np.uint64(seed))
    k = num_to_predict(np.full(rows, seq), 0.15, 20)
    return tokens, cand, seeds, k


def test_mask_mix_and_uniform_positions(vocab):
    tokens, cand, seeds, k = _block(vocab)
    res = mask_block(tokens, cand, seeds, k, 20, vocab)
    assert (res.counts == k).all()
    kinds = res.kinds[res.kinds >= 0]
    frac = np.bincount(kinds, minlength=3) / kinds.size
    assert abs(frac[0] - 0.8) < 0.01 and abs(frac[1] - 0.1) < 0.01 and abs(frac[2] - 0.1) < 0.01
    rows = np.arange(len(k))[:, None]
    valid = np.arange(20)[None, :] < res.counts[:, None]
    assert (
        res.labels[valid] == tokens[np.broadcast_to(rows, valid.shape)[valid], res.positions[valid]]
    ).all()
    # Positions are uniform over the candidates (chi-square-ish bound on 62 cells).
    hist = np.bincount(res.positions[valid], minlength=64)[1:63]
    assert hist.min() > 0.8 * hist.mean() and hist.max() < 1.2 * hist.mean()
    assert not hist.sum() - valid.sum()


def test_masks_depend_only_on_the_instance(vocab):
    tokens, cand, seeds, k = _block(vocab, rows=50)
    full = mask_block(tokens, cand, seeds, k, 20, vocab)
    half = mask_block(tokens[10:20], cand[10:20], seeds[10:20], k[10:20], 20, vocab)
    assert np.array_equal(full.tokens[10:20], half.tokens)
    assert np.array_equal(full.positions[10:20], half.positions)


def test_whole_word_mask_takes_whole_words(vocab):
    tokens, cand, seeds, k = _block(vocab, rows=300, seq=40)
    cont_ids = np.flatnonzero(vocab.is_continuation)
    rng = np.random.default_rng(1)
    make_cont = rng.random(tokens.shape) < 0.4
    make_cont[:, 1] = False
    tokens = np.where(make_cont, rng.choice(cont_ids, size=tokens.shape), tokens).astype(np.int32)
    res = mask_block(tokens, cand, seeds, k, 20, vocab, whole_word=True)
    assert (res.counts <= k).all() and (res.counts > 0).all()
    for i in range(len(k)):
        masked = set(res.positions[i, : res.counts[i]].tolist())
        for p in range(2, 39):
            if vocab.is_continuation[tokens[i, p]]:
                assert (p in masked) == (p - 1 in masked)

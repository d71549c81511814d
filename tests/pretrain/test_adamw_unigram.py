"""``--optimizer adamw`` (clipping, exact norm, phase-2 reset, families); the unigram level."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pretrain.adamw import AdamW, reset_adamw_steps
from pretrain.lamb import lamb_param_groups
from pretrain.trainer import _family
from pretrain.unigram import token_counts, unigram_level
from sharding import schema
from sharding.reader import ShardSet
from sharding.writer import write_shard


def test_adamw_clips_to_one_and_keeps_the_exact_pre_clip_norm():
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(2_000_000)), torch.nn.Parameter(torch.randn(3))
    ga, gb = torch.randn(2_000_000), torch.randn(3) * 100
    ref = math.sqrt(float((ga.double() ** 2).sum() + (gb.double() ** 2).sum()))
    opt = AdamW([{"params": [a, b], "weight_decay": 0.0}], lr=0.1)
    twin = torch.optim.AdamW([a.detach().clone(), b.detach().clone()], lr=0.1, betas=(0.9, 0.98),
                             eps=1e-6, weight_decay=0.0)  # fmt: skip
    a.grad, b.grad = ga.clone(), gb.clone()
    for p, g in zip(twin.param_groups[0]["params"], (ga, gb)):
        p.grad = g / ref  # torch's AdamW on the clipped gradient
    opt.step()
    twin.step()
    assert abs(float(opt.last_grad_norm) - ref) / ref < 1e-9
    for p, q in zip((a, b), twin.param_groups[0]["params"]):
        torch.testing.assert_close(p.detach(), q, rtol=1e-6, atol=1e-7)


def test_adamw_phase_two_reset_keeps_moments():
    p = torch.nn.Parameter(torch.ones(4))
    opt = AdamW(lamb_param_groups(torch.nn.Linear(2, 2)) + [{"params": [p]}], lr=0.1)
    p.grad = torch.ones(4)
    opt.step()
    m = opt.state[p]["exp_avg"].clone()
    reset_adamw_steps(opt)
    assert float(opt.state[p]["step"]) == 0.0 and torch.equal(opt.state[p]["exp_avg"], m)


def test_optimizer_family_of_settings_and_checkpoints():
    assert _family({"optimizer": "adamw"}) == "adamw"
    assert _family({"optimizer": "lamb-compiled"}) == "lamb"
    assert _family({"config": {"train": {"optimizer": "adamw"}}}) == "adamw"
    assert _family({"config": {"train": {}}}) == "lamb"  # checkpoints from before adamw


def _shard(path, rows):
    """An unmasked no-NSP shard of ``rows`` (lists of ids incl. [CLS]=2 ... [SEP]=3)."""
    length = 8
    ids = np.zeros((len(rows), length), np.int32)
    mask = np.zeros(ids.shape, np.int8)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    arrays = {
        schema.INPUT_IDS: ids,
        schema.INPUT_MASK: mask,
        schema.SEGMENT_IDS: np.zeros(ids.shape, np.int8),
        schema.NEXT_SENTENCE_LABELS: np.zeros(len(rows), np.int8),
    }
    write_shard(path, arrays, nsp=False)


def test_unigram_level_by_hand(tmp_path):
    # training: token 5 four times, 6 twice, 7 once (+ specials); validation: 5, 6, 9
    _shard(tmp_path / "x_training_0.hdf5", [[2, 5, 5, 6, 3], [2, 5, 6, 5, 7, 3]])
    _shard(tmp_path / "x_validation_0.hdf5", [[2, 5, 6, 9, 3]])
    shards = ShardSet.open(tmp_path)
    counts = token_counts(shards.training, 10, (0, 2, 3))
    assert counts.tolist() == [0, 0, 0, 0, 0, 4, 2, 1, 0, 0]
    level = unigram_level(shards, 10, (0, 2, 3))
    # add-one smoothing over the 7 maskable ids: p(5) = 5/14, p(6) = 3/14, p(9) = 1/14
    want = -(math.log(5 / 14) + math.log(3 / 14) + math.log(1 / 14)) / 3
    assert level.cross_entropy == pytest.approx(want, rel=1e-12)
    assert level.accuracy == pytest.approx(1 / 3)  # only the 5 equals the top training token
    assert (level.train_tokens, level.validation_tokens) == (7, 3)

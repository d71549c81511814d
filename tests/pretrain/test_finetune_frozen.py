"""Frozen vs trainable (``--compare-frozen``): what a frozen run trains, that its encoder does not
move, and the arms in one table, paired at each seed, with and without the random-init arm.

Real rows (the first 240 SST-2 train rows, 100 dev rows) and a tiny exported model keep each run
to about a second.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bertprep.cli import main
from pretrain import finetune as ft
from pretrain import finetune_data as fd
from pretrain import glue
from pretrain.finetune_runs import Hyper, Splits, all_paired, run_one
from tests.pretrain.tiny_bert import CFG, export_tiny, sst2_glue_dir

POOLER_AND_HEAD = {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                   "classifier.bias"}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, corpus_dir):
    return export_tiny(tmp_path_factory.mktemp("model"), corpus_dir)


@pytest.fixture(scope="module")
def sst2_dir(tmp_path_factory, corpus_dir):
    return sst2_glue_dir(tmp_path_factory.mktemp("SST-2"), corpus_dir)


@pytest.fixture(scope="module")
def pretrained(model_dir):
    return ft.load_pretrained(model_dir)


def _encoder_only(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.startswith("bert.") and "pooler" not in k}


def test_frozen_run_trains_the_pooler_and_classifier_only(pretrained, sst2_dir):
    model = ft.build_classifier(CFG, 2, pretrained.encoder_state, seed=0)
    ft.freeze_encoder(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == POOLER_AND_HEAD
    assert all(n.startswith(ft.FROZEN_TRAINS) for n in trainable)

    tok = fd.load_tokenizer(None, pretrained)[0]
    rows = glue.read_sst2(sst2_dir / "train.tsv").examples
    enc = fd.encode_examples(tok, rows, {"0": 0, "1": 1}, 64)
    splits = Splits(enc.take(np.arange(160)), enc.take(np.arange(160, 240)),
                    enc.take(np.arange(160, 240)), 2)  # fmt: skip
    hp = Hyper(epochs=2, batch_size=16)
    got = {}
    for arm in ("frozen", "pretrained"):
        rec, best = run_one(splits, CFG, pretrained.encoder_state, arm, 3e-3, 0, hp, "accuracy",
                            torch.device("cpu"), keep_best=True)  # fmt: skip
        got[arm] = rec, best
        assert rec["frozen"] == (arm == "frozen")
    (frozen, frozen_state), (trained, trained_state) = got["frozen"], got["pretrained"]
    before = _encoder_only(pretrained.encoder_state)
    for k, v in before.items():  # the frozen arm's encoder is bit for bit the pretrained one
        assert torch.equal(frozen_state[k], v), k
    assert any(not torch.equal(trained_state[k], v) for k, v in before.items())
    for k in POOLER_AND_HEAD - {"classifier.weight", "classifier.bias"}:
        assert not torch.equal(frozen_state[k], pretrained.encoder_state[k]), k
    # Paired: same head init and batch order; only what trains differs.
    assert (frozen["head_init"], frozen["batch_order"]) == (trained["head_init"],
                                                          trained["batch_order"])  # fmt: skip


def test_compare_frozen_and_random_in_one_table(tmp_path, model_dir, sst2_dir, capsys):
    out = tmp_path / "out"
    argv = ["finetune", "--model", str(model_dir), "--task", "sst2", "--glue-dir", str(sst2_dir),
            "--output", str(out), "--lr", "1e-4,3e-3", "--seeds", "2", "--compare-frozen",
            "--compare-random", "--epochs", "1", "--batch-size", "16", "--max-seq-length", "64",
            "--save-best"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["protocol"]["arms"] == ["pretrained", "frozen", "random"]
    runs = res["runs"]
    assert len(runs) == 3 * 2 * 2
    for r in runs:
        assert r["frozen"] == (r["arm"] == "frozen")
    for lr in (1e-4, 3e-3):  # paired: one head init and batch order per seed, in every arm
        for seed in (0, 1):
            same = {(r["head_init"], r["batch_order"]) for r in runs
                    if (r["lr"], r["seed"]) == (lr, seed)}  # fmt: skip
            assert len(same) == 1
    assert len({r["head_init"] for r in runs}) == 2
    choice = res["choice"]
    for c in choice.values():  # each arm at its own best LR on the selection rows
        assert c["lr"] == max(c["by_lr"], key=lambda g: g["select"])["lr"]
    pairs = res["pairs"]
    assert list(pairs) == ["pretrained-random", "pretrained-frozen", "frozen-random"]
    assert res["paired"] == pairs["pretrained-random"]
    for key, pair in pairs.items():
        a, b = key.split("-")
        for s in ("0", "1"):
            want = choice[a]["runs"][s]["dev"] - choice[b]["runs"][s]["dev"]
            assert pair["by_seed"][s] == pytest.approx(want)
    summary = (out / "summary.md").read_text()
    assert summary in printed
    for arm in ("pretrained", "frozen", "random"):
        assert f"| {arm} | {choice[arm]['lr']:g} |" in summary
    assert "Paired difference, pretrained - frozen, dev accuracy" in summary
    assert "| seed | pretrained (epoch) | frozen (epoch) | difference |" in summary
    assert "Arm frozen: the pretrained encoder with its embeddings and layers frozen" in summary
    assert "arm frozen: the pretrained encoder with embeddings and encoder layers frozen" in printed
    # The saved frozen models carry the exported encoder unchanged; the trained ones do not.
    exported = _encoder_only(ft.load_pretrained(model_dir).encoder_state)
    for seed in (0, 1):
        frozen = ft.load_pretrained(out / "best" / f"frozen-seed{seed}").encoder_state
        trained = ft.load_pretrained(out / "best" / f"pretrained-seed{seed}").encoder_state
        assert all(torch.equal(frozen[k], v) for k, v in exported.items())
        assert not all(torch.equal(trained[k], v) for k, v in exported.items())


def test_two_arms_and_the_pairs_of_arms_that_ran(tmp_path, model_dir, sst2_dir):
    out = tmp_path / "out"
    argv = ["finetune", "--model", str(model_dir), "--task", "sst2", "--glue-dir", str(sst2_dir),
            "--output", str(out), "--lr", "3e-3", "--seed-list", "4", "--compare-frozen",
            "--epochs", "1", "--batch-size", "16", "--max-seq-length", "64"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert [r["arm"] for r in res["runs"]] == ["pretrained", "frozen"]
    assert list(res["pairs"]) == ["pretrained-frozen"] and res["paired"] is None
    assert res["pairs"]["pretrained-frozen"]["n"] == 1
    assert "Paired difference, pretrained - frozen" in (out / "summary.md").read_text()
    assert all_paired({"pretrained": res["choice"]["pretrained"]}) == {}


def test_compare_frozen_mistakes_are_one_line_errors(tmp_path, model_dir, sst2_dir, capsys):
    base = ["finetune", "--model", str(model_dir), "--task", "sst2", "--glue-dir", str(sst2_dir),
            "--output", str(tmp_path / "o"), "--compare-frozen"]  # fmt: skip
    for flag in ("--freeze-encoder", "--random-init"):
        assert main([*base, flag]) == 2
        err = capsys.readouterr().err
        assert f"--compare-frozen runs a frozen and a trainable arm: drop {flag}" in err
        assert err.count("\n") == 1

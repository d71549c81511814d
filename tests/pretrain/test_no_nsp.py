"""Shards built with --no-nsp: the loss is MLM only, the NSP head and pooler never move, and no
NSP metric is logged (their constant labels would give a meaningless ~0 loss)."""

from __future__ import annotations

import json

import pytest
import torch

from bertprep.cli import main as bertprep
from pretrain import checkpoint as ckpt
from pretrain import dist
from pretrain.config import BertConfig, preset
from pretrain.lamb import Lamb, lamb_param_groups
from pretrain.model import BertForPreTraining
from pretrain.schedule import poly_warmup_scheduler
from pretrain.step import evaluate, train_step
from pretrain.train import main as train
from sharding.reader import ShardSet

NSP_HEAD = ("bert.pooler.", "cls.seq_relationship.")


@pytest.fixture(scope="module")
def no_nsp_shards(corpus_dir, tmp_path_factory):
    """RUN/seq64 built with --no-nsp from two bundled books (vocab 1000); 1661.txt's document
    id falls in the validation fraction, so there is a validation shard."""
    run = tmp_path_factory.mktemp("no-nsp")
    books = run / "books"
    books.mkdir()
    for name in ("1952-0.txt", "1661.txt"):
        (books / name).write_bytes((corpus_dir / "books" / name).read_bytes())
    argv = ["build", "--books", str(books), "--output", str(run), "--vocab-size", "1000"]
    argv += ["--dupe-factor", "1", "--num-shards", "1", "--max-seq-length", "64", "--no-nsp"]
    assert bertprep([*argv, "--validation-fraction", "0.2"]) == 0
    return run / "seq64"


def test_shards_say_no_nsp(no_nsp_shards):
    shards = ShardSet.open(no_nsp_shards)
    assert shards.nsp is False and shards.training and shards.validation


def test_training_leaves_the_nsp_head_alone_and_logs_no_nsp(no_nsp_shards, tmp_path):
    out = tmp_path / "t"
    argv = ["--data", str(no_nsp_shards), "--output", str(out), "--model", "tiny"]
    argv += ["--recipe", "cpu-demo", "--global-batch", "8", "--max-steps", "3", "--seed", "5"]
    assert train([*argv, "--threads", "1"]) == 0
    torch.manual_seed(5)  # the run's initialisation (Run seeds, then builds the model)
    init = BertForPreTraining(preset("tiny", vocab_size=1000)).state_dict()
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(out / "checkpoints"))["model"]
    head = [k for k in init if k.startswith(NSP_HEAD)]
    assert len(head) == 4  # pooler and NSP classifier, weight and bias each
    for k in head:
        assert torch.equal(final[k], init[k]), k
    moved = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(final[moved], init[moved])  # the rest did train
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_mlm_loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3] and evals
    assert all(not any(k.startswith(("nsp_", "eval_nsp_")) for k in r) for r in rows)
    assert all(r["loss"] == r["mlm_loss"] for r in steps)
    assert evals[-1]["eval_sequences"] > 0


TINY = BertConfig(
    vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=64, max_position_embeddings=32,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)  # fmt: skip


def _batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 300, (4, 16), generator=g)
    return {
        "input_ids": ids,
        "token_type_ids": torch.zeros_like(ids),
        "attention_mask": torch.ones_like(ids),
        "masked_lm_positions": torch.tensor([[1, 5, 9]] * 4),
        "masked_lm_labels": torch.randint(1, 300, (4, 3), generator=g),
        "next_sentence_label": torch.tensor([0, 1, 1, 0]),  # ignored without NSP
    }


@pytest.mark.parametrize("nsp", [True, False])
def test_train_step_without_nsp_has_no_nsp_term_or_gradient(nsp):
    torch.manual_seed(0)
    model = BertForPreTraining(TINY)
    opt = Lamb(lamb_param_groups(model), lr=1e-2)
    sched = poly_warmup_scheduler(opt, 10, 0.0)
    info = dist.DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    r = train_step(model, opt, sched, None, [_batch(1), _batch(2)], info, "fp32", nsp=nsp)
    head_grads = [p.grad for n, p in model.named_parameters() if n.startswith(NSP_HEAD)]
    metrics = evaluate(model, [_batch(3)], info, "fp32", nsp=nsp)
    assert metrics["eval_sequences"] == 4
    if nsp:  # the control: with NSP the head does get a gradient and a loss
        assert all(g is not None and g.abs().sum() > 0 for g in head_grads)
        assert r.nsp_loss > 0.1 and r.loss == pytest.approx(r.mlm_loss + r.nsp_loss)
        assert "eval_nsp_loss" in metrics
        return
    assert head_grads and all(g is None for g in head_grads)
    assert r.nsp_loss is None and r.nsp_acc is None and r.loss == r.mlm_loss
    assert not any(k.startswith("eval_nsp") for k in metrics)
    assert r.sequences == 8

"""Golden curve: our training step against transformers' BertForPreTraining trained by an
independent LAMB, from the same weights on the same batches, step by step.

Ours is the real code path: :func:`pretrain.step.train_step` (two micro-batches per step),
:class:`pretrain.lamb.Lamb`, :func:`pretrain.schedule.poly_warmup_scheduler`, batches from
:class:`pretrain.data.PretrainLoader` over shards built by ``bertprep build``. The reference is
transformers' model (eager attention, all positions through the MLM head, unpadded vocabulary),
with the loss, LAMB (apex ``FusedLAMB`` semantics) and the LR schedule written out below from
their definitions, per parameter, without importing ours. The vocabulary (1001) is not a multiple
of 8, so our padded rows (zero, bias -1e4) are part of what is checked.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
import transformers

from bertprep.cli import main as bertprep
from pretrain import dist
from pretrain.config import BertConfig
from pretrain.data import PretrainLoader
from pretrain.lamb import Lamb, lamb_param_groups
from pretrain.model import BertForPreTraining, strip_vocab_padding
from pretrain.schedule import poly_warmup_scheduler
from pretrain.step import train_step
from sharding.reader import ShardSet

VOCAB = 1001  # padded to 1008 in our model
STEPS, PEAK_LR, WARMUP = 60, 1e-2, 0.1
MICRO, ACCUMULATION = 8, 2


@pytest.fixture(scope="module")
def shards(corpus_dir, tmp_path_factory):
    """RUN/seq64 (masked, with NSP) from one bundled book: 118 training instances."""
    run = tmp_path_factory.mktemp("golden")
    books = run / "books"
    books.mkdir()
    (books / "1952-0.txt").write_bytes((corpus_dir / "books" / "1952-0.txt").read_bytes())
    argv = ["build", "--books", str(books), "--output", str(run), "--vocab-size", str(VOCAB)]
    argv += ["--dupe-factor", "1", "--num-shards", "1", "--max-seq-length", "64"]
    assert bertprep([*argv, "--validation-fraction", "0"]) == 0
    return run / "seq64"


def reference_lr(step: int) -> float:
    """The schedule from its definition: linear warmup on step / total, then the sqrt decay on
    the progress before the step, so the last step (step == STEPS) still has lr > 0."""
    if step / STEPS < WARMUP:
        return PEAK_LR * step / STEPS / WARMUP
    return PEAK_LR * math.sqrt(1.0 - (step - 1) / STEPS)


class ReferenceLamb:
    """apex FusedLAMB's algorithm, one parameter at a time with plain tensor ops."""

    def __init__(self, model, wd=0.01, betas=(0.9, 0.999), eps=1e-6, max_grad_norm=1.0):
        self.params = []  # (parameter, weight decay); tied parameters appear once
        for name, p in model.named_parameters():
            no_decay = name.endswith("bias") or "LayerNorm" in name
            self.params.append((p, 0.0 if no_decay else wd))
        self.m = [torch.zeros_like(p) for p, _ in self.params]
        self.v = [torch.zeros_like(p) for p, _ in self.params]
        self.betas, self.eps, self.max_grad_norm, self.t = betas, eps, max_grad_norm, 0

    @torch.no_grad()
    def step(self, lr: float) -> float:
        b1, b2 = self.betas
        norm = math.sqrt(sum(float(p.grad.double().square().sum()) for p, _ in self.params))
        clip = self.max_grad_norm / max(norm, self.max_grad_norm)
        self.t += 1
        for (p, wd), m, v in zip(self.params, self.m, self.v):
            g = p.grad * clip
            m.mul_(b1).add_((1 - b1) * g)
            v.mul_(b2).add_((1 - b2) * g * g)
            m_hat, v_hat = m / (1 - b1**self.t), v / (1 - b2**self.t)
            update = m_hat / (v_hat.sqrt() + self.eps) + wd * p
            ratio = 1.0
            if wd != 0:  # trust ratio only where weight decay applies (apex without nvlamb)
                w_norm, u_norm = float(p.norm()), float(update.norm())
                if w_norm > 0 and u_norm > 0:
                    ratio = w_norm / u_norm
            p.sub_(lr * ratio * update)
        return norm


def reference_loss(hf, micro: list[dict]) -> tuple[float, int, int]:
    """Forward/backward of transformers' model over one global batch: summed MLM cross-entropy
    at the masked positions / masked count + summed NSP cross-entropy / sequences. Returns the
    loss, the correct MLM predictions and the masked count."""
    masked = sum(int((b["masked_lm_labels"] != -100).sum()) for b in micro)
    sequences = sum(len(b["input_ids"]) for b in micro)
    total, correct = 0.0, 0
    for b in micro:
        out = hf(
            input_ids=b["input_ids"],
            token_type_ids=b["token_type_ids"],
            attention_mask=b["attention_mask"],
        )
        pos = b["masked_lm_positions"]
        logits = torch.gather(out.prediction_logits, 1, pos[..., None].expand(-1, -1, VOCAB))
        labels = b["masked_lm_labels"]
        mlm = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum")
        nsp = F.cross_entropy(
            out.seq_relationship_logits, b["next_sentence_label"], reduction="sum"
        )
        loss = mlm / masked + nsp / sequences
        loss.backward()
        total += float(loss.detach())
        correct += int(((logits.argmax(-1) == labels) & (labels != -100)).sum())
    return total, correct, masked


def test_training_curve_matches_transformers_with_reference_lamb(shards):
    cfg = BertConfig(
        vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    assert ShardSet.open(shards).vocab_size == VOCAB and cfg.padded_vocab_size == 1008
    torch.manual_seed(0)
    ours = BertForPreTraining(cfg).train()
    hf_cfg = transformers.BertConfig(
        **{k: v for k, v in cfg.to_dict().items() if k != "vocab_pad_multiple"},
        attn_implementation="eager",  # not the SDPA path ours takes
    )
    hf = transformers.BertForPreTraining(hf_cfg).train()
    hf.load_state_dict(strip_vocab_padding(ours.state_dict(), VOCAB), strict=True)
    assert hf.cls.predictions.decoder.weight is hf.bert.embeddings.word_embeddings.weight

    optimizer = Lamb(lamb_param_groups(ours), lr=PEAK_LR)
    scheduler = poly_warmup_scheduler(optimizer, STEPS, WARMUP)
    reference = ReferenceLamb(hf)
    info = dist.DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    loader = PretrainLoader(
        shards, MICRO, seed=7, global_batch=MICRO * ACCUMULATION, vocab_size=VOCAB
    )
    batches = iter(loader)
    losses = []
    try:
        for step in range(1, STEPS + 1):
            micro = list(itertools.islice(batches, ACCUMULATION))
            hf.zero_grad(set_to_none=True)
            ref_loss, ref_correct, masked = reference_loss(hf, micro)
            ref_norm = reference.step(reference_lr(step))
            r = train_step(ours, optimizer, scheduler, None, micro, info, "fp32")
            assert r.lr == pytest.approx(reference_lr(step), rel=1e-12), step
            assert abs(r.loss - ref_loss) <= 1e-4 * ref_loss, (step, r.loss, ref_loss)
            assert r.mlm_acc == ref_correct / masked, step
            assert r.grad_norm == pytest.approx(ref_norm, rel=1e-4), step
            losses.append(r.loss)
    finally:
        loader.close()
    assert reference_lr(STEPS) > 0 and ref_norm > 1.0  # the last step moved, clipped at times
    assert sum(losses[-5:]) < sum(losses[:5]) - 5 * 0.5  # a real curve, not a flat one

    mine = strip_vocab_padding(ours.state_dict(), VOCAB)
    worst = 0.0
    for k, w in hf.state_dict().items():
        if k.endswith("attention.self.key.bias"):
            # Softmax over keys ignores a shift shared by all keys, so the key bias's exact
            # gradient is 0: what both get is rounding noise (~1e-10) that Adam scales up to
            # updates of ~lr * noise / eps. Its values are noise in both; only their size is
            # comparable.
            assert float(w.norm()) < 1e-5 and float(mine[k].norm()) < 1e-5, k
            continue
        assert float(w.norm()) > 0, k  # so the relative difference means something
        worst = max(worst, float((mine[k] - w).norm() / w.norm()))
    assert worst < 1e-5, worst  # ~4e-7 measured
    # The padded vocabulary rows never moved (zero gradient, zero weight, no decay).
    assert (ours.bert.embeddings.word_embeddings.weight[VOCAB:] == 0).all()
    assert (ours.cls.predictions.bias[VOCAB:] == -1e4).all()

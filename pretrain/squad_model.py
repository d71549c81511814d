"""Span extraction on our BERT encoder: the model, its seeded build, training, logits, saving.

The layout is transformers' ``BertForQuestionAnswering``: ``bert.*`` (without the pooler, which
the span head never reads) and ``qa_outputs`` = ``Linear(hidden, 2)`` applied to every token's
last hidden state, column 0 the start logit and column 1 the end logit, no dropout before it. A
saved directory loads with ``transformers.BertForQuestionAnswering.from_pretrained`` with no
missing and no unexpected key, and gives the same logits.

The loss is transformers' and Google's: the mean of the start and the end cross-entropy over a
window's positions, here with padded positions masked out (their logits are never chosen).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ground.atomic import atomic_dir
from pretrain.config import BertConfig
from pretrain.export import save_safetensors
from pretrain.finetune import bert_init_, derive_seed
from pretrain.model import BertModel, strip_vocab_padding
from pretrain.squad_data import SquadFeatures

_MASKED = -10000.0  # added to the logits of padded positions in the loss


class BertForQuestionAnswering(nn.Module):
    """BERT encoder + ``qa_outputs`` (transformers' parameter names)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg)
        self.qa_outputs = nn.Linear(cfg.hidden_size, 2)
        self.bert.pooler.requires_grad_(False)  # unused: no gradient, not saved
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bert_init_(self)

    def forward(self, input_ids, token_type_ids, attention_mask):
        """[B, T] ids, segments, mask (1 = real token) -> start and end logits, each [B, T]."""
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)
        start, end = self.qa_outputs(hidden).unbind(-1)
        return start, end


@torch.no_grad()
def build_qa(cfg: BertConfig, encoder_state: dict | None, seed: int) -> BertForQuestionAnswering:
    """A span model with a fresh head on ``encoder_state`` (``bert.*`` keys), or on a random
    encoder when it is ``None``. As :func:`pretrain.finetune.build_classifier`: the head's init
    comes from the seed's ``head`` stream, a random encoder's from its ``encoder`` stream, and
    the global torch RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "encoder"))
        model = BertForQuestionAnswering(cfg)
    head = torch.Generator().manual_seed(derive_seed(seed, "head"))
    model.qa_outputs.weight.normal_(0.0, cfg.initializer_range, generator=head)
    model.qa_outputs.bias.zero_()
    if encoder_state is not None:
        result = model.load_state_dict(encoder_state, strict=False)
        assert set(result.missing_keys) == {"qa_outputs.weight", "qa_outputs.bias"}, result
        assert not result.unexpected_keys, result.unexpected_keys
    return model


def _tensors(data: SquadFeatures, idx: np.ndarray, device) -> tuple[torch.Tensor, ...]:
    """Windows ``idx``, trimmed to the batch's longest: ids, segments, mask, targets [B, 2]."""
    length = int(data.attention_mask[idx].sum(1).max())
    arrays = (data.input_ids, data.token_type_ids, data.attention_mask)
    x = [torch.from_numpy(a[idx, :length]).to(device) for a in arrays]
    return (*x, torch.from_numpy(data.labels[idx]).to(device))


def span_loss(start, end, mask, labels) -> torch.Tensor:
    """Mean over windows of (CE(start) + CE(end)) / 2, nats; padded positions masked out.
    ``start``, ``end``, ``mask``: [B, T]; ``labels``: [B, 2] target token indices."""
    pad = (mask == 0).unsqueeze(0)
    start, end = torch.stack([start, end]).float().masked_fill(pad, _MASKED).unbind(0)
    return (F.cross_entropy(start, labels[:, 0]) + F.cross_entropy(end, labels[:, 1])) / 2


def train_epoch(model, data: SquadFeatures, optimizer, scheduler, order, device="cpu") -> dict:
    """One pass over the batches ``order`` (index arrays of windows; grad clip 1.0).

    Returns ``{"train_loss": mean span loss per window (nats), "steps": optimizer steps}``.
    """
    model.train()
    loss_sum, steps, seen = 0.0, 0, 0
    for idx in order:
        ids, tt, mask, labels = _tensors(data, idx, device)
        loss = span_loss(*model(ids, tt, mask), mask, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        scheduler.step()
        loss_sum += float(loss.detach()) * len(idx)
        seen += len(idx)
        steps += 1
    return {"train_loss": loss_sum / max(1, seen), "steps": steps}


@torch.no_grad()
def predict_logits(model, data: SquadFeatures, batch_size: int = 128, device="cpu"):
    """``(start, end, loss)``: float32 logits ``[N, L]`` in ``data``'s window order (eval mode,
    windows run in length order), and the mean span loss per window (nats)."""
    model.eval()
    order = np.argsort(data.attention_mask.sum(1), kind="stable")
    n, width = data.input_ids.shape
    start, end = np.zeros((n, width), np.float32), np.zeros((n, width), np.float32)
    loss_sum = 0.0
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        ids, tt, mask, labels = _tensors(data, idx, device)
        s, e = model(ids, tt, mask)
        loss_sum += float(span_loss(s, e, mask, labels)) * len(idx)
        start[idx, : s.shape[1]] = s.float().cpu().numpy()
        end[idx, : e.shape[1]] = e.float().cpu().numpy()
    return start, end, loss_sum / max(1, n)


def save_qa(
    model: BertForQuestionAnswering,
    tokenizer_files: dict[str, Path | str],
    out_dir: str | os.PathLike,
) -> None:
    """Write a transformers ``BertForQuestionAnswering`` directory (config, float32
    ``model.safetensors`` without the pooler and the vocabulary padding rows, tokenizer files:
    a ``Path`` is copied, a ``str`` is the file's text), replacing ``out_dir`` atomically."""

    cfg, out_dir = model.config, Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    hf = {k: v for k, v in cfg.to_dict().items() if k != "vocab_pad_multiple"}
    hf.update(architectures=["BertForQuestionAnswering"], model_type="bert", pad_token_id=0)
    state = strip_vocab_padding(model.state_dict(), cfg.vocab_size)
    state = {
        k: v.detach().cpu().contiguous().clone()
        for k, v in state.items()
        if not k.startswith("bert.pooler.")
    }
    with atomic_dir(out_dir) as tmp:
        (tmp / "config.json").write_text(json.dumps(hf, indent=2, sort_keys=True) + "\n")
        save_safetensors(state, tmp / "model.safetensors", {"format": "pt"}, out_dir)
        for name, src in sorted(tokenizer_files.items()):
            if isinstance(src, Path):
                shutil.copyfile(src, tmp / name)
            else:
                (tmp / name).write_text(src, encoding="utf-8")

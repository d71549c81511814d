"""Sequence classification on top of our BERT encoder: model, loading, training, evaluation, saving.

The model is transformers' ``BertForSequenceClassification`` layout (``bert.*`` +
``classifier.{weight,bias}``, pooled ``[CLS]`` -> dropout -> linear), so a saved directory loads
with ``transformers.BertForSequenceClassification.from_pretrained`` and gives the same logits.

Optimisation follows the BERT paper's fine-tuning recipe: AdamW (no weight decay on biases and
LayerNorm weights), linear warmup then linear decay to 0 (transformers'
``get_linear_schedule_with_warmup``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ground.atomic import atomic_dir
from ground.errors import UserError
from pretrain.checkpoint import load_checkpoint
from pretrain.config import BertConfig
from pretrain.export import save_safetensors
from pretrain.finetune_data import Encoded
from pretrain.model import BertModel, pad_vocab, strip_vocab_padding

# Keys a fine-tuned transformers config.json adds; they say nothing about the encoder.
_HEAD_CONFIG_KEYS = ("num_labels", "id2label", "label2id", "problem_type", "finetuning_task")


@torch.no_grad()
def bert_init_(model: nn.Module) -> None:
    """BERT init of a fine-tuning model (``model.config``, ``model.bert``): N(0,
    initializer_range) weights, zero biases, LayerNorm (1, 0); the [PAD] and padded vocabulary
    rows are zero, as in ``BertForPreTraining``. In place, in module order (so a seed gives the
    same weights whatever the head)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight.normal_(0.0, model.config.initializer_range)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
        elif isinstance(m, nn.LayerNorm):
            m.weight.fill_(1.0)
            m.bias.zero_()
    emb = model.bert.embeddings.word_embeddings.weight
    emb[0].zero_()
    emb[model.config.vocab_size :].zero_()


class BertForSequenceClassification(nn.Module):
    """BERT encoder + pooler + dropout + linear head (transformers' parameter names)."""

    def __init__(self, cfg: BertConfig, num_labels: int):
        super().__init__()
        self.config = cfg
        self.num_labels = num_labels
        self.bert = BertModel(cfg)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.classifier = nn.Linear(cfg.hidden_size, num_labels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bert_init_(self)

    def forward(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        """[B, T] ids, segments, mask (1 = real token) -> logits [B, num_labels]."""
        # Only [CLS] feeds the pooler: the last layer runs its queries on that row alone (same
        # function, ~40% less compute for a 2-layer model).
        cls_row = torch.zeros((input_ids.shape[0], 1), dtype=torch.long, device=input_ids.device)
        _, pooled = self.bert(input_ids, token_type_ids, attention_mask, query_index=cls_row)
        return self.classifier(self.dropout(pooled))


@dataclass(frozen=True)
class Pretrained:
    """An encoder to start from: its config, ``bert.*`` weights (vocab-padded) and the
    directory holding its tokenizer files (``None`` for a checkpoint)."""

    config: BertConfig
    encoder_state: dict
    tokenizer_dir: Path | None


def _config_from_dir(path: Path) -> BertConfig:
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"model {path}: no config.json; is it an exported model directory?"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"model {path}/config.json: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"model {path}/config.json: expected a JSON object")
    return BertConfig.from_dict({k: v for k, v in data.items() if k not in _HEAD_CONFIG_KEYS})


def load_pretrained(path: str | os.PathLike) -> Pretrained:
    """Read the encoder of a training checkpoint (``.pt``) or an exported/transformers directory
    (``config.json`` + ``model.safetensors``). Pretraining heads (``cls.*``) and any classifier
    are dropped; vocabulary rows are padded to ``config.padded_vocab_size``.

    Raises:
        UserError: missing or unreadable path, config or weights; encoder weights missing.
    """
    path = Path(path)
    if path.is_dir():
        from safetensors import (
            SafetensorError,  # safetensors: only the paths that read or write weights
        )
        from safetensors.torch import (
            load_file,  # safetensors: only the paths that read or write weights
        )

        cfg = _config_from_dir(path)
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise UserError(f"model {path}: no model.safetensors")
        try:
            state = load_file(weights)
        except (SafetensorError, OSError, ValueError) as e:
            raise UserError(f"model {weights}: unreadable safetensors file ({e})") from None
        if not any(k.startswith("bert.") for k in state):
            state = {f"bert.{k}": v for k, v in state.items()}  # a bare BertModel export
        tok_dir = path
    elif path.is_file():
        ckpt = load_checkpoint(path)
        model_cfg = (ckpt.get("config") or {}).get("model")
        if not isinstance(model_cfg, dict):
            raise UserError(f"checkpoint {path}: no model config in it")
        cfg, state, tok_dir = BertConfig.from_dict(model_cfg), ckpt["model"], None
    else:
        raise UserError(f"model {path}: no such file or directory")
    state = pad_vocab({k: v for k, v in state.items() if k.startswith("bert.")}, cfg)
    with torch.device("meta"):  # key names only, no memory
        expected = BertModel(cfg).state_dict()
    missing = sorted(set(f"bert.{k}" for k in expected) - set(state))
    if missing:
        raise UserError(f"model {path}: {len(missing)} encoder weights missing, e.g. {missing[:3]}")
    return Pretrained(cfg, state, tok_dir)


# Independent random streams drawn from one run seed (see derive_seed).
_STREAMS = {"head": 1, "order": 2, "dropout": 3, "encoder": 4, "eval_split": 5, "select_split": 6}


def derive_seed(seed: int, stream: str) -> int:
    """A 32-bit seed for one use (a key of ``_STREAMS``) of ``seed`` (>= 0). Streams are
    independent, so e.g. initialising a random encoder does not shift the head's init or the
    batch order: a pretrained and a random-init run with one seed are paired exactly. (The
    ``*_split`` streams are drawn from the split seed, never from a run seed.)"""
    return int(np.random.SeedSequence([seed, _STREAMS[stream]]).generate_state(1)[0])


@torch.no_grad()
def build_classifier(
    cfg: BertConfig, num_labels: int, encoder_state: dict | None, seed: int
) -> BertForSequenceClassification:
    """A classifier with a fresh head on ``encoder_state`` (``bert.*`` keys), or on a random
    encoder when ``encoder_state`` is ``None`` (the random-init baseline).

    The head's init depends on ``seed`` alone (its own generator) and the random encoder's on a
    separate stream of it, so both arms of a comparison get the same head for the same seed.
    The global torch RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "encoder"))
        model = BertForSequenceClassification(cfg, num_labels)
    head = torch.Generator().manual_seed(derive_seed(seed, "head"))
    model.classifier.weight.normal_(0.0, cfg.initializer_range, generator=head)
    model.classifier.bias.zero_()
    if encoder_state is not None:
        result = model.load_state_dict(encoder_state, strict=False)
        # strict=False only because the head is new; anything else missing is a bug.
        assert set(result.missing_keys) == {"classifier.weight", "classifier.bias"}, result
        assert not result.unexpected_keys, result.unexpected_keys
    return model


FROZEN_TRAINS = ("bert.pooler.", "classifier.")  # what trains under freeze_encoder: the head


def freeze_encoder(model: BertForSequenceClassification) -> None:
    """Freeze the embeddings and encoder layers; the pooler and classifier (the head) train.

    Unlike the usual transformers recipe (``model.bert.parameters()``, pooler included), the
    pooler counts as head: pretraining trains it for NSP only (with ``--no-nsp`` not at all), so
    frozen it would put a fixed NSP-shaped or random projection before the classifier. Dropout
    stays on in training mode, as in transformers; no gradient reaches the frozen part.
    """
    for module in (model.bert.embeddings, model.bert.encoder):
        for p in module.parameters():
            p.requires_grad_(False)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over trainable parameters; biases and LayerNorm weights get no weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # fused: one kernel per parameter group instead of ~10 passes per tensor; on CPU this is
    # about 2x faster per step for a tiny model, whose 3.9M word-embedding rows dominate.
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, eps=1e-8, fused=True)


class LinearWarmup:
    """LR factor for ``LambdaLR``: ``s / w`` for step ``s < w``, then linear down to 0 at
    ``total`` (``s`` = optimizer steps taken, 0-based). A plain object: picklable state."""

    def __init__(self, total_steps: int, warmup_steps: int):
        self.total_steps, self.warmup_steps = max(1, total_steps), max(0, warmup_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))


def batches(n: int, batch_size: int, rng: np.random.Generator | None):
    """Index arrays of ``batch_size`` (last one shorter); shuffled when ``rng`` is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, group=50):
    """Shuffled batches of rows of similar length: ``[N]`` lengths -> list of index arrays.

    Rows are shuffled, cut into pools of ``group`` batches, each pool sorted by length and cut
    into batches, and then the batches of all pools are shuffled. Each row still appears once
    per epoch in a random batch, but a batch is padded to a length close to its rows' own: on
    SST-2 (mean 13 tokens) the padded length per batch drops from ~40 to ~14 tokens.
    """
    order = rng.permutation(len(lengths))
    out = []
    for i in range(0, len(order), group * batch_size):
        pool = order[i : i + group * batch_size]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        out += [pool[j : j + batch_size] for j in range(0, len(pool), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def lengths_of(data: Encoded) -> np.ndarray:
    """Tokens per row ``[N]`` (int64), specials included."""
    return data.attention_mask.sum(1)


def _tensors(data: Encoded, idx: np.ndarray, device) -> tuple[torch.Tensor, ...]:
    """Rows ``idx`` as tensors, trimmed to the batch's longest sequence."""
    length = int(data.attention_mask[idx].sum(1).max())
    arrays = (data.input_ids, data.token_type_ids, data.attention_mask)
    x = [torch.from_numpy(a[idx, :length]).to(device) for a in arrays]
    return (*x, torch.from_numpy(data.labels[idx]).to(device))


def epoch_batches(data: Encoded, batch_size: int, rng, group_by_length: bool) -> list:
    """The batches (index arrays) of one training epoch, drawn from ``rng``."""
    if group_by_length:
        return grouped_batches(lengths_of(data), batch_size, rng)
    return list(batches(len(data), batch_size, rng))


def train_epoch(
    model, data: Encoded, optimizer, scheduler, batch_size: int, rng, device="cpu", order=None
):
    """One pass over ``data`` in mini-batches (mean cross-entropy, grad clip 1.0): ``order``
    (a list of index arrays, e.g. from :func:`epoch_batches`) or shuffled by ``rng``.

    Returns ``{"train_loss": mean loss per example (nats), "train_accuracy": with dropout on,
    "steps": optimizer steps taken}``.
    """
    model.train()
    loss_sum, correct, steps = 0.0, 0, 0
    for idx in order if order is not None else batches(len(data), batch_size, rng):
        ids, tt, mask, labels = _tensors(data, idx, device)
        logits = model(ids, tt, mask)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        scheduler.step()
        loss_sum += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(-1) == labels).sum())
        steps += 1
    return {
        "train_loss": loss_sum / len(data),
        "train_accuracy": correct / len(data),
        "steps": steps,
    }


@torch.no_grad()
def predict(model, data: Encoded, batch_size: int = 128, device="cpu") -> np.ndarray:
    """Logits ``[N, num_labels]`` (float32, in ``data``'s row order) in eval mode.

    Rows go through in length order, so each batch is padded to about its rows' own length.
    """
    model.eval()
    order = np.argsort(lengths_of(data), kind="stable")
    out = np.empty((len(data), model.num_labels), np.float32)
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        out[idx] = model(*_tensors(data, idx, device)[:3]).float().cpu().numpy()
    return out


def save_classifier(
    model: BertForSequenceClassification,
    id2label: list[str],
    tokenizer_files: dict[str, Path | str],
    out_dir: str | os.PathLike,
) -> None:
    """Write a transformers ``BertForSequenceClassification`` directory, replacing ``out_dir``
    atomically (built in a temp dir beside it, then renamed).

    ``id2label``: label string of each class id. ``tokenizer_files`` maps a file name to a
    ``Path`` to copy, or to a ``str`` holding the file's text (e.g. a generated ``vocab.txt``).
    Vocabulary padding rows are dropped; tensors are float32 as trained.
    """
    cfg, out_dir = model.config, Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    hf = {k: v for k, v in cfg.to_dict().items() if k != "vocab_pad_multiple"}
    hf.update(
        architectures=["BertForSequenceClassification"],
        model_type="bert",
        pad_token_id=0,
        num_labels=len(id2label),
        id2label={str(i): lab for i, lab in enumerate(id2label)},
        label2id={lab: i for i, lab in enumerate(id2label)},
        problem_type="single_label_classification",
    )
    state = strip_vocab_padding(model.state_dict(), cfg.vocab_size)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    with atomic_dir(out_dir) as tmp:
        (tmp / "config.json").write_text(json.dumps(hf, indent=2, sort_keys=True) + "\n")
        save_safetensors(state, tmp / "model.safetensors", {"format": "pt"}, out_dir)
        for name, src in sorted(tokenizer_files.items()):
            if isinstance(src, Path):
                shutil.copyfile(src, tmp / name)
            else:
                (tmp / name).write_text(src, encoding="utf-8")

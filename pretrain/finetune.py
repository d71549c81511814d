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
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bertprep.errors import UserError
from pretrain.checkpoint import load_checkpoint
from pretrain.config import BertConfig
from pretrain.finetune_data import Encoded
from pretrain.model import BertModel, pad_vocab, strip_vocab_padding

# Keys a fine-tuned transformers config.json adds; they say nothing about the encoder.
_HEAD_CONFIG_KEYS = ("num_labels", "id2label", "label2id", "problem_type", "finetuning_task")


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

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """BERT init (N(0, initializer_range) weights, zero biases, LayerNorm (1, 0)); the
        [PAD] and padded vocabulary rows are zero, as in ``BertForPreTraining``."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.normal_(0.0, self.config.initializer_range)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
        emb = self.bert.embeddings.word_embeddings.weight
        emb[0].zero_()
        emb[self.config.vocab_size :].zero_()

    def forward(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        """[B, T] ids, segments, mask (1 = real token) -> logits [B, num_labels]."""
        _, pooled = self.bert(input_ids, token_type_ids, attention_mask)
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
        from safetensors import SafetensorError
        from safetensors.torch import load_file

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


def build_classifier(
    cfg: BertConfig, num_labels: int, encoder_state: dict | None, seed: int
) -> BertForSequenceClassification:
    """A classifier with a fresh head (seeded) on ``encoder_state`` (``bert.*`` keys), or on a
    random encoder when ``encoder_state`` is ``None`` (the random-init baseline)."""
    torch.manual_seed(seed)
    model = BertForSequenceClassification(cfg, num_labels)
    if encoder_state is not None:
        result = model.load_state_dict(encoder_state, strict=False)
        # strict=False only because the head is new; anything else missing is a bug.
        assert set(result.missing_keys) == {"classifier.weight", "classifier.bias"}, result
        assert not result.unexpected_keys, result.unexpected_keys
    return model


def freeze_encoder(model: BertForSequenceClassification) -> None:
    """Train only the classifier: the encoder (and pooler) get ``requires_grad=False``."""
    for p in model.bert.parameters():
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
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, eps=1e-8)


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


def _tensors(data: Encoded, idx: np.ndarray, device) -> tuple[torch.Tensor, ...]:
    """Rows ``idx`` as tensors, trimmed to the batch's longest sequence."""
    length = int(data.attention_mask[idx].sum(1).max())
    arrays = (data.input_ids, data.token_type_ids, data.attention_mask)
    x = [torch.from_numpy(a[idx, :length]).to(device) for a in arrays]
    return (*x, torch.from_numpy(data.labels[idx]).to(device))


def train_epoch(model, data: Encoded, optimizer, scheduler, batch_size: int, rng, device="cpu"):
    """One pass over ``data`` in shuffled mini-batches (mean cross-entropy, grad clip 1.0).

    Returns ``{"train_loss": mean loss per example (nats), "train_accuracy": with dropout on,
    "steps": optimizer steps taken}``.
    """
    model.train()
    loss_sum, correct, steps = 0.0, 0, 0
    for idx in batches(len(data), batch_size, rng):
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
def predict(model, data: Encoded, batch_size: int = 64, device="cpu") -> np.ndarray:
    """Logits ``[N, num_labels]`` (float32) in eval mode."""
    model.eval()
    out = [
        model(*_tensors(data, idx, device)[:3]).float().cpu()
        for idx in batches(len(data), batch_size, None)
    ]
    return torch.cat(out).numpy()


def classification_metrics(pred: np.ndarray, gold: np.ndarray, num_labels: int) -> dict:
    """Accuracy and macro F1 of predicted vs gold label ids (both ``[N]``).

    Macro F1 averages per-class F1 over the classes present in gold or predictions (a class
    absent from both has no defined F1; counting it as 0 would penalise a small eval split).
    """
    acc = float((pred == gold).mean()) if len(gold) else 0.0
    f1s = []
    for c in range(num_labels):
        tp = int(((pred == c) & (gold == c)).sum())
        fp = int(((pred == c) & (gold != c)).sum())
        fn = int(((pred != c) & (gold == c)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": acc, "macro_f1": float(np.mean(f1s)) if f1s else 0.0}


def evaluate(model, data: Encoded, batch_size: int = 64, device="cpu") -> dict:
    """``{"accuracy", "macro_f1", "loss"}`` of ``model`` on ``data`` (loss: mean nats)."""
    logits = predict(model, data, batch_size, device)
    loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(data.labels)))
    metrics = classification_metrics(logits.argmax(-1), data.labels, model.num_labels)
    return {**metrics, "loss": loss}


def majority_baseline(labels: np.ndarray) -> tuple[int, float]:
    """``(label id, accuracy)`` of always predicting the most frequent of ``labels`` (ties: the
    lower id)."""
    counts = np.bincount(labels)
    return int(counts.argmax()), float(counts.max() / len(labels))


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
    from safetensors.torch import save_file

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
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        (tmp / "config.json").write_text(json.dumps(hf, indent=2, sort_keys=True) + "\n")
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        for name, src in sorted(tokenizer_files.items()):
            if isinstance(src, Path):
                shutil.copyfile(src, tmp / name)
            else:
                (tmp / name).write_text(src, encoding="utf-8")
        old = out_dir.with_name(f".{out_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

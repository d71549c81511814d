"""One run of the fine-tuning protocol, and the choices made from a grid of runs.

A run is one (arm, lr, seed): ``epochs`` epochs on the training rows, each followed by an
evaluation on the selection rows (held out of the training file) and on dev. Choices use the
selection rows only: a run's epoch is the one with the best selection metric (the earliest on a
tie), an arm's LR the one whose runs have the best mean selection metric over seeds (the first in
grid order on a tie). Dev metrics are recorded for every epoch, for the record, and reported at
those choices; no choice reads them.

Pairing: everything random in a run is drawn from its seed through independent streams
(:func:`pretrain.finetune.derive_seed`): the head init, the batch order and the dropout masks do
not depend on the arm, so at one seed the pretrained and the random-init run differ only in the
encoder's starting weights. Each record carries fingerprints of its head init and batch order so
this can be checked after the fact. The ``frozen`` arm starts from the same pretrained encoder as
``pretrained`` and trains only the head (:func:`pretrain.finetune.freeze_encoder`), so it differs
from ``pretrained`` only in what trains.

What a run builds, trains and evaluates is its task's :class:`Kind`: :class:`Classification`
here, span extraction in :mod:`pretrain.squad_task`. The protocol (seeds, streams, schedule,
epoch choice) is the same for every kind.

Reuse: :func:`random_key` hashes what a random-init run depends on, so an earlier grid's
random arm can stand in for a rerun (:func:`reusable_random_runs`, ``--reuse-random``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ground.errors import UserError
from pretrain import finetune as ft
from pretrain.config import BertConfig
from pretrain.finetune_data import Encoded
from pretrain.finetune_metrics import logit_metrics, mean_std

ARMS = ("pretrained", "frozen", "random")
# Paired differences reported, a - b, for every pair of arms that ran (see all_paired).
PAIRS = (("pretrained", "random"), ("pretrained", "frozen"), ("frozen", "random"))


@dataclass(frozen=True)
class Hyper:
    """Training settings shared by every run (the LR and seed vary per run)."""

    epochs: int = 3
    batch_size: int = 32
    warmup: float = 0.1  # fraction of all steps
    weight_decay: float = 0.01
    freeze_encoder: bool = False
    group_by_length: bool = True
    eval_batch_size: int = 128


@dataclass(frozen=True)
class Splits:
    """Encoded rows: ``train`` (fitted), ``select`` (held out of the training file, for every
    choice) and ``dev`` (reported, never chosen on). ``num_labels``: classes (classification;
    ignored by other kinds)."""

    train: Encoded
    select: Encoded
    dev: Encoded
    num_labels: int


class Kind(Protocol):
    """What :func:`run_one` needs from a task family. ``data`` is one of a :class:`Splits`'s
    sets: it has ``len`` (rows per epoch) and an ``attention_mask`` ``[N, L]`` (batch order)."""

    def build(self, cfg: BertConfig, encoder_state: dict | None, seed: int) -> nn.Module:
        """The model with a head seeded by ``seed`` (see :func:`pretrain.finetune.derive_seed`)
        on ``encoder_state``, or on a random encoder from the seed's own stream (``None``)."""
        ...

    def head(self, model: nn.Module) -> torch.Tensor:
        """The new head's weight, fingerprinted to check that both arms start from it."""
        ...

    def train_epoch(self, model, data, optimizer, scheduler, order, device) -> dict:
        """Train on the batches ``order``; ``{"train_loss", ..., "steps"}``."""
        ...

    def evaluate(self, model, data, batch_size: int, device) -> dict:
        """Every metric of the kind on ``data`` (floats), ``loss`` among them."""
        ...


@dataclass(frozen=True)
class Classification:
    """Sequence classification into ``num_labels`` classes (:mod:`pretrain.finetune`)."""

    num_labels: int

    def build(self, cfg, encoder_state, seed):
        return ft.build_classifier(cfg, self.num_labels, encoder_state, seed)

    def head(self, model):
        return model.classifier.weight

    def train_epoch(self, model, data, optimizer, scheduler, order, device):
        return ft.train_epoch(model, data, optimizer, scheduler, 0, None, device, order=order)

    def evaluate(self, model, data, batch_size, device):
        return logit_metrics(ft.predict(model, data, batch_size, device), data.labels)


def fingerprint(*arrays) -> str:
    """16 hex digits of the sha256 of the arrays' bytes (to compare, not to secure)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def run_one(
    splits: Splits,
    cfg: BertConfig,
    encoder_state: dict | None,
    arm: str,
    lr: float,
    seed: int,
    hp: Hyper,
    metric: str,
    device: torch.device,
    keep_best: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    kind: Kind | None = None,
) -> tuple[dict, dict | None]:
    """Train one run; returns ``(record, best_state)``.

    ``encoder_state`` is the pretrained encoder (``None``: random init, the ``random`` arm);
    the ``frozen`` arm (and every arm under ``hp.freeze_encoder``) trains the head only;
    ``kind`` what is trained (default: ``Classification(splits.num_labels)``); ``metric`` names
    the selection metric (a key of what ``kind.evaluate`` returns). The record holds
    every epoch's train loss and selection and dev metrics, the chosen ``best_epoch`` with its
    ``select`` and ``dev`` values of ``metric``, wall ``seconds``, and fingerprints
    (``head_init``, ``batch_order``: 16 hex digits of sha256) of what must be equal across
    arms at one seed. ``best_state`` is the CPU state_dict of the best epoch when ``keep_best``.
    """
    t0 = time.time()
    kind = kind if kind is not None else Classification(splits.num_labels)
    model = kind.build(cfg, encoder_state, seed).to(device)
    head_init = fingerprint(kind.head(model).detach().cpu().numpy())
    frozen = hp.freeze_encoder or arm == "frozen"
    if frozen:
        ft.freeze_encoder(model)
    steps_per_epoch = -(-len(splits.train) // hp.batch_size)
    total = steps_per_epoch * hp.epochs
    optimizer = ft.make_optimizer(model, lr, hp.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, ft.LinearWarmup(total, round(hp.warmup * total))
    )
    order_rng = np.random.default_rng(ft.derive_seed(seed, "order"))
    torch.manual_seed(ft.derive_seed(seed, "dropout"))  # dropout masks: same for both arms
    order_hash = hashlib.sha256()
    epochs, best, best_state, step = [], None, None, 0
    for epoch in range(1, hp.epochs + 1):
        order = ft.epoch_batches(splits.train, hp.batch_size, order_rng, hp.group_by_length)
        order_hash.update(np.concatenate(order).tobytes())
        tr = kind.train_epoch(model, splits.train, optimizer, scheduler, order, device)
        step += tr.pop("steps")
        row = {"epoch": epoch, "step": step, **tr}
        for name, data in (("select", splits.select), ("dev", splits.dev)):
            row[name] = kind.evaluate(model, data, hp.eval_batch_size, device)
        epochs.append(row)
        if best is None or row["select"][metric] > best["select"][metric]:
            best = row
            if keep_best:
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if on_epoch:
            on_epoch(row)
    record = {
        "arm": arm,
        "frozen": frozen,
        "lr": lr,
        "seed": seed,
        "epochs": epochs,
        "best_epoch": best["epoch"],
        "select": best["select"][metric],
        "dev": best["dev"][metric],
        "seconds": round(time.time() - t0, 2),
        "head_init": head_init,
        "batch_order": order_hash.hexdigest()[:16],
    }
    return record, best_state


def best_epoch(epochs: list[dict], metric: str) -> dict:
    """The epoch row with the highest selection ``metric`` (the earliest on a tie)."""
    return epochs[int(np.argmax([e["select"][metric] for e in epochs]))]


def choose(runs: list[dict], metric: str) -> dict:
    """Per arm: the LR, and per seed the epoch, chosen on selection metrics alone.

    ``runs``: records of :func:`run_one` (any arms, LRs, seeds; each (arm, lr) should have the
    same seeds). Returns ``{arm: {"lr", "by_lr": [{"lr", "select"}: mean selection metric of
    each LR, in grid order], "runs": {seed: {"epoch", "select", "dev", plus every dev metric as
    "dev_<name>"}}, "dev": mean_std of dev ``metric`` over seeds}}``.
    """
    out = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        mine = [r for r in runs if r["arm"] == arm]
        by_lr: dict[float, list[float]] = {}
        for r in mine:
            by_lr.setdefault(r["lr"], []).append(best_epoch(r["epochs"], metric)["select"][metric])
        means = {lr: float(np.mean(v)) for lr, v in by_lr.items()}
        lr = max(means, key=lambda k: means[k])  # max() keeps the first of equal means
        chosen = {}
        for r in sorted((r for r in mine if r["lr"] == lr), key=lambda r: r["seed"]):
            e = best_epoch(r["epochs"], metric)
            chosen[r["seed"]] = {
                "epoch": e["epoch"],
                "select": e["select"][metric],
                "dev": e["dev"][metric],
                **{f"dev_{k}": v for k, v in e["dev"].items()},
            }
        out[arm] = {
            "lr": lr,
            "by_lr": [{"lr": k, "select": v} for k, v in means.items()],
            "runs": chosen,
            "dev": mean_std(c["dev"] for c in chosen.values()),
        }
    return out


def paired(choice: dict, a: str = "pretrained", b: str = "random") -> dict | None:
    """Dev metric of arm ``a`` minus arm ``b`` at each seed both have, each at its own chosen LR
    and epoch: ``{"by_seed": {seed: diff}, **mean_std, "positive": seeds with diff > 0}``;
    ``None`` unless both arms ran."""
    if a not in choice or b not in choice:
        return None
    ra, rb = choice[a]["runs"], choice[b]["runs"]
    diffs = {s: ra[s]["dev"] - rb[s]["dev"] for s in ra if s in rb}
    stats = mean_std(diffs.values())
    return {"by_seed": diffs, **stats, "positive": sum(d > 0 for d in diffs.values())}


def random_key(plan, splits: Splits, cfg: BertConfig, info: dict) -> str:
    """What a random-init run depends on, hashed: the encoded rows of every split (so the
    tokenizer and the split seed), the architecture, the hyperparameters, the metric, the
    device and the torch version. Not the pretrained weights: that arm never sees them.
    ``plan``: a :class:`pretrain.compare.Plan`; ``info``: its data description."""
    arrays = [
        a
        for part in (splits.train, splits.select, splits.dev)
        for a in (part.input_ids, part.token_type_ids, part.attention_mask, part.labels)
    ]
    facts = {
        "rows": fingerprint(*arrays),
        "config": cfg.to_dict(),
        "hyper": asdict(plan.hyper),
        "max_seq_length": plan.max_seq_length,
        "metric": plan.metric,
        "device": plan.device.type,
        "torch": torch.__version__,
        "split": info["split_fingerprint"],
    }
    if "squad" in info:  # window and decoding settings (absent for classification: same key)
        facts["squad"] = info["squad"]
    if plan.hyper.freeze_encoder:  # what a frozen run trains changed once (pooler now trains)
        facts["frozen_trains"] = list(ft.FROZEN_TRAINS)
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def reusable_random_runs(path: Path, key: str) -> dict[tuple[float, int], dict]:
    """``(lr, seed) -> record`` of the random-init runs in an earlier ``results.json`` made
    with the same :func:`random_key` (same rows, architecture, hyperparameters, device).

    Raises:
        UserError: unreadable file, or one made under a different key.
    """
    try:
        earlier = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"--reuse-random {path}: cannot read it as results.json ({e})") from None
    if earlier.get("random_key") != key:
        raise UserError(
            f"--reuse-random {path}: made with other data, architecture, hyperparameters or "
            "device (its random_key differs); random-init runs can be reused only unchanged"
        )
    return {(r["lr"], r["seed"]): r for r in earlier.get("runs", []) if r["arm"] == "random"}


def all_paired(choice: dict) -> dict:
    """:func:`paired` for each pair of :data:`PAIRS` whose arms both ran, keyed ``"a-b"``
    (``pretrained-random``, ``pretrained-frozen``, ``frozen-random``)."""
    return {f"{a}-{b}": paired(choice, a, b) for a, b in PAIRS if a in choice and b in choice}

"""One optimizer step and one evaluation, written out: accumulation, AMP, DDP sync, LAMB.

The MLM loss of a step is the summed cross-entropy of every masked token of the *global* batch
(all micro-batches, all ranks) divided by their count, and the NSP loss likewise per sequence,
so the gradient does not depend on how the global batch is split into micro-batches or ranks.
DDP averages gradients over ranks, so each rank's loss is multiplied by the world size.

``nsp=False`` (shards built with ``--no-nsp``, whose labels are all 0): MLM loss only. The
model gets no NSP labels, so no NSP term enters the loss or the gradient, and the NSP metrics
are None (not a meaningless ~0 loss on constant labels).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch

from ground.errors import UserError
from pretrain import dist

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class StepResult:
    """What one optimizer step measured (plain floats, summed over ranks where it matters).

    ``nsp_loss``/``nsp_acc`` are None when the step trained without NSP.
    """

    loss: float
    mlm_loss: float
    mlm_acc: float
    nsp_loss: float | None
    nsp_acc: float | None
    grad_norm: float
    lr: float  # the rate this step's update used (the scheduler has since moved to the next)
    sequences: int
    tokens: int
    seconds: float
    skipped: bool


def autocast(device: torch.device, precision: str):
    """``torch.autocast`` for bf16/fp16 on the device, or a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(device: torch.device, precision: str):
    """A GradScaler (initial scale 2**20, as NVIDIA's recipe) for fp16, else None."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type, init_scale=2.0**20)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _forward(model, batch: dict, nsp: bool) -> dict:
    return model(
        batch["input_ids"],
        batch["token_type_ids"],
        batch["attention_mask"],
        batch["masked_lm_positions"],
        batch["masked_lm_labels"],
        batch["next_sentence_label"] if nsp else None,
    )


def train_step(
    model, optimizer, scheduler, scaler, micro_batches: list[dict], info, precision, nsp=True
):
    """Forward/backward every micro-batch of one global step, then one LAMB step.

    Args:
        model: the (possibly DDP-wrapped) BertForPreTraining.
        micro_batches: this rank's micro-batches of the step (dicts of CPU tensors).
        info: :class:`pretrain.dist.DistInfo`.
        nsp: add the NSP loss (False: MLM only, see the module docstring).
    """
    t0 = time.perf_counter()
    device = info.device
    counts = torch.tensor(
        [
            sum(int((b["masked_lm_labels"] != -100).sum()) for b in micro_batches),
            sum(len(b["input_ids"]) for b in micro_batches),
        ],
        dtype=torch.float64,
    )
    mlm_total, sequences = dist.all_reduce_sum(counts.to(device)).tolist()
    if mlm_total == 0:
        raise UserError("a global batch without any masked token: check the shards")
    sums = torch.zeros(6, dtype=torch.float64, device=device)
    optimizer.zero_grad(set_to_none=True)
    last = len(micro_batches) - 1
    for i, batch in enumerate(micro_batches):
        batch = to_device(batch, device)
        sync = i == last or not hasattr(model, "no_sync")
        with contextlib.nullcontext() if sync else model.no_sync():
            with autocast(device, precision):
                out = _forward(model, batch, nsp)
            loss = out["mlm_loss_sum"] / mlm_total
            if nsp:
                loss = loss + out["nsp_loss_sum"] / sequences
            loss = loss * info.world_size  # DDP averages gradients over ranks
            (scaler.scale(loss) if scaler else loss).backward()
        sums += _sums(out)
    lr = float(optimizer.param_groups[0]["lr"])  # before scheduler.step() sets the next one
    skipped = False
    if scaler is not None:
        scaler.unscale_(optimizer)
        scale_before = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped = scaler.get_scale() < scale_before
    else:
        optimizer.step()
    scheduler.step()
    s = dist.all_reduce_sum(sums).tolist()
    if not all(map(_finite, s[:1] + s[3:4])):
        raise FloatingPointError(f"non-finite loss at this step: {s}")
    norm = getattr(optimizer, "last_grad_norm", None)
    nsp_loss = s[3] / s[5] if nsp else None
    return StepResult(
        loss=s[0] / s[2] + (nsp_loss or 0.0),
        mlm_loss=s[0] / s[2],
        mlm_acc=s[1] / s[2],
        nsp_loss=nsp_loss,
        nsp_acc=s[4] / s[5] if nsp else None,
        grad_norm=float(norm) if norm is not None else float("nan"),
        lr=lr,
        sequences=int(sequences),
        tokens=int(
            dist.all_reduce_sum(
                torch.tensor(
                    [float(sum(int(b["attention_mask"].sum()) for b in micro_batches))],
                    device=device,
                )
            ).item()
        ),
        seconds=time.perf_counter() - t0,
        skipped=skipped,
    )


_SUM_KEYS = ("mlm_loss_sum", "mlm_correct", "mlm_count", "nsp_loss_sum", "nsp_correct", "nsp_count")


def _sums(out: dict) -> torch.Tensor:
    """The model's six sums as one float64 vector (detached), for reduction over ranks; the
    NSP ones are 0 when the model got no NSP labels."""
    zero = out["mlm_loss_sum"].new_zeros(())
    return torch.stack([out.get(k, zero).detach().double() for k in _SUM_KEYS])


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


@torch.no_grad()
def evaluate(model, loader, info, precision, nsp=True) -> dict:
    """MLM loss/accuracy and NSP loss/accuracy (``nsp=False``: none) over every validation
    batch (summed over ranks)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(7, dtype=torch.float64, device=info.device)
    for batch in loader:
        batch = to_device(batch, info.device)
        with autocast(info.device, precision):
            out = _forward(model, batch, nsp)
        rows = sums.new_tensor([len(batch["input_ids"])])
        sums += torch.cat([_sums(out), rows])
    model.train(was_training)
    s = dist.all_reduce_sum(sums).tolist()
    if s[2] == 0:
        return {}
    metrics = {"eval_mlm_loss": s[0] / s[2], "eval_mlm_acc": s[1] / s[2]}
    if nsp:
        metrics["eval_nsp_loss"] = s[3] / max(s[5], 1)
        metrics["eval_nsp_acc"] = s[4] / max(s[5], 1)
    metrics["eval_sequences"] = int(s[6])
    return metrics

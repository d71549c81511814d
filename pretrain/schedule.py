"""NVIDIA's ``PolyWarmUpScheduler`` written out: linear warmup, then ``(1 - p) ** 0.5`` decay.

For the 1-based optimizer step ``step`` of ``total_steps``::

    lr = peak * (step / total) / warmup            if step / total < warmup
    lr = peak * (1 - (step - 1) / total) ** degree  otherwise (degree 0.5)
    lr = 0                                          for step > total

**Every one of the ``total_steps`` steps has lr > 0.** NVIDIA evaluates both branches at
``p = step / total``, which gives the last step ``lr = 0``: a whole forward/backward spent on no
update. Here the decay is evaluated at ``(step - 1) / total``, the progress made *before* the
step, so the decay is NVIDIA's curve one step later and the last step gets
``peak * sqrt(1 / total)``. Warmup keeps NVIDIA's ``step / total`` (progress *after* the step),
so the first step gets ``peak / (total * warmup) > 0`` (the progress before it, 0, would
waste the first step instead of the last).

**The step down at the end of warmup is kept.** Warmup ends near ``peak`` but the decay branch
starts at about ``peak * (1 - warmup) ** 0.5`` (0.846 peak for phase 1's warmup 0.2843, 0.934
peak for phase 2's 0.128): NVIDIA's published LAMB hyperparameters (6e-3 / 4e-3) were tuned
with this curve, and reproducing their recipe matters more than a smooth curve.
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from ground.errors import UserError


def poly_warmup_lr(
    step: int, total_steps: int, peak_lr: float, warmup: float, degree: float = 0.5
) -> float:
    """Learning rate for the ``step``-th optimizer step (1-based).

    Args:
        step: optimizer step about to be taken, 1 for the first.
        total_steps: steps of this phase (> 0).
        peak_lr: LR at the end of warmup.
        warmup: warmup as a fraction of ``total_steps`` (NVIDIA's ``warmup_proportion``), in [0, 1).
        degree: exponent of the decay (0.5 in NVIDIA's recipe).

    Returns:
        The learning rate: > 0 for ``1 <= step <= total_steps``, 0 for ``step <= 0`` and for
        ``step > total_steps``.
    """
    if total_steps <= 0:
        raise UserError(f"LR schedule: total steps must be > 0, got {total_steps}")
    if not 0.0 <= warmup < 1.0:
        raise UserError(f"LR schedule: warmup must be a fraction in [0, 1), got {warmup}")
    if step <= 0:
        return 0.0
    if step / total_steps < warmup:
        return peak_lr * (step / total_steps) / warmup
    # Progress before this step, so the last step (step == total_steps) still has lr > 0;
    # clamped so steps past the end get 0, never a complex number.
    done = min((step - 1) / total_steps, 1.0)
    return peak_lr * (1.0 - done) ** degree


class PolyWarmup:
    """LR factor (a plain object, not a closure) for :class:`~torch.optim.lr_scheduler.LambdaLR`.

    ``LambdaLR`` saves a callable object's ``__dict__`` in its ``state_dict`` (plain numbers
    here, so it loads with ``weights_only=True``). The factor at scheduler epoch ``e`` (0 before
    the first optimizer step) is ``poly_warmup_lr(e + 1, ...) / peak``: the LR set when step
    ``e + 1`` is taken.
    """

    def __init__(self, total_steps: int, warmup: float, degree: float = 0.5):
        poly_warmup_lr(1, total_steps, 1.0, warmup, degree)  # validate arguments early
        self.total_steps = total_steps
        self.warmup = warmup
        self.degree = degree

    def __call__(self, epoch: int) -> float:
        return poly_warmup_lr(epoch + 1, self.total_steps, 1.0, self.warmup, self.degree)


def poly_warmup_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup: float, degree: float = 0.5
) -> LambdaLR:
    """A ``LambdaLR`` applying :func:`poly_warmup_lr` to every group's initial ``lr`` (the peak).

    Call ``scheduler.step()`` after each ``optimizer.step()``. ``state_dict()`` holds the
    position and the schedule parameters; a new phase builds a new scheduler (step restarts).
    """
    return LambdaLR(optimizer, PolyWarmup(total_steps, warmup, degree))

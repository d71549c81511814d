"""LAMB with NVIDIA's semantics (apex ``FusedLAMB``), on ``torch._foreach_*`` multi-tensor ops.

One step, for all parameters with a gradient:

1. global gradient norm ``n`` over every group (accumulated in float64); gradients scaled by
   ``max_grad_norm / n`` when ``n > max_grad_norm`` (clip to 1.0 first, as NVIDIA's recipe does);
2. Adam moments ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, bias-corrected with the
   group's step count ``t``: ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``;
3. ``u = m_hat / (sqrt(v_hat) + eps) + wd * w``;
4. per tensor, ``ratio = ||w|| / ||u||`` (1 where either norm is 0); groups with ``wd == 0``
   (biases, LayerNorm) use ratio 1, as apex does without ``use_nvlamb``;
5. ``w -= lr * ratio * u``.

State names match apex (``exp_avg``, ``exp_avg_sq`` per parameter, ``step`` per group), and the
state is tensors and plain numbers, so ``torch.load(weights_only=True)`` restores it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ground.errors import UserError


def lamb_param_groups(model: nn.Module, weight_decay: float = 0.01) -> list[dict]:
    """Two parameter groups: decay for weight matrices and embeddings, none for bias/LayerNorm.

    Names follow NVIDIA's ``no_decay = ['bias', 'gamma', 'beta', 'LayerNorm']``. Tied
    parameters appear once (``named_parameters`` deduplicates).
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = name.endswith("bias") or "LayerNorm" in name or name.endswith(("gamma", "beta"))
        (no_decay if skip else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class Lamb(torch.optim.Optimizer):
    """LAMB optimizer (see module docstring). ``last_grad_norm`` holds the pre-clip norm."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        max_grad_norm: float = 1.0,
        compiled: bool = False,
    ):
        if lr < 0 or eps <= 0 or max_grad_norm <= 0 or not (0 <= min(betas) <= max(betas) < 1):
            raise UserError(
                f"LAMB: invalid hyperparameters lr={lr} betas={betas} eps={eps} "
                f"max_grad_norm={max_grad_norm}"
            )
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, step=0)
        super().__init__(params, defaults)
        self.max_grad_norm = max_grad_norm
        self.last_grad_norm: torch.Tensor | None = None
        # compiled: the whole update fused into a few kernels by torch.compile (first step
        # pays the compilation; eager foreach is the default).
        self._compiled = torch.compile(lamb_update, dynamic=False) if compiled else None

    def _grads_and_clip(self) -> tuple[list[torch.Tensor], torch.Tensor] | None:
        """All gradients (every group) and the clip coefficient, a 0-d fp32 tensor <= 1."""
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return None
        if any(g.is_sparse for g in grads):
            raise RuntimeError("LAMB does not support sparse gradients")
        # Per-tensor norms as float64, combined in float64; on device (no host sync). On CPU
        # the norm kernel sums squares sequentially per vector lane: in fp32 a 2M-element
        # gradient's norm came out 2e-5..7e-5 low (float64 accumulation: exact to 1e-15, about
        # 1 ms). CUDA's fused kernel reduces as a tree in fp32 and writes float64 outputs.
        norms = torch._foreach_norm(grads, 2.0, dtype=torch.float64)
        norm = torch.linalg.vector_norm(torch.stack(norms))
        self.last_grad_norm = norm
        # max / max(n, max): exactly 1.0 when n <= max, else max / n (NVIDIA's g / (n / max)).
        # Kept in at least fp32 (float64 only for float64 grads), as the update's scalars.
        dtype = torch.float64 if any(g.dtype == torch.float64 for g in grads) else torch.float32
        clip = (self.max_grad_norm / torch.clamp(norm, min=self.max_grad_norm)).to(dtype)
        return grads, clip

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        found = self._grads_and_clip()
        if found is None:
            return loss
        _, clip = found
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            group["step"] += 1
            self._update_group(group, params, clip)
        return loss

    def _state(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state = self.state[p]
        if not state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state["exp_avg"], state["exp_avg_sq"]

    def _update_group(self, group: dict, params: list[torch.Tensor], clip: torch.Tensor) -> None:
        beta1, beta2 = group["betas"]
        t = group["step"]
        m, v = zip(*(self._state(p) for p in params))
        bc1, bc2_sqrt = 1.0 - beta1**t, math.sqrt(1.0 - beta2**t)
        scalars = (group["lr"], bc1, bc2_sqrt)
        if self._compiled is not None:  # per-step numbers as 0-d tensors: no recompilation
            dev = params[0].device
            scalars = tuple(torch.tensor(x, dtype=torch.float32, device=dev) for x in scalars)
        fn = self._compiled or lamb_update
        fn(params, [p.grad for p in params], list(m), list(v), clip.to(params[0].device),
           *scalars, beta1, beta2, group["eps"], group["weight_decay"])  # fmt: skip


def lamb_update(params, grads, m, v, clip, lr, bc1, bc2_sqrt, beta1, beta2, eps, wd) -> None:
    """One LAMB update of a group's tensors in place (lists of equal length; ``lr``, ``bc1 = 1 -
    b1^t`` and ``bc2_sqrt = sqrt(1 - b2^t)`` are floats, or 0-d tensors when compiled)."""
    grads = torch._foreach_mul(grads, clip)
    torch._foreach_lerp_(m, grads, 1.0 - beta1)  # b1 m + (1 - b1) g in one pass
    torch._foreach_mul_(v, beta2)
    torch._foreach_addcmul_(v, grads, grads, value=1.0 - beta2)
    del grads
    # u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps), rearranged to save two passes over the
    # moments: (m / (sqrt(v) + eps sqrt(bc2))) * (sqrt(bc2) / bc1). Then u += wd * w.
    denom = torch._foreach_sqrt(v)
    torch._foreach_add_(denom, eps * bc2_sqrt)
    update = torch._foreach_div(m, denom)
    del denom
    torch._foreach_mul_(update, bc2_sqrt / bc1)
    if wd != 0:
        torch._foreach_add_(update, params, alpha=wd)
        w_norm = torch.stack(torch._foreach_norm(params, 2.0))
        u_norm = torch.stack(torch._foreach_norm(update, 2.0))
        ratio = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, 1.0)
        torch._foreach_mul_(update, list(ratio.unbind(0)))
    torch._foreach_mul_(update, lr)
    torch._foreach_sub_(params, update)


class LambReference(Lamb):
    """The same algorithm written per parameter with plain tensor ops, for tests and benchmarks."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        all_params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not all_params:
            return loss
        norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in all_params))
        self.last_grad_norm = norm
        clip = self.max_grad_norm / norm if norm > self.max_grad_norm else 1.0
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            group["step"] += 1
            beta1, beta2 = group["betas"]
            t, wd = group["step"], group["weight_decay"]
            for p in params:
                m, v = self._state(p)
                g = p.grad * clip
                m.mul_(beta1).add_(g, alpha=1.0 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                m_hat = m / (1.0 - beta1**t)
                v_hat = v / (1.0 - beta2**t)
                u = m_hat / (v_hat.sqrt() + group["eps"])
                ratio = 1.0
                if wd != 0:
                    u = u + wd * p
                    w_norm, u_norm = p.norm(), u.norm()
                    if w_norm > 0 and u_norm > 0:
                        ratio = w_norm / u_norm
                p.sub_(group["lr"] * ratio * u)
        return loss


def reset_step_count(optimizer: torch.optim.Optimizer) -> None:
    """Set every group's step to 0 (phase 2 restarts bias correction, as NVIDIA does).

    The moments are kept. Works for :class:`Lamb` and apex ``FusedLAMB`` (both keep
    ``step`` per group).
    """
    for group in optimizer.param_groups:
        group["step"] = 0


def make_lamb(
    param_groups: list[dict], lr: float, use_apex: bool = False, compiled: bool = False, **kwargs
):
    """:class:`Lamb` (``compiled``: its update through torch.compile), or apex ``FusedLAMB``
    (same semantics and state names) when asked for and importable. ``kwargs``: ``betas``,
    ``eps``, ``max_grad_norm``."""
    if use_apex:
        try:
            from apex.optimizers import FusedLAMB  # optional CUDA extension
        except ImportError:
            pass
        else:
            return FusedLAMB(param_groups, lr=lr, **kwargs)
    return Lamb(param_groups, lr=lr, compiled=compiled, **kwargs)

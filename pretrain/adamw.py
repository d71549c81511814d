"""AdamW with global gradient-norm clipping, with the interface of :class:`pretrain.lamb.Lamb`.

LAMB's trust ratio makes each tensor's relative step equal to the learning rate, which suits
the huge global batches it was made for (NVIDIA's 65536); at the small batches of one CPU or one
GPU, Adam-style updates are the usual choice for small encoders (the BERT paper used Adam at
batch 256). This is ``torch.optim.AdamW`` (foreach implementation, decoupled weight decay, bias
correction) with two additions the trainer relies on:

- the global gradient norm is clipped to ``max_grad_norm`` (1.0, as for LAMB) before each step,
  and the pre-clip norm is kept in ``last_grad_norm`` (a 0-d tensor, float64 accumulation of
  per-tensor norms, so the logged norm of a 2M-element embedding gradient is exact);
- :func:`reset_adamw_steps` restarts bias correction for phase 2, as ``reset_step_count`` does
  for LAMB.

Parameter groups are :func:`pretrain.lamb.lamb_param_groups` (no decay on bias and LayerNorm).
"""

from __future__ import annotations

import torch

from ground.errors import UserError


class AdamW(torch.optim.AdamW):
    """``torch.optim.AdamW`` + global norm clipping + ``last_grad_norm`` (see module docstring)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.98), eps: float = 1e-6,
                 weight_decay: float = 0.01, max_grad_norm: float = 1.0):  # fmt: skip
        if lr < 0 or eps <= 0 or max_grad_norm <= 0:
            raise UserError(f"AdamW: invalid hyperparameters lr={lr} eps={eps}")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         foreach=True)  # fmt: skip
        self.max_grad_norm = max_grad_norm
        self.last_grad_norm: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, closure=None):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            # float64 accumulation, as LAMB's (fp32 was ~2e-5 low on a 2M-element gradient)
            norms = torch._foreach_norm(grads, 2.0, dtype=torch.float64)
            norm = torch.linalg.vector_norm(torch.stack(norms))
            self.last_grad_norm = norm
            clip = (self.max_grad_norm / torch.clamp(norm, min=self.max_grad_norm)).float()
            torch._foreach_mul_(grads, clip.to(grads[0].device))
        return super().step(closure)


def reset_adamw_steps(optimizer: torch.optim.Optimizer) -> None:
    """Zero every parameter's step counter (bias correction restarts; moments are kept)."""
    for state in optimizer.state.values():
        if "step" in state:
            state["step"] = torch.zeros_like(torch.as_tensor(state["step"]))

"""TrainConfig: everything one phase of pretraining runs with, resolved and validated.

Built once by the ``train`` command (:func:`pretrain.train.resolve`: flags over the recipe's
defaults) and passed to :class:`pretrain.trainer.Run`; nothing below the command sees
argparse. :meth:`TrainConfig.schedule` is the part recorded in every checkpoint (key
``config.train``), which a resumed run must agree with.
"""

from __future__ import annotations

from dataclasses import dataclass

# The schedule's fields, in the order checkpoints have always stored them.
SCHEDULE_KEYS = (
    "phase",
    "recipe",
    "global_batch",
    "lr",
    "warmup",
    "total_steps",
    "seed",
    "bin_size",
    "mask_prob",
    "optimizer",
    "dropout",
    "micro_batch",
    "accumulation",
    "max_steps",
)


@dataclass(frozen=True)
class TrainConfig:
    """One phase of pretraining.

    Where: ``data`` (a local shard directory), ``output`` (checkpoints, metrics).
    Model: ``model`` (preset name or None), ``config`` (a config JSON or None), ``init_from``
    (a checkpoint to start from), ``resume`` (continue the latest in ``output``).
    Schedule (recorded in checkpoints): ``phase`` (1 or 2), ``recipe``, ``global_batch``
    (sequences per optimizer step, all ranks), ``micro_batch`` (sequences per forward pass per
    rank), ``accumulation`` (micro-batches per step), ``lr`` (peak), ``warmup`` (fraction of
    ``total_steps``), ``total_steps`` (schedule length), ``max_steps`` (stop after),
    ``seed``, ``bin_size`` (length bins, 0 = off), ``mask_prob`` (dynamic masking),
    ``optimizer`` (lamb, lamb-compiled, apex, adamw), ``dropout`` (None = the model's).
    Run control: ``time_budget`` (seconds or None), ``checkpoint_every`` and ``eval_every``
    (steps; eval 0 = only at the end), ``keep_last`` (checkpoints kept), ``precision`` (fp32,
    bf16, fp16 or None = by device), ``compile`` (torch.compile), ``log_samples``.
    """

    data: str
    output: str
    phase: int
    recipe: str
    global_batch: int
    micro_batch: int
    accumulation: int
    lr: float
    warmup: float
    total_steps: int
    max_steps: int
    seed: int
    bin_size: int
    mask_prob: float
    optimizer: str
    dropout: float | None = None
    model: str | None = None
    config: str | None = None
    init_from: str | None = None
    resume: bool | str = False  # True: the latest checkpoint in output; a path: that one
    time_budget: float | None = None
    checkpoint_every: int = 200
    keep_last: int = 3
    eval_every: int = 0
    precision: str | None = None
    compile: bool = False
    log_samples: bool = False

    def schedule(self) -> dict:
        """The settings a checkpoint records (``config.train``), in their historical order."""
        return {k: getattr(self, k) for k in SCHEDULE_KEYS}

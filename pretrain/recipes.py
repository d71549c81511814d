"""Named training recipes: the defaults ``--recipe`` fills in for each phase.

Any flag given explicitly overrides its recipe value. The values and why:

- ``nvidia``: NVIDIA's published BERT values (global batch 65536 / 32768, LAMB 6e-3 / 4e-3,
  warmup 0.2843 / 0.128, 7038 / 1563 steps), for many GPUs.
- ``gpu1``: the same on one GPU, with the batch divided by 32 and the LR scaled by the square
  root of the batch ratio.
- ``cpu``: found by measurement for small compute (docs/pretraining.md, "A recipe for small
  compute"): AdamW at 2e-3 rather than LAMB (at batch 64, LAMB's per-tensor trust ratio sets
  each tensor's relative step to the LR, and the LAMB LRs we tried sat on the unigram plateau
  where AdamW 2e-3 left it after ~150 steps), 15% dynamic masking (30% learnt more per step but
  a tiny model's step cost 1.55x as much, its vocabulary head dominating), no dropout while
  pretraining (a short run cannot overfit), MLM-only shards (``--no-nsp --unmasked``). Meant
  for the ``tiny`` and ``mini`` models with ``--total-steps`` sized to the time you have.
- ``cpu-demo``: the fast settings the tests and ``make demo --fast`` use (a handful of steps;
  not meant to learn anything).

``dropout`` is the dropout used *while pretraining*: the saved and exported model config keeps
the architecture's own (0.1 for the presets), which fine-tuning then uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhaseRecipe:
    """One phase's defaults. ``warmup`` is a fraction of ``total_steps``."""

    global_batch: int
    lr: float
    warmup: float
    total_steps: int
    optimizer: str = "lamb"
    mask_prob: float = 0.15  # share of tokens masked on the fly (unmasked shards only)
    dropout: float | None = None  # None: the model config's


RECIPES: dict[str, dict[int, PhaseRecipe]] = {
    "nvidia": {1: PhaseRecipe(65536, 6e-3, 0.2843, 7038), 2: PhaseRecipe(32768, 4e-3, 0.128, 1563)},
    "gpu1": {
        1: PhaseRecipe(2048, 1.06e-3, 0.2843, 7038),
        2: PhaseRecipe(1024, 1.0e-3, 0.128, 1563),
    },
    "cpu": {
        1: PhaseRecipe(64, 2e-3, 0.05, 4000, optimizer="adamw", dropout=0.0),
        2: PhaseRecipe(16, 5e-4, 0.1, 200, optimizer="adamw", dropout=0.0),
    },
    "cpu-demo": {1: PhaseRecipe(32, 5e-3, 0.1, 60), 2: PhaseRecipe(16, 2e-3, 0.1, 12)},
}

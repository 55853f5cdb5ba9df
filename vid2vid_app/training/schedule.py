"""Learning-rate schedule: constant, then linear decay to zero (pix2pix / CycleGAN / pix2pixHD).

Steps are counted from 0. The update that takes the model from step ``s`` to ``s + 1`` uses
``lr * lr_factor(s, steps, decay_steps)``::

    factor(s) = 1                              for s <  steps - decay_steps
    factor(s) = (steps - s) / decay_steps      for s >= steps - decay_steps

so the factor is 1 at the first decay step and reaches 0 exactly at ``s == steps`` (the end of
training; no update is wasted at LR 0). The LR depends on the step alone, so resuming at a step
restores the LR without any scheduler state.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch.optim import Optimizer


def lr_factor(step: int, steps: int, decay_steps: int) -> float:
    """Multiplier of the base LR for the update at 0-based ``step`` (see the module docstring)."""
    if steps <= 0:
        raise ValueError("steps must be positive")
    decay_steps = max(0, min(decay_steps, steps))
    if decay_steps == 0 or step < steps - decay_steps:
        return 1.0
    return max(0.0, (steps - step) / decay_steps)


def set_lr(optimizers: Iterable[Optimizer], lr: float) -> None:
    """Set every parameter group of every optimizer to ``lr``."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr

"""Mixed precision for one training iteration: autocast + an optional fp16 gradient scaler.

CUDA: bf16 autocast where the GPU supports it (no scaler needed), else fp16 with a GradScaler.
CPU: bf16 autocast or fp32, as the run's ``cpu_bf16`` setting says (by default on where the CPU has
native bf16: :func:`vid2vid_app.config.resolve_cpu_bf16`). One scaler serves every optimizer of an iteration
(``backward``/``step`` per loss and optimizer, ``update`` once at the end), as torch recommends for
several losses and optimizers.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from ..device import autocast, autocast_dtype


class Amp:
    """Autocast and gradient scaling for ``device``; ``enabled=False`` means plain fp32."""

    def __init__(self, device: torch.device | str = "cpu", enabled: bool = True, cpu_bf16: bool = False):
        self.device = torch.device(device)
        self.dtype = autocast_dtype(self.device, cpu_bf16) if enabled else None
        use_scaler = self.dtype == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    @classmethod
    def for_run(cls, device: torch.device | str, amp: bool, cpu_bf16: bool) -> Amp:
        """The precision of a run's settings on ``device``: on CUDA ``amp`` decides (bf16, or fp16 with
        a scaler); on the CPU ``cpu_bf16`` alone (bf16 autocast or fp32), so a preset that keeps
        CUDA in fp32 still gets the CPU's bf16."""
        device = torch.device(device)
        if device.type == "cpu":
            return cls(device, enabled=cpu_bf16, cpu_bf16=cpu_bf16)
        return cls(device, enabled=amp)

    @classmethod
    def off(cls) -> Amp:
        """Plain fp32 on CPU (what ``train_step(..., amp=None)`` uses)."""
        return cls("cpu", enabled=False)

    def autocast(self):
        """Context for forward passes and losses (a no-op in fp32)."""
        return autocast(self.device, self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled when fp16 needs it."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def step(self, optimizer: Optimizer) -> None:
        """``optimizer.step()``; with a scaler the step is skipped when gradients overflowed."""
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        """Adjust the loss scale once per iteration (after every optimizer stepped)."""
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

    @property
    def precision(self) -> str:
        """The precision in words for logs and summaries: "fp32", "bf16 autocast" or "fp16
        autocast with a grad scaler"."""
        if self.dtype is None:
            return "fp32"
        name = str(self.dtype).replace("torch.", "").replace("bfloat16", "bf16").replace("float16", "fp16")
        return f"{name} autocast" + (" with a grad scaler" if self.scaler is not None else "")

    def __repr__(self) -> str:
        dtype = str(self.dtype).replace("torch.", "") if self.dtype else "fp32"
        return f"Amp({self.device}, {dtype}{', grad scaler' if self.scaler else ''})"

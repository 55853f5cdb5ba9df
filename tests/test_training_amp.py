"""Mixed-precision plumbing: which autocast / scaler each device gets, and the scaler's step logic."""

from __future__ import annotations

import torch

from vid2vid_app.training import Amp


def test_cpu_defaults_to_fp32_and_bf16_is_opt_in():
    assert Amp("cpu").dtype is None and Amp("cpu").scaler is None
    amp = Amp("cpu", cpu_bf16=True)
    assert amp.dtype == torch.bfloat16 and amp.scaler is None
    with amp.autocast():
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16
    assert Amp("cpu", enabled=False, cpu_bf16=True).dtype is None


def test_scaled_step_skips_overflow_and_updates_otherwise():
    """The fp16 path (CUDA only in training) exercised with torch's CPU GradScaler: a finite
    gradient steps the optimizer, an infinite one is skipped and halves the scale."""
    amp = Amp.off()
    amp.scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.5)

    amp.backward((w * 2).sum())
    amp.step(opt)
    amp.update()
    assert torch.allclose(w.detach(), torch.zeros(3))  # 1 - 0.5 * 2 (gradient unscaled)

    opt.zero_grad()
    amp.backward((w * float("inf")).sum())
    amp.step(opt)
    amp.update()
    assert torch.allclose(w.detach(), torch.zeros(3))  # skipped
    assert amp.state_dict()["scale"] == 4.0

"""Mixed-precision plumbing: which autocast / scaler each device gets, and the scaler's step logic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vid2vid_app.config import cpu_flags_have_bf16, cpu_has_native_bf16, resolve_cpu_bf16
from vid2vid_app.training import Amp


def test_amp_object_on_cpu_is_fp32_unless_bf16_is_asked_for():
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


# Feature flags as Linux shows them (abridged to the vector extensions) for four kinds of x86 CPU.
HASWELL = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2"
CASCADE_LAKE = f"{HASWELL} avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"
ZEN4 = f"{CASCADE_LAKE} avx512_bf16 avx512vbmi avx512_vbmi2 avx512_bitalg avx512_vpopcntdq"
SAPPHIRE_RAPIDS = f"{ZEN4} avx512_fp16 amx_bf16 amx_tile amx_int8"


@pytest.mark.parametrize(("flags", "native"), [(HASWELL, False), (CASCADE_LAKE, False), (ZEN4, True),
                                               (SAPPHIRE_RAPIDS, True), ("", False)],
                         ids=["avx2-only", "avx512-without-bf16", "avx512-bf16", "amx", "no-flags"])
def test_native_bf16_needs_bf16_instructions_not_just_avx512(flags, native):
    """Only AVX512-BF16 or AMX-BF16 count: AVX2 and plain AVX-512 CPUs run bf16 emulated (slower)."""
    assert cpu_flags_have_bf16(flags) is native
    assert not cpu_flags_have_bf16(flags.replace("avx512_bf16", "").replace("amx_bf16", ""))


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file() or not hasattr(torch.cpu, "_is_avx512_bf16_supported"),
                    reason="needs Linux's /proc/cpuinfo and PyTorch's own CPU probe to compare")
def test_native_bf16_detection_agrees_with_pytorchs_cpu_probe():
    """The kernel's flags (what the detection reads) and PyTorch's cpuinfo probe agree on this CPU."""
    assert cpu_has_native_bf16() is bool(torch.cpu._is_avx512_bf16_supported())


def test_cpu_precision_follows_cpu_bf16_alone_and_cuda_follows_amp():
    """A run's settings -> precision: on the CPU cpu_bf16 decides (amp is CUDA's switch, and the
    tiny dance preset keeps it off); None means "where the CPU has native bf16"."""
    assert Amp.for_run("cpu", amp=False, cpu_bf16=True).dtype == torch.bfloat16
    assert Amp.for_run("cpu", amp=True, cpu_bf16=False).dtype is None
    assert Amp.for_run("cpu", amp=True, cpu_bf16=True).precision == "bf16 autocast"
    assert Amp.for_run("cpu", amp=True, cpu_bf16=False).precision == "fp32"
    assert resolve_cpu_bf16(None) is cpu_has_native_bf16()
    assert resolve_cpu_bf16(True) is True and resolve_cpu_bf16(False) is False
    scaled = Amp.off()
    scaled.dtype, scaled.scaler = torch.float16, torch.amp.GradScaler("cpu")
    assert scaled.precision == "fp16 autocast with a grad scaler"

"""Device choice and mixed-precision context shared by training and inference."""

from __future__ import annotations

import contextlib

import torch

from .errors import UserError


def resolve_device(name: str | None = None) -> torch.device:
    """``None``/"auto" -> CUDA when available else CPU; "cuda", "cuda:1", "cpu" are checked."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} was asked for but no CUDA GPU is available.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r} does not exist: {torch.cuda.device_count()} GPU(s) found.")
    return device


def autocast_dtype(device: torch.device, cpu_bf16: bool = False) -> torch.dtype | None:
    """The autocast dtype to use: bf16 on GPUs that support it, else fp16 on CUDA; on CPU only
    when bf16 was opted into (``cpu_bf16``); ``None`` means full fp32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_bf16:
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` on ``device`` (a no-op context when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


_CPU_MEMORY_REUSE: bool | None = None


def reuse_freed_memory() -> bool:
    """Keep freed memory in the process for reuse instead of returning it to the OS (Linux/glibc).

    By default glibc serves large blocks (activations, gradients) with fresh mmap pages and unmaps
    them on free, so every training step pays the kernel to fault in and zero the same memory
    again: about 20% of a CPU training step's time for these networks (bench/train_bench.py). With
    mmap off and trimming raised, freed blocks are reused. The computation is unchanged; the
    process keeps its peak memory. Process-wide and idempotent; returns whether it is in effect
    (False on other platforms and C libraries).
    """
    global _CPU_MEMORY_REUSE
    if _CPU_MEMORY_REUSE is None:
        _CPU_MEMORY_REUSE = False
        import ctypes
        import platform

        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL("libc.so.6")
                m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
                _CPU_MEMORY_REUSE = bool(libc.mallopt(m_mmap_max, 0)) and bool(
                    libc.mallopt(m_trim_threshold, 2**31 - 1))
            except (OSError, AttributeError):
                pass
    return _CPU_MEMORY_REUSE

"""Device choice, mixed-precision context and CPU threads shared by training and inference."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

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


def cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend (Inductor) would build its kernels with: the
    path of ``$CXX``, else of g++ (clang++ on macOS); None when there is none on the PATH."""
    import shutil
    import sys

    name = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
    return shutil.which(name.split()[0]) if name.strip() else None


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


# ---------------------------------------------------------------------------------------------
# CPU threads
# ---------------------------------------------------------------------------------------------

_TORCH_DEFAULT_THREADS: int | None = None


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask (taskset, cpusets), capped by a cgroup v2
    CPU quota (containers); at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(float(quota) / float(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def busy_cores(sample_s: float = 0.2) -> float:
    """How many of this process's CPUs other processes keep busy right now (0 .. usable cores).

    Linux: two samples of /proc/stat ``sample_s`` apart, summing each CPU's busy fraction over the
    CPUs in the affinity mask (this process sleeps meanwhile, so the busy time is others').
    Elsewhere: the 1-minute load average, which trails changes by tens of seconds.
    """
    try:
        cpus = {f"cpu{i}" for i in os.sched_getaffinity(0)}
        first = _cpu_times(cpus)
        time.sleep(sample_s)
        second = _cpu_times(cpus)
    except (OSError, AttributeError, ValueError):
        try:
            return min(float(usable_cores()), os.getloadavg()[0])
        except OSError:
            return 0.0
    busy = 0.0
    for cpu, (busy1, total1) in second.items():
        busy0, total0 = first.get(cpu, (busy1, total1))
        if total1 > total0:
            busy += (busy1 - busy0) / (total1 - total0)
    return busy


def _cpu_times(cpus: set[str]) -> dict[str, tuple[int, int]]:
    """(busy, total) clock ticks per CPU of ``cpus`` from /proc/stat; idle and iowait are not busy."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] in cpus:
            ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
            times[fields[0]] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    if not times:
        raise ValueError("no per-CPU lines in /proc/stat")
    return times


def default_threads(torch_default: int | None = None) -> int:
    """Compute threads that fit the CPUs free right now: the usable cores minus those other
    processes keep busy (rounded), at least 1 and at most ``torch_default`` (PyTorch's own choice,
    one per core) when given.

    PyTorch's default of one thread per core collapses when the cores are shared: every parallel
    region waits for its slowest thread, and a thread that shares its core with another busy
    process runs at half speed or less, so the whole step slows to the pace of the shared core.
    """
    free = usable_cores() - busy_cores()
    threads = max(1, int(free + 0.5))
    return min(threads, torch_default) if torch_default else threads


def configure_threads(threads: int | None = None) -> int:
    """Set the CPU threads of PyTorch (intra-op and inter-op) and OpenCV; returns the intra-op count.

    ``threads`` None: keep PyTorch's count when ``OMP_NUM_THREADS`` is set (the user chose it), else
    :func:`default_threads`. The inter-op pool can only be sized before its first use; later calls
    leave it as it is. Process-wide.
    """
    global _TORCH_DEFAULT_THREADS
    if _TORCH_DEFAULT_THREADS is None:
        _TORCH_DEFAULT_THREADS = torch.get_num_threads()
    if threads is None:
        threads = _TORCH_DEFAULT_THREADS if os.environ.get("OMP_NUM_THREADS") else default_threads(
            _TORCH_DEFAULT_THREADS)
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already started (e.g. by an earlier call)
        torch.set_num_interop_threads(threads)
    import cv2

    cv2.setNumThreads(threads)
    return threads


def thread_note() -> str:
    """The compute threads in use, for logs and summaries, e.g. "2 CPU threads"."""
    n = torch.get_num_threads()
    return f"{n} CPU thread{'s' if n != 1 else ''}"

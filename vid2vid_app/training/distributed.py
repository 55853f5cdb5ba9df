"""Multi-GPU / multi-node training with torch.distributed (launched by ``torchrun``).

``torchrun --nproc_per_node N -m ...`` (or ``python -m torch.distributed.run``) starts one process
per GPU with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set. :func:`setup` sees ``WORLD_SIZE > 1``,
joins the process group (NCCL on CUDA, gloo on CPU) and picks ``cuda:LOCAL_RANK``. The training loop
then wraps each trainable network in DistributedDataParallel (optionally converting BatchNorm to
SyncBatchNorm first), splits the data with :class:`~.sampler.EpochSampler`, and lets rank 0 alone
write logs, samples and checkpoints. Without ``WORLD_SIZE`` everything is a single process and
nothing here does any work.

``TrainConfig.batch_size`` is per process: the global batch is ``batch_size * world_size``.

The job around the loop (``dance train``, ``translate-video train``) runs on every rank too. What
touches shared files there (the run folder, data caches, configs, the final model) goes through
:func:`run_on_main` or :func:`main_process_first`, so rank 0 alone writes while the others wait.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..device import resolve_device
from ..errors import UserError

T = TypeVar("T")

# How long the other ranks wait for rank 0's job-level work: decoding and pose detection of a long
# target video take far longer than the default collective timeout (10 min for NCCL).
JOB_WAIT_TIMEOUT = timedelta(hours=12)
_job_group = None  # gloo group for those waits, made on first use


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        """True when training runs in several processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, samples and checkpoints."""
        return self.rank == 0


def setup(device: str | None = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``); else one process.

    Under torchrun, ``device`` "auto"/"cuda" means ``cuda:LOCAL_RANK`` and "cpu" forces gloo on CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(0, 1, 0, resolve_device(device))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device in (None, "", "auto"):
        use_cuda = torch.cuda.is_available()
    else:
        use_cuda = resolve_device(device).type == "cuda"
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"process with LOCAL_RANK {local_rank} has no GPU: only "
                            f"{torch.cuda.device_count()} visible; start fewer processes per node.")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        atexit.register(cleanup)
    return DistInfo(rank, world_size, local_rank, dev)


def cleanup() -> None:
    """Leave the process group (safe to call when none was joined)."""
    global _job_group
    _job_group = None
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True in a single process and in rank 0 under torchrun (before or after :func:`setup`):
    the one process that prints summaries."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def wrap_ddp(module: nn.Module, info: DistInfo, sync_bn: bool = False) -> nn.Module:
    """``module`` in DistributedDataParallel (BatchNorm -> SyncBatchNorm first when ``sync_bn``).

    Parameters and buffers are broadcast from rank 0 when the wrapper is built, so every rank starts
    from identical weights.
    """
    if not info.enabled:
        return module
    if sync_bn:
        if info.device.type != "cuda":  # torch's SyncBatchNorm fails on CPU tensors at the first step
            raise UserError("--sync-bn synchronises batch norm across GPUs and needs CUDA devices; leave it "
                            "out when training on CPUs.")
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def any_flag(flags: list[bool], info: DistInfo) -> list[bool]:
    """Element-wise OR of boolean flags over all ranks (so every rank takes the same decision)."""
    if not info.enabled:
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def gather_objects(obj, info: DistInfo) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in one process)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in one process)."""
    if info.enabled:
        dist.barrier()


def run_on_main(fn: Callable[[], T], info: DistInfo) -> T:
    """``fn()`` on rank 0 alone; every rank returns its result (small and picklable) or raises its error.

    For job-level work that only one process may do, such as clobbering a run folder or writing a
    config or the final model: run on every rank, it would race. The other ranks wait for rank 0;
    when ``fn`` fails there, they raise a :class:`UserError` with the same message instead of
    waiting forever in the next collective for a rank that has stopped. One process: just ``fn()``.
    """
    if not info.enabled:
        return fn()
    return _on_main_then_share(fn, info, share_result=True)


def main_process_first(fn: Callable[[], T], info: DistInfo) -> T:
    """``fn()`` on rank 0 first, then, once it succeeded, on the other ranks; each returns its own result.

    For work that fills a cache, such as decoding videos and detecting poses into the run folder:
    rank 0 does it while the others wait, then they find the finished files and only read them.
    Errors reach every rank as in :func:`run_on_main`. One process: just ``fn()``.
    """
    if not info.enabled:
        return fn()
    result = _on_main_then_share(fn, info, share_result=False)
    return result if info.is_main else fn()


def _on_main_then_share(fn: Callable[[], T], info: DistInfo, share_result: bool):
    """Rank 0 runs ``fn`` and broadcasts ``[error message or None, result or None]``; the other ranks
    block in that broadcast (on a gloo group with a long timeout) and raise the error if there is one."""
    global _job_group
    if _job_group is None:
        _job_group = dist.new_group(backend="gloo", timeout=JOB_WAIT_TIMEOUT)
    if not info.is_main:
        box = [None, None]
        dist.broadcast_object_list(box, src=0, group=_job_group)
        if box[0] is not None:
            raise UserError(box[0])
        return box[1]
    try:
        result = fn()
    except BaseException as exc:
        message = str(exc) if isinstance(exc, UserError) else (
            f"rank 0 failed with {type(exc).__name__}: {exc} (its output has the details).")
        dist.broadcast_object_list([message, None], src=0, group=_job_group)
        raise
    dist.broadcast_object_list([None, result if share_result else None], src=0, group=_job_group)
    return result

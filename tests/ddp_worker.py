"""Worker for tests/test_ddp.py, started twice by ``python -m torch.distributed.run
--nproc_per_node 2 --standalone tests/ddp_worker.py OUT``.

Each rank trains the tiny pix2pix (instance norm, no dropout) for 2 steps, resumes to 4 steps
(exercising checkpoints and RNG gathering under DDP), and saves its final weights to
OUT/rank<R>.pt for the test to compare. Then 2 steps of CycleGAN and of the temporal objective,
whose generators run several forward passes before one backward pass, save their weights to
OUT/cyclegan_rank<R>.pt and OUT/temporal_rank<R>.pt.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_utils import PairedToy, TemporalToy, state_of, tiny_cyclegan, tiny_pix2pix, tiny_temporal  # noqa: E402

from vid2vid_app.training import TrainConfig, distributed, train  # noqa: E402


def config(steps: int, batch_size: int, decay_steps: int = 2) -> TrainConfig:
    # fp32 also on CPUs with native bf16: two ranks of batch 1 are compared with one process of
    # batch 2 within 1e-5, far below bf16's rounding.
    return TrainConfig(steps=steps, decay_steps=decay_steps, batch_size=batch_size, device="cpu", log_every=1,
                       sample_every=0, checkpoint_every=100, deterministic=True, seed=1, cpu_bf16=False)


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    objective = tiny_pix2pix(seed=rank, norm="instance", dropout=False)  # different start on purpose: DDP broadcasts rank 0's weights
    if rank != 0:
        objective.G.apply(lambda m: torch.nn.init.zeros_(m.weight) if hasattr(m, "weight") and
                          isinstance(m.weight, torch.Tensor) and m.weight.dim() > 1 else None)
    # Steps 1-2 of a 4-step run whose LR decays over steps 3-4: the LR is constant so far.
    train(objective, PairedToy(n=4), config(2, 1, decay_steps=0), out / "run", quiet=True)
    train(objective, PairedToy(n=4), config(4, 1), out / "run", resume=True, quiet=True)
    torch.save(state_of(objective), out / f"rank{rank}.pt")

    cyclegan = tiny_cyclegan(seed=rank)
    train(cyclegan, PairedToy(n=4), config(2, 1), out / "cyclegan", quiet=True)
    torch.save(state_of(cyclegan), out / f"cyclegan_rank{rank}.pt")
    temporal = tiny_temporal(seed=rank)
    train(temporal, TemporalToy(n=4), config(2, 1), out / "temporal", quiet=True)
    torch.save(state_of(temporal), out / f"temporal_rank{rank}.pt")
    info = distributed.setup("cpu")
    ran = []  # ranks on which fn ran
    shared = distributed.run_on_main(lambda: ran.append(rank) or f"from rank {rank}", info)
    (out / f"main_rank{rank}.txt").write_text(f"{shared}, ran here: {ran == [rank]}")


if __name__ == "__main__":
    main()

"""Two-process DDP training on CPU (gloo) matches one process on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import config
from training_utils import PairedToy, assert_same_state, state_of, tiny_pix2pix

from vid2vid_app.training import checkpoint_path, load_checkpoint, train

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path):
    """Ranks end with identical weights (rank 1 even starts from other weights: DDP broadcasts
    rank 0's), equal to one process with batch 2 over 4 steps within float tolerance; only rank 0
    writes logs and checkpoints; resuming under DDP continues the same run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           str(WORKER), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert_same_state(rank0, rank1)

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = tiny_pix2pix(seed=0, norm="instance", dropout=False)
        train(single, PairedToy(n=4), config(4, 2), tmp_path / "single", quiet=True)
    finally:
        torch.set_num_threads(n)
    # Conv biases right before an instance norm have zero gradient in exact arithmetic (the norm
    # removes any per-channel constant); Adam turns their rounding-noise gradients into full-size
    # random steps, so those biases differ between any two summation orders while having no effect
    # on any output. Compare every weight tensor, and the networks' outputs.
    ref = state_of(single)
    assert_same_state({k: v for k, v in rank0.items() if k.endswith("weight")},
                      {k: v for k, v in ref.items() if k.endswith("weight")}, atol=1e-5)
    ddp = tiny_pix2pix(seed=5, norm="instance", dropout=False)
    for name, net in ddp.networks().items():
        net.load_state_dict({k[len(name) + 1:]: v for k, v in rank0.items() if k.startswith(name + ".")})
    x = PairedToy(n=1, augment=False)[0]
    with torch.no_grad():
        fake_ddp, fake_single = ddp.G(x["A"][None]), single.G(x["A"][None])
        torch.testing.assert_close(fake_ddp, fake_single, atol=1e-5, rtol=0)
        pair = torch.cat((x["A"][None], x["B"][None]), 1)
        torch.testing.assert_close(ddp.D(pair), single.D(pair), atol=1e-5, rtol=0)
    # The update really moved the weights (so the comparison is not between two untouched models).
    start = state_of(tiny_pix2pix(seed=0, norm="instance", dropout=False))
    assert any(not torch.allclose(start[k], rank0[k]) for k in start)

    # Objectives whose generators run several forward passes per backward pass also train in sync.
    for name in ("cyclegan", "temporal"):
        a = torch.load(tmp_path / f"{name}_rank0.pt", weights_only=True)
        b = torch.load(tmp_path / f"{name}_rank1.pt", weights_only=True)
        assert_same_state(a, b)

    # Job-level work runs on rank 0 alone and its result reaches every rank.
    assert [(tmp_path / f"main_rank{r}.txt").read_text() for r in (0, 1)] == [
        "from rank 0, ran here: True", "from rank 0, ran here: False"]

    records = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "losses" in r] == [1, 2, 3, 4]
    ckpt = load_checkpoint(checkpoint_path(tmp_path / "run"))
    assert ckpt["step"] == 4 and ckpt["global_batch"] == 2 and len(ckpt["rng"]) == 2


def test_sync_bn_on_cpu_processes_is_refused_before_training():
    """torch's SyncBatchNorm runs on GPUs only (on CPU tensors it raises at the first forward pass);
    a CPU process of a multi-process run gets one clear sentence instead. One process: no-op."""
    from vid2vid_app.errors import UserError
    from vid2vid_app.training.distributed import DistInfo, wrap_ddp

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    two = DistInfo(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    with pytest.raises(UserError, match="--sync-bn .* needs CUDA"):
        wrap_ddp(net, two, sync_bn=True)
    one = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    assert wrap_ddp(net, one, sync_bn=True) is net

"""The GPU paths: training steps in bf16 and fp16 (+ GradScaler) and channels_last, checkpoints
written on CUDA and loaded on a CPU, generators and the translate / transfer pipelines on CUDA
against the same on CPU, and the CLIs with ``--device cuda``.

Every test here is skipped without a CUDA GPU: on the developer machines and in CI (neither has
one) this module only reports skips. Run it on a GPU machine with ``pytest tests/test_cuda.py``
(tiny networks; well under a minute on one GPU, most of it CUDA start-up and cuDNN autotuning).
Nothing here needs MediaPipe or ../shared: poses are synthetic, videos are generated.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (the developer machines and CI have none)")

CUDA = torch.device("cuda")


# ----------------------------------------------------------------------------------- helpers
def _toy_batch(kind: str, n: int = 2) -> dict[str, torch.Tensor]:
    from training_utils import PairedToy, TemporalToy

    data = TemporalToy(n) if kind == "temporal" else PairedToy(n, augment=False)
    items = [data[i] for i in range(n)]
    return {k: torch.stack([item[k] for item in items]) for k in items[0]}


def _objective(kind: str):
    from training_utils import tiny_pix2pix, tiny_temporal

    if kind == "pix2pix":
        return tiny_pix2pix()
    if kind == "temporal":
        return tiny_temporal()
    from vid2vid_app.models import build_discriminator, build_generator
    from vid2vid_app.training import Pix2PixHDObjective

    torch.manual_seed(0)
    G = build_generator("global", ngf=4, n_downsample=2, n_blocks=1)
    D = build_discriminator("multiscale", in_channels=6, ndf=4, n_layers=2, num_d=2)
    return Pix2PixHDObjective(G, D, vgg=None, n_layers_d=2, num_d=2)


def _amp(precision: str):
    from vid2vid_app.training import Amp

    if precision == "fp32":
        return Amp(CUDA, enabled=False)
    amp = Amp(CUDA)  # what train() uses: bf16 where supported (fp16 + scaler otherwise)
    if precision == "bf16":
        if not torch.cuda.is_bf16_supported():
            pytest.skip("this GPU has no bf16")
        assert amp.dtype == torch.bfloat16 and amp.scaler is None
    else:  # force the fp16 path that GPUs without bf16 take; a modest scale avoids skipped first steps
        amp.dtype = torch.float16
        amp.scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10)
    return amp


def _params(objective) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": p.detach().float().cpu().clone()
            for n, net in objective.networks().items() for k, p in net.named_parameters()}


# ----------------------------------------------------------------------------------- training
@pytest.mark.parametrize("kind", ["pix2pix", "pix2pixhd", "temporal"])
@pytest.mark.parametrize("precision,channels_last", [("bf16", False), ("fp16", False), ("bf16", True),
                                                     ("fp32", True)])
def test_training_steps_on_cuda(kind, precision, channels_last):
    """Three iterations on the GPU: finite losses, every network's weights move, fp32 master
    weights (autocast never changes the parameters' dtype), outputs on the GPU."""
    objective = _objective(kind).to(CUDA)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    objective.to(memory_format=fmt).train()
    batch = {k: v.to(CUDA).contiguous(memory_format=fmt) for k, v in _toy_batch(kind).items()}
    optimizers = objective.make_optimizers(2e-4, (0.5, 0.999))
    amp = _amp(precision)
    before = _params(objective)
    for _ in range(3):
        losses = objective.train_step(batch, optimizers, amp)
        assert losses and all(math.isfinite(v) for v in losses.values()), losses
    after = _params(objective)
    for name in objective.networks():
        moved = [k for k in before if k.startswith(name + ".") and not torch.equal(before[k], after[k])]
        assert moved, f"no weight of {name} changed ({precision}, channels_last={channels_last})"
    assert all(p.dtype == torch.float32 and p.is_cuda for p in objective.parameters())
    assert all(img.is_cuda for img in objective.sample_images())
    if amp.scaler is not None:
        assert amp.scaler.get_scale() > 0


def test_train_loop_on_cuda_then_checkpoint_resumes_and_exports_on_cpu(tmp_path):
    """train() on CUDA (bf16/fp16, channels_last, cuDNN autotuning): its checkpoint loads on a CPU,
    training resumes there, and the exported generator runs on the CPU."""
    from training_utils import PairedToy, tiny_pix2pix

    from vid2vid_app.training import (
        TrainConfig,
        checkpoint_path,
        export_generator,
        load_checkpoint,
        load_generator_export,
        train,
    )

    cfg = dict(steps=3, decay_steps=1, log_every=1, sample_every=0, checkpoint_every=100, seed=1)
    gpu = tiny_pix2pix()
    result = train(gpu, PairedToy(), TrainConfig(device="cuda", **cfg), tmp_path, quiet=True)
    assert result.step == 3 and all(math.isfinite(v) for v in result.losses.values())
    log = (tmp_path / "log.txt").read_text()
    assert "cuda" in log and ("bf16 autocast" in log or "fp16 autocast" in log)

    data = load_checkpoint(checkpoint_path(tmp_path))  # map_location cpu
    tensors = [v for net in data["networks"].values() for v in net.values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert "cuda" in data["rng"][0]

    resumed = tiny_pix2pix(seed=5)
    result = train(resumed, PairedToy(), TrainConfig(device="cpu", **{**cfg, "steps": 4}), tmp_path,
                   resume=True, quiet=True)
    assert result.start_step == 3 and result.step == 4 and all(math.isfinite(v) for v in result.losses.values())

    export_generator(tmp_path / "g.pt", gpu.generator(), {"note": "trained on cuda"})
    g, meta = load_generator_export(tmp_path / "g.pt", "cpu")
    assert meta["note"] == "trained on cuda" and next(g.parameters()).device.type == "cpu"
    with torch.inference_mode():
        out = g(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert torch.isfinite(out).all()


# ----------------------------------------------------------------------------------- inference
GENERATORS = [("unet_256", dict(n_downs=6, ngf=8)), ("resnet_9blocks", dict(ngf=8, n_blocks=2)),
              ("global", dict(ngf=8, n_downsample=2, n_blocks=2))]


@pytest.mark.parametrize("arch,kw", GENERATORS, ids=[a for a, _ in GENERATORS])
def test_generator_on_cuda_matches_cpu(arch, kw):
    """fp32 on the GPU (cuDNN may use TF32) within 3e-2 of the CPU; the translate pipeline's
    FrameTranslator (bf16 autocast, channels_last) within a few grey levels."""
    from vid2vid_app.models import build_generator
    from vid2vid_app.translate.run import FrameTranslator

    torch.manual_seed(0)
    g = build_generator(arch, **kw).eval()
    x = torch.rand(2, 3, 64, 128) * 2 - 1
    with torch.inference_mode():
        expected = g(x)
        got = copy.deepcopy(g).to(CUDA)(x.to(CUDA)).cpu()
    assert (got - expected).abs().max().item() < 3e-2

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (50, 90, 3), dtype=np.uint8) for _ in range(3)]
    cpu_out = FrameTranslator(copy.deepcopy(g), "cpu", amp=False)(frames)
    gpu_out = FrameTranslator(copy.deepcopy(g), CUDA, amp=True)(frames)
    diff = np.abs(np.stack(cpu_out).astype(int) - np.stack(gpu_out).astype(int))
    assert gpu_out[0].shape == (50, 90, 3)
    assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 12, (diff.mean(), np.percentile(diff, 99), diff.max())


def test_translate_cli_trains_and_runs_on_cuda(tmp_path):
    """`translate-video train --device cuda` (tiny preset, 3 steps) then `translate-video --device
    cuda` on a generated 12-frame clip with audio: frame count, size, fps and audio kept, and
    the frames close to the same model run on the CPU."""
    from click.testing import CliRunner
    from video_utils import make_test_clip, psnr, smooth_frames

    from vid2vid_app.cli.translate import translate_video
    from vid2vid_app.imaging import write_image
    from vid2vid_app.media import open_media
    from vid2vid_app.video import probe

    def invoke(*args):
        result = CliRunner().invoke(translate_video, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    for side in ("A", "B"):
        (tmp_path / side).mkdir()
    for i, frame in enumerate(smooth_frames(8, width=72, height=72, seed=3)):
        write_image(tmp_path / "A" / f"{i}.png", frame)
        write_image(tmp_path / "B" / f"{i}.png", 255 - frame)
    runs = tmp_path / "runs"
    invoke("train", "--mode", "pix2pix", "--preset", "tiny", "--paired", tmp_path / "A", tmp_path / "B",
           "--name", "p2p", "--runs-dir", runs, "--steps", 3, "--device", "cuda", "--quiet")
    assert (runs / "p2p" / "model.pt").is_file()

    clip = make_test_clip(tmp_path / "clip.mp4", smooth_frames(12, width=96, height=80), fps=30, with_audio=True)
    outs = {}
    for name, device in (("gpu", "cuda"), ("cpu", "cpu")):
        outs[name] = tmp_path / f"out_{name}.mp4"
        result = invoke("-m", "p2p", clip, "-o", outs[name], "--runs-dir", runs, "--device", device,
                        "--batch-size", 5)
        assert "12 frames" in result.output
    src, got = probe(clip), probe(outs["gpu"])
    assert got.frame_count == 12 and (got.width, got.height) == (96, 80) and got.fps == src.fps and got.has_audio
    values = [psnr(a, b) for a, b in zip(open_media(outs["gpu"]), open_media(outs["cpu"]), strict=True)]
    assert min(values) > 28, values


def test_dance_transfer_on_cuda_with_poses_matches_cpu(tmp_path, bundled_samples):
    """`dance transfer --poses ... --device cuda`: the GPU generation path (bf16, channels_last,
    uint8 conversion queued on the GPU) gives one frame per source frame; the first frame (no
    fed-back previous frame yet, so no accumulated rounding) is close to the CPU's."""
    from click.testing import CliRunner
    from dance_transfer_utils import cut_clip, save_tiny_model
    from pose_utils import standing_pose
    from video_utils import psnr

    from vid2vid_app.cli.dance import dance
    from vid2vid_app.media import open_media
    from vid2vid_app.pose.keypoints import PoseSequence
    from vid2vid_app.video import probe

    frames = 12
    source = cut_clip(bundled_samples / "source_two_people.mp4", tmp_path / "src.mp4", frames, with_audio=True)
    info = probe(source)
    base = standing_pose(info.width, info.height)
    kp = np.stack([base + np.array([0.8 * t, 0.4 * t, 0], np.float32) for t in range(frames)])
    PoseSequence(kp, (info.width, info.height), float(info.fps)).save(tmp_path / "keypoints.npz")
    save_tiny_model(tmp_path / "runs" / "tiny" / "model.pt", face=True)
    outs = {}
    for name, device in (("gpu", "cuda"), ("cpu", "cpu")):
        outs[name] = tmp_path / f"out_{name}.mp4"
        result = CliRunner().invoke(dance, ["transfer", str(source), "-m", "tiny", "--runs-dir", str(tmp_path / "runs"),
                                            "-o", str(outs[name]), "--poses", str(tmp_path / "keypoints.npz"),
                                            "--device", device])
        assert result.exit_code == 0, result.output
        assert f"device {device}" in result.output
    assert probe(outs["gpu"]).frame_count == frames and probe(outs["gpu"]).has_audio
    first = [next(iter(open_media(outs[name]))) for name in ("gpu", "cpu")]
    assert psnr(*first) > 25

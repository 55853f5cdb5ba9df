"""ToDayGAN (translate-video train --mode todaygan): the three-view discriminator, its relativistic
multi-level loss, the objective's step, the mode's presets, and (slow) a tiny model trained on the
real night/day Earth crops, then run, listed, exported, resumed and evaluated for retrieval through
the real CLI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from retrieval_utils import make_earth
from training_utils import tiny_todaygan

from vid2vid_app.cli.translate import translate_video
from vid2vid_app.errors import UserError
from vid2vid_app.models import build_discriminator
from vid2vid_app.models.discriminators import LUMA, ToDayGANDiscriminator
from vid2vid_app.models.losses import level_weights, multiview_gan_loss, relativistic_lsgan_loss
from vid2vid_app.training.objectives.todaygan import pooled_smooth_l1, smooth_l1


def rand(*shape):
    return torch.rand(*shape) * 2 - 1


def test_views_of_a_ramp_blur_grey_and_gradient():
    """A horizontal grey ramp v = a x: the blur keeps it inside (a linear function is its own local
    mean), the grey view is v (luma weights sum to 1), the gradient view is 4a across (central
    difference of every second pixel) and 0 down, at (H/2 - 2) x (W/2 - 2)."""
    d = ToDayGANDiscriminator(ndf=4, n_layers=2)
    a = 0.01
    ramp = (torch.arange(40.0) * a - 0.2).view(1, 1, 1, 40).expand(1, 3, 32, 40)
    blurred, gray, gradient = d.views(ramp)
    torch.testing.assert_close(blurred[..., 2:-2], ramp[..., 2:-2], atol=1e-6, rtol=0)
    torch.testing.assert_close(gray, ramp[:, :1], atol=1e-6, rtol=0)
    assert gradient.shape == (1, 2, 14, 18)
    torch.testing.assert_close(gradient[:, 0], torch.full((1, 14, 18), 4 * a), atol=1e-6, rtol=0)
    assert gradient[:, 1].abs().max() < 1e-6


def test_colour_view_ignores_texture_and_grey_view_ignores_colour():
    """A one-pixel checkerboard nearly vanishes from the blurred colour view; a colour change that
    keeps the luma leaves the grey and gradient views unchanged but changes the colour view."""
    d = ToDayGANDiscriminator(ndf=4, n_layers=2)
    checker = ((torch.arange(32).view(32, 1) + torch.arange(32).view(1, 32)) % 2).float() * 2 - 1
    blurred = d.views(checker.expand(1, 3, 32, 32))[0]
    assert blurred[..., 4:-4, 4:-4].abs().max() < 0.1 * checker.abs().max()

    luma = torch.tensor(LUMA)
    chroma = torch.tensor([1.0, 0.0, -LUMA[0] / LUMA[2]])  # orthogonal to the luma weights
    assert abs(float(chroma @ luma)) < 1e-7
    image = rand(1, 3, 32, 32) * 0.5
    tinted = image + 0.3 * chroma.view(1, 3, 1, 1)
    (b1, g1, d1), (b2, g2, d2) = d.views(image), d.views(tinted)
    torch.testing.assert_close(g1, g2, atol=1e-6, rtol=0)
    torch.testing.assert_close(d1, d2, atol=1e-6, rtol=0)
    assert (b1 - b2).abs().mean() > 0.1


def test_discriminator_judges_three_views_at_every_level():
    d = build_discriminator("todaygan", in_channels=3, ndf=4, n_layers=3)
    out = d(rand(2, 3, 64, 64))
    shapes = [[tuple(m.shape) for m in view] for view in out]
    assert shapes == [[(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 6, 6)],  # blurred colour
                      [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 6, 6)],  # grey
                      [(2, 1, 7, 7), (2, 1, 5, 5)]]  # gradient (32 -> 30 px, one level fewer)
    assert d.config == {"arch": "todaygan", "in_channels": 3, "ndf": 4, "n_layers": 3, "norm": "instance"}
    assert not any(k.startswith(("blur", "luma")) for k in d.state_dict())  # fixed filters, rebuilt
    with pytest.raises(ValueError, match="RGB"):
        ToDayGANDiscriminator(in_channels=4)


def test_level_weights_favour_depth_as_todaygan():
    assert level_weights(3) == pytest.approx([1 / 21, 2 / 21, 4 / 21])
    assert level_weights(2) == pytest.approx([1 / 8, 3 / 8])
    assert level_weights(1) == pytest.approx([1.0])


def test_relativistic_loss_values_and_gradients():
    real = torch.full((2, 1, 3, 3), 1.5, requires_grad=True)
    fake = torch.full((2, 1, 3, 3), 0.5, requires_grad=True)
    assert relativistic_lsgan_loss(real, fake, True).item() == pytest.approx(0.0)  # real 1 above fake
    g = relativistic_lsgan_loss(real, fake, False)
    assert g.item() == pytest.approx(4.0)  # (0.5 - 1.5 - 1)^2
    g.backward()
    assert real.grad is None and fake.grad is not None  # the generator sees the real maps as constants
    with pytest.raises(ValueError, match="one shape"):
        relativistic_lsgan_loss(real, fake[:1], True)


def test_multiview_loss_weights_levels_and_averages_views():
    """Two views: [maps a1, a2] and [b1]; each map's relativistic term is known, so the loss is
    mean(w1 t(a1) + w2 t(a2), t(b1))."""
    def maps(*values):
        return [torch.full((1, 1, 2, 2), v) for v in values]

    real, fake = [maps(1.0, 2.0), maps(0.0)], [maps(0.0, 0.0), maps(0.0)]
    w = level_weights(2)
    expected_d = ((w[0] * 0.0 + w[1] * 1.0) + 1.0) / 2  # (r - f - 1)^2: 0, 1 | 1
    assert multiview_gan_loss(real, fake, "rlsgan", True).item() == pytest.approx(expected_d)
    expected_lsgan_g = ((w[0] + w[1]) * 1.0 + 1.0) / 2  # (f - 1)^2 = 1 everywhere
    assert multiview_gan_loss(None, fake, "lsgan", False).item() == pytest.approx(expected_lsgan_g)
    with pytest.raises(ValueError, match="needs the real predictions"):
        multiview_gan_loss(None, fake, "rlsgan", False)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_objective_step_judges_against_the_pre_update_discriminators():
    """Every parameter of the four networks moves, except the biases of the discriminators' logits
    convs: the relativistic loss sees only real - fake differences, in which a bias cancels. The
    logged D_A and G_A equal the losses computed by hand with the initial G_A and D_A (D_A is
    updated after the generators, pool 0 passes fakes through); the cycle term is the smooth L1 of
    the reconstruction."""
    obj = tiny_todaygan(pool_size=0)
    start = {name: snapshot(net) for name, net in obj.networks().items()}
    ref = tiny_todaygan(pool_size=0)
    batch = {"A": rand(2, 3, 32, 32), "B": rand(2, 3, 32, 32)}
    opts = obj.make_optimizers(2e-4, (0.5, 0.999))
    losses = obj.train_step(batch, opts)
    assert set(losses) == {"G_A", "G_B", "cycle_A", "cycle_B", "D_A", "D_B"}  # identity off by default
    for name, net in obj.networks().items():
        moved = {k for k, v in net.state_dict().items() if not torch.equal(v, start[name][k])}
        logit_biases = {k for k in start[name] if k.endswith("bias") and (".heads." in k or ".final." in k)}
        assert name.startswith("G") or len(logit_biases) == 5  # 2 + 2 + 1 logits maps
        assert moved == {k for k, _ in net.named_parameters()} - logit_biases, name
    with torch.no_grad():
        fake_b = ref.G_A(batch["A"])
        real_pred, fake_pred = ref.D_A(batch["B"]), ref.D_A(fake_b)
        d_a = 0.5 * multiview_gan_loss(real_pred, fake_pred, "rlsgan", True)
        g_a = multiview_gan_loss(real_pred, fake_pred, "rlsgan", False)
        cycle_a = 10 * smooth_l1(ref.G_B(fake_b), batch["A"])
    assert losses["D_A"] == pytest.approx(d_a.item(), rel=1e-5)
    assert losses["G_A"] == pytest.approx(g_a.item(), rel=1e-5)
    assert losses["cycle_A"] == pytest.approx(cycle_a.item(), rel=1e-5)


def test_identity_term_compares_pooled_images():
    obj = tiny_todaygan(pool_size=0)
    obj.lambda_identity = 0.5
    batch = {"A": rand(1, 3, 32, 32), "B": rand(1, 3, 32, 32)}
    with torch.no_grad():
        expected = 10 * 0.5 * pooled_smooth_l1(obj.G_A(batch["B"]), batch["B"])
    losses = obj.train_step(batch, obj.make_optimizers(2e-4, (0.5, 0.999)))
    assert losses["idt_A"] == pytest.approx(expected.item(), rel=1e-5)
    # Detail below the pooling scale does not count: a 1-pixel checkerboard pools to ~0.
    checker = ((torch.arange(16).view(16, 1) + torch.arange(16)) % 2).float().expand(1, 3, 16, 16) - 0.5
    assert pooled_smooth_l1(checker, torch.zeros_like(checker)).item() < 0.1 * smooth_l1(checker, 0 * checker).item()


def test_todaygan_mode_presets_and_loss_check():
    from vid2vid_app.training import ToDayGANObjective
    from vid2vid_app.translate.config import make_config
    from vid2vid_app.translate.train import build_networks, build_objective

    tiny, cyc = make_config("todaygan", "tiny"), make_config("cyclegan", "tiny")
    assert (tiny.gan_mode, tiny.lambda_identity) == ("rlsgan", 0.0)
    assert (tiny.arch, tiny.ngf, tiny.ndf, tiny.crop_size) == (cyc.arch, cyc.ngf, cyc.ndf, cyc.crop_size)
    standard = make_config("todaygan")
    assert (standard.arch, standard.gan_mode, standard.lambda_cycle, standard.pool_size) == \
        ("resnet_9blocks", "rlsgan", 10.0, 50)
    nets = build_networks(tiny)
    assert isinstance(nets["D_A"], ToDayGANDiscriminator) and isinstance(build_objective(tiny, nets),
                                                                          ToDayGANObjective)
    assert make_config("todaygan", "tiny", gan_mode="lsgan").gan_mode == "lsgan"
    with pytest.raises(UserError, match="--mode todaygan only"):
        make_config("cyclegan", "tiny", gan_mode="rlsgan")


# ---------------------------------------------------------------------------------------- end to end


def invoke(*args, ok=True):
    result = CliRunner().invoke(translate_video, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_tiny_todaygan_trains_runs_both_ways_resumes_and_is_evaluated(tmp_path, shared_samples, shared_weights):
    """Night crops (A) -> day crops (B) of the real Earth pair: 4 steps, then resumed to 6; the model
    is listed as todaygan with both directions, translates the night video (same frames, fps) and a
    day image back to night, exports to ONNX, and evaluate-retrieval reports it next to the raw
    queries (ground truth: the crops of each query's place and its neighbours)."""
    from vid2vid_app.imaging import read_image
    from vid2vid_app.video import probe

    torch.set_num_threads(1)
    earth = make_earth(tmp_path / "earth", shared_samples, video=True)
    runs = tmp_path / "runs"
    invoke("train", "--mode", "todaygan", "--preset", "tiny", "--domain-a", earth / "train" / "night",
           "--domain-b", earth / "train" / "day", "--name", "night2day", "--runs-dir", runs, "--steps", 4, "-q")
    invoke("train", "--name", "night2day", "--runs-dir", runs, "--resume", "--steps", 6, "-q")
    stats = [json.loads(line) for line in (runs / "night2day" / "stats.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in stats) == 6 and {"G_A", "D_A", "cycle_A"} <= set(stats[-1]["losses"])

    listing = invoke("list", "--runs-dir", runs).output
    assert "night2day" in listing and "todaygan" in listing and "AtoB,BtoA" in listing

    video = tmp_path / "day_pan.mp4"
    invoke("--model", "night2day", earth / "night_pan.mp4", "-o", video, "--runs-dir", runs, "-q")
    src, out = probe(earth / "night_pan.mp4"), probe(video)
    assert (out.frame_count, out.fps, out.width, out.height) == (src.frame_count, src.fps, src.width, src.height)
    day = next((earth / "heldout" / "day").iterdir())
    night = tmp_path / "night.png"
    invoke("--model", "night2day", day, "-o", night, "--direction", "BtoA", "--mode", "todaygan",
           "--runs-dir", runs, "-q")
    assert read_image(night).shape == read_image(day).shape
    invoke("export", "--model", "night2day", "--onnx", tmp_path / "n2d.onnx", "--runs-dir", runs)

    out_json = tmp_path / "recall.json"
    result = invoke("evaluate-retrieval", "--queries", earth / "heldout" / "night", "--database",
                    earth / "heldout" / "day", "--ground-truth", earth / "heldout" / "nearby.csv", "--model",
                    "night2day", "--runs-dir", runs, "--json", out_json, "--cache-dir", tmp_path / "cache",
                    "--device", "cpu", "--min-side", 64, "-q")
    data = json.loads(out_json.read_text())
    assert list(data) == ["raw", "night2day"]
    assert all(0 <= v <= 1 for method in data.values() for v in method.values())
    assert "night2day" in result.output and np.isfinite(data["night2day"]["recall@10"])
    assert "ground truth: " + str(earth / "heldout" / "nearby.csv") in result.output


@pytest.mark.slow
def test_todaygan_trains_under_torchrun(tmp_path, shared_samples):
    """Two CPU processes (gloo, DDP around each of the four networks): 2 steps, one model.pt with
    both directions, written by rank 0."""
    from test_cli_torchrun import torchrun

    from vid2vid_app.translate.model import load_model

    earth = make_earth(tmp_path / "earth", shared_samples, train_stride=144, eval_stride=128)
    runs = tmp_path / "runs"
    proc = torchrun("vid2vid_app.cli.translate", "--mode", "todaygan", "--preset", "tiny", "--domain-a",
                    earth / "train" / "night", "--domain-b", earth / "train" / "day", "--name", "n2d",
                    "--runs-dir", runs, "--steps", 2, "--device", "cpu", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    model = load_model(runs / "n2d" / "model.pt")
    assert model.mode == "todaygan" and set(model.generators) == {"AtoB", "BtoA"} and model.meta["steps"] == 2

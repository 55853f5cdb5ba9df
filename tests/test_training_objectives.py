"""One train_step of every objective on tiny networks: what changes, what must not, update order."""

from __future__ import annotations

import pytest
import torch
from training_utils import tiny_cyclegan, tiny_pix2pix

from vid2vid_app.models import build_discriminator, build_generator
from vid2vid_app.models.losses import VGGLoss, gan_loss
from vid2vid_app.training import (
    CycleGANObjective,
    FaceObjective,
    Pix2PixHDObjective,
    TemporalObjective,
)
from vid2vid_app.training.objectives import generate_pair
from vid2vid_app.training.objectives.base import adam

S = 32  # image side for the multi-scale objectives


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    """Names of floating-point parameters/buffers that differ from ``before``."""
    after = module.state_dict()
    return {k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])}


def float_params(module):
    return {k for k, v in module.state_dict().items() if v.is_floating_point()}


def step_and_check(objective, batch, n_images, steps=1):
    """Run ``steps`` steps; every parameter of every trainable network changes; losses are finite
    floats; sample_images returns ``n_images`` tensors in [-1, 1]."""
    before = {name: snapshot(net) for name, net in objective.networks().items()}
    opts = objective.make_optimizers(2e-4, (0.5, 0.999))
    for _ in range(steps):
        losses = objective.train_step(batch, opts)
    assert losses and all(isinstance(v, float) and v == v and abs(v) != float("inf") for v in losses.values())
    for name, net in objective.networks().items():
        params = {k for k, _ in net.named_parameters()}
        assert changed(before[name], net) >= params, f"{name}: not every parameter was updated"
    images = objective.sample_images(batch)
    assert len(images) == n_images
    assert all(img.min() >= -1 and img.max() <= 1 for img in images)
    return losses


def hd_nets(g_in, d_in, seed=0):
    """Tiny global generator (``g_in`` channels) and 2-scale discriminator (``d_in`` channels)."""
    torch.manual_seed(seed)
    G = build_generator("global", in_channels=g_in, ngf=4, n_downsample=2, n_blocks=1)
    D = build_discriminator("multiscale", in_channels=d_in, ndf=4, n_layers=2, num_d=2)
    return G, D


def rand(*shape):
    return torch.rand(*shape) * 2 - 1


def test_pix2pix_step_order_and_updates():
    """D steps first (D_real uses the initial D), then G against the UPDATED D."""
    obj = tiny_pix2pix(norm="instance", dropout=False)
    G0, D0 = snapshot(obj.G), snapshot(obj.D)
    batch = {"A": rand(2, 3, 64, 64), "B": rand(2, 3, 64, 64)}
    losses = step_and_check(obj, batch, 3)
    assert set(losses) == {"G_GAN", "G_L1", "D_real", "D_fake"}

    ref = tiny_pix2pix(norm="instance", dropout=False)
    ref.G.load_state_dict(G0)
    ref.D.load_state_dict(D0)
    with torch.no_grad():
        fake0 = ref.G(batch["A"])
        d_real = gan_loss(ref.D(torch.cat((batch["A"], batch["B"]), 1)), True, "vanilla")
        g_gan_new_d = gan_loss(obj.D(torch.cat((batch["A"], fake0), 1)), True, "vanilla")
        l1 = (fake0 - batch["B"]).abs().mean() * 100
    assert losses["D_real"] == pytest.approx(d_real.item(), rel=1e-5)
    assert losses["G_GAN"] == pytest.approx(g_gan_new_d.item(), rel=1e-5)
    assert losses["G_L1"] == pytest.approx(l1.item(), rel=1e-5)


def test_cyclegan_step_order_and_updates():
    """G step first; D_A then judges real B against G_A's fake from before the G update (pool 0
    passes fakes through) with its initial weights."""
    obj = tiny_cyclegan(pool_size=0)
    G_A0, D_A0 = snapshot(obj.G_A), snapshot(obj.D_A)
    batch = {"A": rand(1, 3, 32, 32), "B": rand(1, 3, 32, 32)}
    losses = step_and_check(obj, batch, 6)
    assert set(losses) == {"idt_A", "idt_B", "G_A", "G_B", "cycle_A", "cycle_B", "D_A", "D_B"}

    ref = tiny_cyclegan(pool_size=0)
    ref.G_A.load_state_dict(G_A0)
    ref.D_A.load_state_dict(D_A0)
    with torch.no_grad():
        fake_b0 = ref.G_A(batch["A"])
        d_a = 0.5 * (gan_loss(ref.D_A(batch["B"]), True, "lsgan") + gan_loss(ref.D_A(fake_b0), False, "lsgan"))
        g_a = gan_loss(ref.D_A(fake_b0), True, "lsgan", for_discriminator=False)
    assert losses["D_A"] == pytest.approx(d_a.item(), rel=1e-5)
    assert losses["G_A"] == pytest.approx(g_a.item(), rel=1e-5)


def test_cyclegan_without_identity_skips_it():
    gens = [build_generator("resnet_6blocks", ngf=4, n_blocks=1) for _ in range(2)]
    discs = [build_discriminator("patch", in_channels=3, ndf=4, n_layers=1, norm="instance") for _ in range(2)]
    obj = CycleGANObjective(*gens, *discs, lambda_identity=0, pool_size=0)
    losses = obj.train_step({"A": rand(1, 3, 16, 16), "B": rand(1, 3, 16, 16)}, obj.make_optimizers(1e-3, (0.5, 0.9)))
    assert "idt_A" not in losses and "cycle_A" in losses


def test_pix2pixhd_uses_one_real_pass_and_pre_update_d(shared_weights):
    """G then D, both against the initial D; FM and VGG terms present; VGG stays frozen."""
    G, D = hd_nets(3, 6)
    vgg = VGGLoss(shared_weights / "vgg16_features_imagenet.pth")
    vgg_before = snapshot(vgg)
    obj = Pix2PixHDObjective(G, D, vgg=vgg, n_layers_d=2, num_d=2)
    G0, D0 = snapshot(G), snapshot(D)
    batch = {"A": rand(1, 3, S, S), "B": rand(1, 3, S, S)}
    obj.train()
    assert not vgg.training
    losses = step_and_check(obj, batch, 3)
    assert set(losses) == {"G_GAN", "G_FM", "G_VGG", "D_fake", "D_real"}
    assert not changed(vgg_before, vgg)

    G_ref, D_ref = hd_nets(3, 6, seed=1)
    G_ref.load_state_dict(G0)
    D_ref.load_state_dict(D0)
    with torch.no_grad():
        fake0 = G_ref(batch["A"])
        d_fake = gan_loss(D_ref(torch.cat((batch["A"], fake0), 1)), False, "lsgan")
        g_gan = gan_loss(D_ref(torch.cat((batch["A"], fake0), 1)), True, "lsgan", for_discriminator=False)
    assert losses["D_fake"] == pytest.approx(d_fake.item(), rel=1e-5)
    assert losses["G_GAN"] == pytest.approx(g_gan.item(), rel=1e-5)


def temporal_batch(n=1, pose_ch=3):
    return {"pose0": rand(n, pose_ch, S, S), "pose1": rand(n, pose_ch, S, S),
            "frame0": rand(n, 3, S, S), "frame1": rand(n, 3, S, S)}


def test_temporal_step_updates_all_three_networks():
    G, D = hd_nets(6, 6)
    torch.manual_seed(2)
    DT = build_discriminator("temporal", in_channels=12, ndf=4, n_layers=2, num_d=2)
    obj = TemporalObjective(G, D, DT, n_layers_d=2, num_d=2)
    losses = step_and_check(obj, temporal_batch(), 3)
    assert {"G_GAN", "G_FM", "G_GAN_T", "D_real", "D_fake", "DT_real", "DT_fake"} == set(losses)


def test_temporal_l1_term_is_logged_as_g_l1():
    """lambda_l1 adds G_L1 = lambda_l1 x (mean |gen0 - frame0| + mean |gen1 - frame1|) (summed over
    the two frames like the other generator terms), computed with the generator before the step;
    without a VGG there is no G_VGG, and lambda_l1 = 0 (the default) logs no G_L1."""
    G, D = hd_nets(6, 6)
    torch.manual_seed(2)
    DT = build_discriminator("temporal", in_channels=12, ndf=4, n_layers=2, num_d=2)
    G0 = snapshot(G)
    obj = TemporalObjective(G, D, DT, n_layers_d=2, num_d=2, lambda_vgg=10.0, lambda_l1=7.0)
    batch = temporal_batch()
    losses = step_and_check(obj, batch, 3)
    assert set(losses) == {"G_GAN", "G_FM", "G_L1", "G_GAN_T", "D_real", "D_fake", "DT_real", "DT_fake"}

    G_ref, _ = hd_nets(6, 6, seed=1)
    G_ref.load_state_dict(G0)
    with torch.no_grad():
        gen0, gen1 = generate_pair(G_ref, batch["pose0"], batch["pose1"])
        expected = 7.0 * ((gen0 - batch["frame0"]).abs().mean() + (gen1 - batch["frame1"]).abs().mean())
    assert losses["G_L1"] == pytest.approx(expected.item(), rel=1e-5)

    plain = TemporalObjective(*hd_nets(6, 6)[:2], DT, n_layers_d=2, num_d=2)
    losses = plain.train_step(temporal_batch(), plain.make_optimizers(2e-4, (0.5, 0.999)))
    assert "G_L1" not in losses and "G_VGG" not in losses


def test_temporal_previous_frame_is_not_detached():
    """Frame 1 depends on pose 0 only through the generated frame 0: a nonzero gradient of frame 1
    with respect to pose 0 shows the first output is not detached."""
    G, _ = hd_nets(6, 6)
    pose0 = rand(1, 3, S, S).requires_grad_(True)
    gen0, gen1 = generate_pair(G, pose0, rand(1, 3, S, S))
    (grad,) = torch.autograd.grad(gen1.sum(), pose0)
    assert grad.abs().sum() > 0
    assert gen0.shape == gen1.shape == (1, 3, S, S)


def test_face_stage_trains_only_face_networks(shared_weights):
    """face_G and face_D change; the body generator's weights stay as they were and it stays in
    eval mode with gradients off. Crops of both frames are refined at the crop size."""
    G_body, _ = hd_nets(6, 6)
    body_before = snapshot(G_body)
    torch.manual_seed(3)
    face_G = build_generator("face", in_channels=6, ngf=4, n_downsample=2, n_blocks=1)
    face_D = build_discriminator("face", in_channels=6, ndf=4, n_layers=2, num_d=1)
    vgg = VGGLoss(shared_weights / "vgg16_features_imagenet.pth")
    obj = FaceObjective(G_body, face_G, face_D, vgg=vgg, n_layers_d=2, num_d=1, crop_size=16)
    obj.train()
    assert not obj.G_body.training and not any(p.requires_grad for p in G_body.parameters())
    assert set(obj.networks()) == {"face_G", "face_D"}
    batch = temporal_batch(n=2)
    batch["box0"] = torch.tensor([[4, 4, 20, 20], [0, 0, 12, 12]])
    batch["box1"] = torch.tensor([[8, 6, 24, 22], [16, 16, 32, 32]])
    # The face generator's last conv starts at zero (identity on the face), so the layers before it
    # only receive gradient from the second step on.
    losses = step_and_check(obj, batch, 4, steps=2)
    assert "G_VGG" in losses and "G_L1" not in losses
    assert not changed(body_before, G_body)
    assert all(img.shape == (4, 3, 16, 16) for img in obj.sample_images())


def test_face_stage_without_vgg_uses_l1():
    G_body, _ = hd_nets(6, 6)
    face_G = build_generator("face", in_channels=6, ngf=4, n_downsample=2, n_blocks=1)
    face_D = build_discriminator("face", in_channels=6, ndf=4, n_layers=2, num_d=1)
    obj = FaceObjective(G_body, face_G, face_D, n_layers_d=2, num_d=1, crop_size=16)
    batch = temporal_batch()
    batch["box0"] = batch["box1"] = torch.tensor([[4, 4, 20, 20]])
    losses = obj.train_step(batch, obj.make_optimizers(2e-4, (0.5, 0.999)))
    assert "G_L1" in losses and "G_VGG" not in losses


def test_optimizers_use_fused_adam_on_cpu_and_foreach_elsewhere():
    obj = tiny_pix2pix()
    opts = obj.make_optimizers(1e-3, (0.5, 0.999))
    assert set(opts) == {"G", "D"}
    for opt in opts.values():
        group = opt.param_groups[0]
        assert group["fused"] is True  # float32 parameters on the CPU: the fused kernel
        assert group["betas"] == (0.5, 0.999) and group["lr"] == 1e-3
    # Parameters on a device without a fused kernel get the multi-tensor (foreach) one.
    other = adam([torch.nn.Parameter(torch.zeros(2, device="meta"))], 1e-3, (0.5, 0.999)).param_groups[0]
    assert other["foreach"] is True and not other["fused"]


def test_channels_last_gives_the_same_losses():
    """The CUDA memory layout (channels_last weights and images) computes the same losses as
    contiguous tensors; generate_pair's zero 'previous frame' follows the pose's layout."""
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        G, D = hd_nets(6, 6)
        torch.manual_seed(2)
        DT = build_discriminator("temporal", in_channels=12, ndf=4, n_layers=2, num_d=2)
        obj = TemporalObjective(G, D, DT, n_layers_d=2, num_d=2).to(memory_format=fmt)
        torch.manual_seed(4)
        batch = {k: v.contiguous(memory_format=fmt) for k, v in temporal_batch().items()}
        results.append(obj.train_step(batch, obj.make_optimizers(2e-4, (0.5, 0.999))))
    for k in ("G_GAN", "G_FM", "G_GAN_T", "D_real", "D_fake", "DT_real", "DT_fake"):
        assert results[1][k] == pytest.approx(results[0][k], rel=1e-4, abs=1e-6), k

"""The person layer's compositing and matte losses against hand-computed values, and the temporal
objective training a 4-channel generator over a plate (the composite feeds back, the matte terms
are logged and move alpha)."""

from __future__ import annotations

import pytest
import torch

from vid2vid_app.models.person_layer import (
    composite,
    far_from_person,
    generate_composite,
    halo_loss,
    mask_loss,
    split_layers,
    swap_background,
)


def test_split_maps_the_fourth_channel_to_alpha_in_0_1():
    raw = torch.tensor([0.5, -0.5, 0.0, -1.0]).view(1, 4, 1, 1).repeat(1, 1, 2, 2)
    colour, alpha = split_layers(raw)
    assert colour.shape == (1, 3, 2, 2) and alpha.shape == (1, 1, 2, 2)
    assert torch.all(alpha == 0.0)
    raw[:, 3] = 1.0
    assert torch.all(split_layers(raw)[1] == 1.0)
    with pytest.raises(ValueError, match="4 channels"):
        split_layers(torch.zeros(1, 3, 2, 2))


def test_composite_is_alpha_blend_and_swap_equals_compositing_over_the_new_background():
    colour = torch.full((1, 3, 1, 2), 0.8)
    plate = torch.full((1, 3, 1, 2), -0.6)
    alpha = torch.tensor([0.25, 1.0]).view(1, 1, 1, 2)
    frame = composite(colour, alpha, plate)
    # 0.25 * 0.8 + 0.75 * -0.6 = -0.25; alpha 1 gives the colour.
    assert frame[0, :, 0, 0].tolist() == pytest.approx([-0.25] * 3)
    assert frame[0, :, 0, 1].tolist() == pytest.approx([0.8] * 3)
    other = torch.full((1, 3, 1, 2), 0.2)
    torch.testing.assert_close(swap_background(frame, alpha, plate, other), composite(colour, alpha, other))
    # What was added to the composite (a refined face) survives the swap.
    torch.testing.assert_close(swap_background(frame + 0.1, alpha, plate, other), composite(colour, alpha, other) + 0.1)


def test_mask_loss_is_the_mean_absolute_difference():
    alpha = torch.tensor([1.0, 0.5, 0.0, 0.0]).view(1, 1, 2, 2)
    mask = torch.tensor([1.0, 1.0, 0.0, 1.0]).view(1, 1, 2, 2)
    assert mask_loss(alpha, mask).item() == pytest.approx((0 + 0.5 + 0 + 1) / 4)


def test_halo_counts_alpha_only_beyond_the_margin():
    mask = torch.zeros(1, 1, 9, 9)
    mask[..., 4, 4] = 1.0
    far = far_from_person(mask, margin=2)
    assert far[0, 0, 2:7, 2:7].sum() == 0 and far.sum() == 81 - 25
    near = torch.zeros(1, 1, 9, 9)
    near[..., 3:6, 3:6] = 0.7  # a soft edge next to the person: not a halo
    assert halo_loss(near, mask, margin=2).item() == 0.0
    halo = near.clone()
    halo[..., 0, :] = 0.5  # partial alpha along the top row, far from the person
    assert halo_loss(halo, mask, margin=2).item() == pytest.approx(9 * 0.5 / 56)


def test_generate_composite_runs_a_four_channel_generator_over_the_plate():
    from vid2vid_app.models import build_generator

    torch.manual_seed(0)
    g = build_generator("global", in_channels=6, out_channels=4, ngf=4, n_downsample=2, n_blocks=1)
    x = torch.rand(2, 6, 16, 16) * 2 - 1
    plate = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        frame, alpha = generate_composite(g, x, plate)
        colour, expected_alpha = split_layers(g(x))
    torch.testing.assert_close(alpha, expected_alpha)
    torch.testing.assert_close(frame, composite(colour, alpha, plate))
    assert frame.shape == (2, 3, 16, 16) and float(alpha.min()) >= 0 and float(alpha.max()) <= 1


def _layer_batch(n: int = 2, size: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.rand(*shape, generator=g) * 2 - 1

    mask = torch.zeros(n, 1, size, size)
    mask[..., 4:12, 6:10] = 1.0
    return {"pose0": rand(n, 3, size, size), "pose1": rand(n, 3, size, size), "frame0": rand(n, 3, size, size),
            "frame1": rand(n, 3, size, size), "plate": rand(n, 3, size, size), "mask0": mask, "mask1": mask}


def test_temporal_objective_feeds_back_the_composite_and_trains_the_matte():
    from vid2vid_app.models import build_discriminator, build_generator
    from vid2vid_app.training.objectives import TemporalObjective
    from vid2vid_app.training.objectives.temporal import generate_pair_layers

    torch.manual_seed(0)
    G = build_generator("global", in_channels=6, out_channels=4, ngf=4, n_downsample=2, n_blocks=1)
    D = build_discriminator("multiscale", in_channels=6, ndf=4, n_layers=2, num_d=1)
    Dt = build_discriminator("temporal", in_channels=12, ndf=4, n_layers=2, num_d=1)
    obj = TemporalObjective(G, D, Dt, n_layers_d=2, num_d=1, lambda_feat=0.0, lambda_l1=1.0,
                            lambda_mask=10.0, lambda_halo=10.0, halo_margin=0.1)
    batch = _layer_batch()
    with torch.no_grad():
        gen0, gen1, a0, a1 = generate_pair_layers(G, batch["pose0"], batch["pose1"], batch["plate"])
        # Frame 1 is conditioned on frame 0's composite (not on its raw 4 channels).
        expected1, _ = generate_composite(G, torch.cat((batch["pose1"], gen0), 1), batch["plate"])
    torch.testing.assert_close(gen1, expected1)
    optimizers = obj.make_optimizers(1e-2, (0.5, 0.999))
    first = obj.train_step(batch, optimizers)
    assert {"G_mask", "G_halo", "G_L1", "G_GAN_T", "D_fake", "DT_real"} <= set(first)
    for _ in range(30):
        last = obj.train_step(batch, optimizers)
    assert last["G_mask"] < 0.5 * first["G_mask"]  # the matte learns the person's mask
    assert len(obj.sample_images()) == 4  # pose | composite | real | alpha


def test_temporal_objective_without_a_plate_is_unchanged():
    """A batch without "plate" trains a plain 3-channel generator, no matte terms."""
    from vid2vid_app.models import build_discriminator, build_generator
    from vid2vid_app.training.objectives import TemporalObjective

    torch.manual_seed(0)
    G = build_generator("global", in_channels=6, out_channels=3, ngf=4, n_downsample=2, n_blocks=1)
    D = build_discriminator("multiscale", in_channels=6, ndf=4, n_layers=2, num_d=1)
    Dt = build_discriminator("temporal", in_channels=12, ndf=4, n_layers=2, num_d=1)
    obj = TemporalObjective(G, D, Dt, n_layers_d=2, num_d=1, lambda_mask=1.0, lambda_halo=1.0)
    batch = {k: v for k, v in _layer_batch().items() if k not in ("plate", "mask0", "mask1")}
    losses = obj.train_step(batch, obj.make_optimizers(1e-3, (0.5, 0.999)))
    assert "G_mask" not in losses and "G_halo" not in losses
    assert len(obj.sample_images()) == 3

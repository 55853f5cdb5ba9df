"""Everybody Dance Now temporal training: two consecutive frames, previous output fed back.

Batch: ``{"pose0", "pose1": stick figures (N, P, H, W), "frame0", "frame1": real frames
(N, 3, H, W)}`` in [-1, 1]. The generator's input is ``cat(pose_t, previous generated frame)``
(zeros before the first frame), so ``G`` has ``P + 3`` input channels::

    gen0 = G(cat(pose0, 0));  gen1 = G(cat(pose1, gen0))          (gen0 is NOT detached)
    per-frame D (multi-scale) on cat(pose_t, frame_t) for both frames
    temporal D on cat(pose0, pose1, frame0, frame1), real vs generated
    G step: sum over both frames of [gan + lambda_feat * FM + lambda_vgg * VGG + lambda_l1 * L1]
            + gan(D_T(fake pair))
    D step: 0.5 * (fake + real) for D (both frames) and for D_T

Feature matching uses the per-frame discriminator only (as in the paper's objective); the temporal
discriminator contributes its GAN term. The L1 term (``G_L1``, mean absolute error against the real
frames; off by default, as in the paper) gives small CPU runs without VGG a reconstruction loss
that learns the frame's layout quickly.

Person layer: with ``"plate"`` (N, 3, H, W) and ``"mask0"``, ``"mask1"`` (N, 1, H, W) in the batch,
``G`` emits colour + alpha (4 channels) and every frame above is the composite over the plate
(:mod:`vid2vid_app.models.person_layer`), the fed-back previous frame included; the G step adds
``lambda_mask`` x |alpha - mask| (``G_mask``) and ``lambda_halo`` x the alpha far from the person
(``G_halo``) for both frames. Both frames go through the per-frame D as one batch of 2N,
which equals two separate passes for instance-normalised (or unnormalised) discriminators, the
pix2pixHD default. Update order and shared real passes follow :mod:`.pix2pixhd`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim import Optimizer

from ...models.losses import gan_loss
from ...models.person_layer import generate_composite, halo_loss, mask_loss
from ..amp import Amp
from .base import frozen, to_floats, zero_grad
from .pix2pixhd import Pix2PixHDObjective


def generate_pair(generator: nn.Module, pose0: torch.Tensor, pose1: torch.Tensor,
                  plate: torch.Tensor | None = None):
    """``(gen0, gen1)``: frame 0 from cat(pose0, zeros), frame 1 from cat(pose1, gen0), not detached.

    Poses are (N, P, H, W); the generated frames (N, 3, H, W). With a ``plate`` (N, 3, H, W) the
    generator is a person layer and the frames are its composites over the plate.
    """
    gen0, gen1, _, _ = generate_pair_layers(generator, pose0, pose1, plate)
    return gen0, gen1


def generate_pair_layers(generator: nn.Module, pose0: torch.Tensor, pose1: torch.Tensor,
                         plate: torch.Tensor | None = None):
    """``(gen0, gen1, alpha0, alpha1)`` as :func:`generate_pair`; the alphas (N, 1, H, W) in
    [0, 1] of a person layer, None without a ``plate``."""
    n, _, h, w = pose0.shape
    zeros = pose0.new_zeros((n, 3, h, w))
    if pose0.dim() == 4 and pose0.is_contiguous(memory_format=torch.channels_last):
        zeros = zeros.contiguous(memory_format=torch.channels_last)
    if plate is None:
        gen0 = generator(torch.cat((pose0, zeros), 1))  # G on (N, P + 3, H, W) -> (N, 3, H, W)
        gen1 = generator(torch.cat((pose1, gen0), 1))  # G on (N, P + 3, H, W) -> (N, 3, H, W)
        return gen0, gen1, None, None
    gen0, alpha0 = generate_composite(generator, torch.cat((pose0, zeros), 1), plate)  # G -> (N, 4, H, W)
    gen1, alpha1 = generate_composite(generator, torch.cat((pose1, gen0), 1), plate)  # composites (N, 3, H, W)
    return gen0, gen1, alpha0, alpha1


class TemporalObjective(Pix2PixHDObjective):
    """Pose-to-frame generator ``G`` with per-frame ``D`` and temporal pair discriminator ``D_temporal``."""

    trainable = ("G", "D", "D_temporal")

    def __init__(self, G: nn.Module, D: nn.Module, D_temporal: nn.Module, gan_mode: str = "lsgan",
                 lambda_feat: float = 10.0, lambda_vgg: float = 10.0, vgg: nn.Module | None = None,
                 n_layers_d: int = 3, num_d: int = 2, lambda_temporal: float = 1.0, lambda_l1: float = 0.0,
                 lambda_mask: float = 0.0, lambda_halo: float = 0.0, halo_margin: float = 0.05):
        super().__init__(G, D, gan_mode=gan_mode, lambda_feat=lambda_feat, lambda_vgg=lambda_vgg, vgg=vgg,
                         n_layers_d=n_layers_d, num_d=num_d, lambda_l1=lambda_l1)
        self.D_temporal = D_temporal
        self.lambda_temporal = float(lambda_temporal)
        self.lambda_mask = float(lambda_mask)
        self.lambda_halo = float(lambda_halo)
        self.halo_margin = float(halo_margin)

    def generate_pair(self, pose0: torch.Tensor, pose1: torch.Tensor, generator: nn.Module | None = None):
        """``(gen0, gen1)``: frame 0 from (pose0, zeros), frame 1 from (pose1, gen0), not detached."""
        return generate_pair(generator if generator is not None else self.G, pose0, pose1)

    def _alpha_losses(self, alphas: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """The person layer's matte terms over both frames: alphas and masks (2N, 1, H, W) in [0, 1]."""
        losses = {}
        if self.lambda_mask > 0:
            losses["G_mask"] = mask_loss(alphas, masks) * self.lambda_mask * 2.0
        if self.lambda_halo > 0:
            margin = max(1, round(self.halo_margin * alphas.shape[-2]))
            losses["G_halo"] = halo_loss(alphas, masks, margin) * self.lambda_halo * 2.0
        return losses

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Optimizer],
                   amp: Amp | None = None) -> dict[str, float]:
        amp = amp or Amp.off()
        pose0, pose1, frame0, frame1 = batch["pose0"], batch["pose1"], batch["frame0"], batch["frame1"]
        opt_g, opt_d, opt_dt = optimizers["G"], optimizers["D"], optimizers["D_temporal"]
        # Both frames as one batch of 2N for the per-frame D.
        poses = torch.cat((pose0, pose1), 0)  # (2N, P, H, W)
        reals = torch.cat((frame0, frame1), 0)  # (2N, 3, H, W)

        with amp.autocast():
            gen0, gen1, alpha0, alpha1 = generate_pair_layers(self.G, pose0, pose1, batch.get("plate"))
            fakes = torch.cat((gen0, gen1), 0)  # (2N, 3, H, W)
            pred_real = self.D(torch.cat((poses, reals), 1))  # D on (2N, P + 3, H, W)
            pred_real_t = self.D_temporal(torch.cat((pose0, pose1, frame0, frame1), 1))  # D_T on (N, 2P + 6, H, W)

        # 1. Generator with both discriminators frozen.
        zero_grad(opt_g)
        with frozen(self.D, self.D_temporal), amp.autocast():
            pred_fake = self.raw("D")(torch.cat((poses, fakes), 1))  # D on (2N, P + 3, H, W)
            # The 2N batch averages the two frames; x2 makes it the sum over frames.
            losses = self._generator_losses(pred_fake, pred_real, fakes, reals, scale=2.0)
            if alpha0 is not None:  # x2 in _alpha_losses: the sum over the two frames, as above
                losses.update(self._alpha_losses(torch.cat((alpha0, alpha1), 0),  # (2N, 1, H, W)
                                                 torch.cat((batch["mask0"], batch["mask1"]), 0)))
            pred_fake_t = self.raw("D_temporal")(torch.cat((pose0, pose1, gen0, gen1), 1))  # (N, 2P + 6, H, W)
            losses["G_GAN_T"] = gan_loss(pred_fake_t, True, self.gan_mode, for_discriminator=False) \
                * self.lambda_temporal
            loss_g = sum(losses.values())
        amp.backward(loss_g)
        amp.step(opt_g)

        # 2. Per-frame and temporal discriminators (same weights the G step saw).
        zero_grad(opt_d, opt_dt)
        with amp.autocast():
            pred_fake_d = self.D(torch.cat((poses, fakes.detach()), 1))  # D on (2N, P + 3, H, W)
            losses.update(self._discriminator_losses(pred_fake_d, pred_real))
            fake_pair = torch.cat((pose0, pose1, gen0.detach(), gen1.detach()), 1)  # (N, 2P + 6, H, W)
            pred_fake_dt = self.D_temporal(fake_pair)
            losses.update(self._discriminator_losses(pred_fake_dt, pred_real_t, prefix="DT"))
            loss_d = 0.5 * (losses["D_fake"] + losses["D_real"]) \
                + 0.5 * (losses["DT_fake"] + losses["DT_real"]) * self.lambda_temporal
        amp.backward(loss_d)
        amp.step(opt_d)
        amp.step(opt_dt)
        amp.update()

        if alpha1 is None:
            self._keep_images(pose1, gen1, frame1)
        else:  # sample grid: pose | composite | real | alpha
            self._keep_images(pose1, gen1, frame1, alpha1.expand_as(gen1) * 2.0 - 1.0)
        return to_floats(losses)

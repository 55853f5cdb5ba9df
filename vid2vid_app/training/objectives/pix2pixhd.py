"""pix2pixHD (Wang et al. 2018): multi-scale GAN + feature matching + VGG, generator step first.

Batch: ``{"A": input (N, Cin, H, W), "B": target (N, Cout, H, W)}`` in [-1, 1]. ``D`` is a
multi-scale discriminator on ``cat(A, image)`` returning per scale its intermediate features and,
last, its logits. As in the reference, both updates are computed against the same discriminator
weights (D is updated after G)::

    fake = G(A);  real_pred = D(A, B)               (one pass, reused by both updates)
    G step: gan(D(A, fake), True) + lambda_feat * FM(D(A, fake), real_pred) + lambda_vgg * VGG(fake, B)
    D step: 0.5 * (gan(D(A, fake.detach()), False) + gan(real_pred, True))

The reference runs D on the real pair once for the D loss and feature matching alike; here too.
In the G step D's weights are frozen, so the backward pass skips their (discarded) gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer

from ...models.losses import feature_matching_loss, gan_loss
from ..amp import Amp
from .base import Objective, detach_features, frozen, to_floats, zero_grad


class MultiScaleGANObjective(Objective):
    """Shared by pix2pixHD, temporal and face objectives: the loss weights, the frozen VGG, the
    generator's GAN + feature-matching + perceptual (+ optional L1) terms and the discriminator's
    real/fake terms.

    ``vgg`` is a built ``VGGLoss`` (or None to train without the perceptual term). ``n_layers_d`` and
    ``num_d`` must describe the discriminator (they weight the feature-matching terms).
    ``lambda_l1`` adds an L1 term against the real image (``G_L1``; off by default, as in the
    papers): small CPU runs without VGG learn the frame's layout quickly from it.
    """

    frozen_modules = ("vgg",)

    def __init__(self, gan_mode: str = "lsgan", lambda_feat: float = 10.0, lambda_vgg: float = 10.0,
                 vgg: nn.Module | None = None, n_layers_d: int = 3, num_d: int = 2, lambda_l1: float = 0.0):
        super().__init__()
        self.vgg = vgg
        if vgg is not None:
            vgg.requires_grad_(False)
        self.gan_mode = gan_mode
        self.lambda_feat = float(lambda_feat)
        self.lambda_vgg = float(lambda_vgg)
        self.lambda_l1 = float(lambda_l1)
        self.n_layers_d = n_layers_d
        self.num_d = num_d

    def _generator_losses(self, pred_fake, pred_real, fake, real, scale: float = 1.0) -> dict[str, torch.Tensor]:
        """GAN (+ FM + VGG + L1) generator terms; ``scale`` multiplies all of them (number of frames)."""
        losses = {"G_GAN": gan_loss(pred_fake, True, self.gan_mode, for_discriminator=False) * scale}
        if self.lambda_feat > 0:
            fm = feature_matching_loss(pred_fake, detach_features(pred_real), self.n_layers_d, self.num_d)
            losses["G_FM"] = fm * self.lambda_feat * scale
        if self.vgg is not None and self.lambda_vgg > 0:
            losses["G_VGG"] = self.vgg(fake, real) * self.lambda_vgg * scale
        if self.lambda_l1 > 0:
            losses["G_L1"] = F.l1_loss(fake.float(), real.float()) * self.lambda_l1 * scale
        return losses

    def _discriminator_losses(self, pred_fake, pred_real, prefix: str = "D") -> dict[str, torch.Tensor]:
        """``{prefix}_fake`` and ``{prefix}_real`` GAN terms of a discriminator (halved in the D loss)."""
        return {f"{prefix}_fake": gan_loss(pred_fake, False, self.gan_mode),
                f"{prefix}_real": gan_loss(pred_real, True, self.gan_mode)}


class Pix2PixHDObjective(MultiScaleGANObjective):
    """pix2pixHD with generator ``G`` (global or local) and multi-scale discriminator ``D``
    (see :class:`MultiScaleGANObjective` for the loss arguments)."""

    trainable = ("G", "D")
    generator_name = "G"

    def __init__(self, G: nn.Module, D: nn.Module, gan_mode: str = "lsgan", lambda_feat: float = 10.0,
                 lambda_vgg: float = 10.0, vgg: nn.Module | None = None, n_layers_d: int = 3, num_d: int = 2,
                 lambda_l1: float = 0.0):
        super().__init__(gan_mode=gan_mode, lambda_feat=lambda_feat, lambda_vgg=lambda_vgg, vgg=vgg,
                         n_layers_d=n_layers_d, num_d=num_d, lambda_l1=lambda_l1)
        self.G, self.D = G, D

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Optimizer],
                   amp: Amp | None = None) -> dict[str, float]:
        amp = amp or Amp.off()
        real_a, real_b = batch["A"], batch["B"]
        opt_g, opt_d = optimizers["G"], optimizers["D"]

        with amp.autocast():
            fake_b = self.G(real_a)
            pred_real = self.D(torch.cat((real_a, real_b), 1))  # D on (N, Cin + Cout, H, W)

        # 1. Generator (D frozen): GAN + feature matching against the real pass + perceptual.
        zero_grad(opt_g)
        with frozen(self.D), amp.autocast():
            pred_fake = self.raw("D")(torch.cat((real_a, fake_b), 1))  # D on (N, Cin + Cout, H, W)
            losses = self._generator_losses(pred_fake, pred_real, fake_b, real_b)
            loss_g = sum(losses.values())
        amp.backward(loss_g)
        amp.step(opt_g)

        # 2. Discriminator on the same weights the G step saw.
        zero_grad(opt_d)
        with amp.autocast():
            pred_fake_d = self.D(torch.cat((real_a, fake_b.detach()), 1))  # D on (N, Cin + Cout, H, W)
            losses.update(self._discriminator_losses(pred_fake_d, pred_real))
            loss_d = 0.5 * (losses["D_fake"] + losses["D_real"])
        amp.backward(loss_d)
        amp.step(opt_d)
        amp.update()

        self._keep_images(real_a, fake_b, real_b)
        return to_floats(losses)

"""pix2pix (Isola et al. 2017): conditional GAN + L1, discriminator step first.

Batch: ``{"A": input (N, Cin, H, W), "B": target (N, Cout, H, W)}``, both in [-1, 1].
The discriminator judges ``cat(A, B)`` (real) against ``cat(A, G(A))`` (fake)::

    fake = G(A)
    D step:  loss_D = 0.5 * (gan(D(A, fake.detach()), False) + gan(D(A, B), True))
    G step:  loss_G = gan(D(A, fake), True) + lambda_l1 * |fake - B|_1    (with the updated D)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer

from ...models.losses import gan_loss
from ..amp import Amp
from .base import Objective, frozen, to_floats, zero_grad


class Pix2PixObjective(Objective):
    """pix2pix with generator ``G`` and conditional discriminator ``D`` (input channels Cin + Cout)."""

    trainable = ("G", "D")
    generator_name = "G"

    def __init__(self, G: nn.Module, D: nn.Module, gan_mode: str = "vanilla", lambda_l1: float = 100.0):
        super().__init__()
        self.G = G
        self.D = D
        self.gan_mode = gan_mode
        self.lambda_l1 = float(lambda_l1)

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Optimizer],
                   amp: Amp | None = None) -> dict[str, float]:
        amp = amp or Amp.off()
        real_a, real_b = batch["A"], batch["B"]
        opt_g, opt_d = optimizers["G"], optimizers["D"]

        with amp.autocast():
            fake_b = self.G(real_a)

        # 1. Discriminator: real pairs -> 1, generated pairs -> 0.
        zero_grad(opt_d)
        with amp.autocast():
            fake_ab = torch.cat((real_a, fake_b.detach()), 1)  # (N, Cin + Cout, H, W)
            real_ab = torch.cat((real_a, real_b), 1)  # (N, Cin + Cout, H, W)
            loss_d_fake = gan_loss(self.D(fake_ab), False, self.gan_mode)
            loss_d_real = gan_loss(self.D(real_ab), True, self.gan_mode)
            loss_d = 0.5 * (loss_d_fake + loss_d_real)
        amp.backward(loss_d)
        amp.step(opt_d)

        # 2. Generator: fool the (just updated) D and stay close to the target in L1.
        zero_grad(opt_g)
        with frozen(self.D), amp.autocast():
            pred_fake = self.raw("D")(torch.cat((real_a, fake_b), 1))  # D on (N, Cin + Cout, H, W)
            loss_g_gan = gan_loss(pred_fake, True, self.gan_mode, for_discriminator=False)
            loss_g_l1 = F.l1_loss(fake_b.float(), real_b.float()) * self.lambda_l1
            loss_g = loss_g_gan + loss_g_l1
        amp.backward(loss_g)
        amp.step(opt_g)
        amp.update()

        self._keep_images(real_a, fake_b, real_b)
        return to_floats({"G_GAN": loss_g_gan, "G_L1": loss_g_l1, "D_real": loss_d_real,
                          "D_fake": loss_d_fake})

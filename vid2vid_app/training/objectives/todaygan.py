"""ToDayGAN (Anoosheh et al., "Night-to-Day Image Translation for Retrieval-based Localization",
ICRA 2019): CycleGAN's generators and cycle, judged by three-view discriminators.

Batch and networks as :mod:`.cyclegan` (``G_A``: A -> B, ``G_B``: B -> A, ``D_A`` judges domain B,
``D_B`` domain A), but each discriminator is a
:class:`~vid2vid_app.models.discriminators.ToDayGANDiscriminator`: one PatchGAN on the blurred
colour image, one on the greyscale image and one on its gradients, each also judging at its
intermediate levels. The losses follow the method's published code::

    real_A_pred = D_B(A), real_B_pred = D_A(B)            (once, before both updates)
    fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A)
    G step: gan(real_B_pred, D_A(fake_B)) + gan(real_A_pred, D_B(fake_A))
            + lambda_cycle * (smoothL1(rec_A, A) + smoothL1(rec_B, B))
            [+ lambda_identity * lambda_cycle * (smoothL1(pool(G_A(B)), pool(B)) + same for G_B(A))]
    D step: 0.5 * gan_D(real_B_pred, D_A(pool_B(fake_B))), same for D_B

``gan`` is :func:`~vid2vid_app.models.losses.multiview_gan_loss`: by default (``rlsgan``) the
relativistic least-squares loss, real and fake maps of the same batch position compared; the
discriminators see fakes from a 50-image history pool, so real and pooled batches have the same
size. The cycle loss is the smooth L1 (Huber, beta 1) loss of the method, quadratic for the small
errors of a converging cycle; the identity loss, off by default as in the method, compares images
average-pooled 3x3 with stride 2 so that it constrains colours and layout rather than detail.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...models.losses import multiview_gan_loss
from .cyclegan import CycleGANObjective


def smooth_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Huber loss with beta 1 between two (N, C, H, W) images in [-1, 1], in float32."""
    return F.smooth_l1_loss(x.float(), y.float(), beta=1.0)


def pooled_smooth_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`smooth_l1` of both images average-pooled 3x3 with stride 2 (coarse colour and layout)."""
    return smooth_l1(F.avg_pool2d(x.float(), 3, stride=2), F.avg_pool2d(y.float(), 3, stride=2))


class ToDayGANObjective(CycleGANObjective):
    """ToDayGAN with generators ``G_A`` (A->B), ``G_B`` (B->A) and three-view discriminators ``D_A``
    (judges domain B), ``D_B`` (judges domain A). ``gan_mode``: "rlsgan" (the method's relativistic
    LSGAN) or one of "lsgan", "vanilla", "hinge" applied to every logits map. The step is
    CycleGAN's (:meth:`CycleGANObjective.train_step`) with the terms below."""

    def __init__(self, G_A, G_B, D_A, D_B, gan_mode: str = "rlsgan", lambda_cycle: float = 10.0,
                 lambda_identity: float = 0.0, pool_size: int = 50, pool_seed: int = 0):
        super().__init__(G_A, G_B, D_A, D_B, gan_mode=gan_mode, lambda_cycle=lambda_cycle,
                         lambda_identity=lambda_identity, pool_size=pool_size, pool_seed=pool_seed)

    def _judge_reals(self, real_a: torch.Tensor, real_b: torch.Tensor) -> tuple:
        # Judged once: the generator's relativistic loss reads these maps as constants, the
        # discriminator step backpropagates through them.
        return self.D_B(real_a), self.D_A(real_b)

    def _generator_gan(self, d_name: str, fake: torch.Tensor, pred_real) -> torch.Tensor:
        return multiview_gan_loss(pred_real, self.raw(d_name)(fake), self.gan_mode, for_discriminator=False)

    def _discriminator_gan(self, d_name: str, real: torch.Tensor, pooled: torch.Tensor, pred_real) -> torch.Tensor:
        return multiview_gan_loss(pred_real, getattr(self, d_name)(pooled), self.gan_mode, for_discriminator=True)

    def _cycle(self, reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return smooth_l1(reconstructed, real)

    def _identity(self, same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return pooled_smooth_l1(same, real)

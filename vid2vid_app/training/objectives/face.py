"""Everybody Dance Now face stage: a residual face generator refines the body generator's faces.

Batch: the temporal batch (``pose0``, ``pose1``, ``frame0``, ``frame1``) plus ``box0``, ``box1``:
(N, 4) face boxes ``(x0, y0, x1, y1)`` in pixels of the frames. The finished body generator runs
frozen in eval mode, exactly as in its own training (frame 1 conditioned on the generated frame 0;
a person layer composited over the batch's ``"plate"``), and only the face networks train. For both frames::

    gen_t   = G_body(...)                                     (no gradient)
    pose_c, gen_c, real_c = face crops of pose_t, gen_t, frame_t (crop_faces, out_size x out_size)
    refined = face_G(cat(pose_c, gen_c))                      (= gen_c + predicted residual)
    G step: gan(face_D(pose_c, refined), True) + lambda_feat * FM + lambda_vgg * VGG(refined, real_c)
            + lambda_l1 * |refined - real_c|
    D step: 0.5 * (gan(face_D(pose_c, refined.detach()), False) + gan(face_D(pose_c, real_c), True))

The paper's face loss is GAN + perceptual (VGG); feature matching is added as in the body stages.
``lambda_l1=None`` means: an L1 term of weight ``lambda_vgg`` replaces the perceptual term when no
VGG is given (so the crop still has a reconstruction loss), and no L1 otherwise. The crops of both
frames form one batch of 2N; losses are means over it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim import Optimizer

from ...models.face import crop_faces
from ..amp import Amp
from .base import frozen, to_floats, zero_grad
from .pix2pixhd import MultiScaleGANObjective
from .temporal import generate_pair


class FaceObjective(MultiScaleGANObjective):
    """Face stage: trains ``face_G`` and ``face_D``; ``G_body`` stays fixed."""

    trainable = ("face_G", "face_D")
    frozen_modules = ("G_body", "vgg")
    generator_name = "face_G"

    def __init__(self, G_body: nn.Module, face_G: nn.Module, face_D: nn.Module, gan_mode: str = "lsgan",
                 lambda_feat: float = 10.0, lambda_vgg: float = 10.0, vgg: nn.Module | None = None,
                 lambda_l1: float | None = None, n_layers_d: int = 3, num_d: int = 2, crop_size: int = 64):
        if lambda_l1 is None:
            lambda_l1 = lambda_vgg if vgg is None else 0.0
        super().__init__(gan_mode=gan_mode, lambda_feat=lambda_feat, lambda_vgg=lambda_vgg, vgg=vgg,
                         n_layers_d=n_layers_d, num_d=num_d, lambda_l1=lambda_l1)
        self.face_G, self.face_D = face_G, face_D
        self.G_body = G_body.eval().requires_grad_(False)
        self.crop_size = int(crop_size)

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Optimizer],
                   amp: Amp | None = None) -> dict[str, float]:
        amp = amp or Amp.off()
        opt_g, opt_d = optimizers["face_G"], optimizers["face_D"]
        size = self.crop_size

        with torch.no_grad(), amp.autocast():
            # A person-layer body generator makes composites over the batch's plate.
            gen0, gen1 = generate_pair(self.G_body, batch["pose0"], batch["pose1"], batch.get("plate"))
        # Both frames as one batch of 2N; S = crop size.
        boxes = torch.cat((batch["box0"], batch["box1"]), 0)  # (2N, 4)
        pose_c = crop_faces(torch.cat((batch["pose0"], batch["pose1"]), 0), boxes, size)  # (2N, P, S, S)
        gen_c = crop_faces(torch.cat((gen0, gen1), 0).float(), boxes, size)  # (2N, 3, S, S)
        real_c = crop_faces(torch.cat((batch["frame0"], batch["frame1"]), 0), boxes, size)  # (2N, 3, S, S)

        with amp.autocast():
            refined = self.face_G(torch.cat((pose_c, gen_c), 1))  # (2N, P + 3, S, S) -> (2N, 3, S, S)
            pred_real = self.face_D(torch.cat((pose_c, real_c), 1))  # face_D on (2N, P + 3, S, S)

        # 1. Face generator with the face discriminator frozen.
        zero_grad(opt_g)
        with frozen(self.face_D), amp.autocast():
            pred_fake = self.raw("face_D")(torch.cat((pose_c, refined), 1))  # (2N, P + 3, S, S)
            losses = self._generator_losses(pred_fake, pred_real, refined, real_c)
            loss_g = sum(losses.values())
        amp.backward(loss_g)
        amp.step(opt_g)

        # 2. Face discriminator.
        zero_grad(opt_d)
        with amp.autocast():
            pred_fake_d = self.face_D(torch.cat((pose_c, refined.detach()), 1))  # (2N, P + 3, S, S)
            losses.update(self._discriminator_losses(pred_fake_d, pred_real))
            loss_d = 0.5 * (losses["D_fake"] + losses["D_real"])
        amp.backward(loss_d)
        amp.step(opt_d)
        amp.update()

        self._keep_images(pose_c, gen_c, refined, real_c)  # sample grid: pose | body output | refined | real
        return to_floats(losses)

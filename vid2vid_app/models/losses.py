"""Loss functions for the GAN objectives: adversarial (also ToDayGAN's relativistic multi-view
loss), feature matching, perceptual, cycle, identity, and the CycleGAN history pool.

Loss weights (lambda_L1 = 100, lambda_feat = 10, lambda_cycle = 10, ...) are applied by the
objectives, not here. Every loss returns a scalar float32 tensor.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .vgg import STAGE_ENDS, StagedFeatures, backbone_weight_candidates, find_backbone_weights

GAN_MODES = ("lsgan", "vanilla", "hinge")

# A discriminator output: one tensor of logits, the feature list of one discriminator (the logits
# last), or one such list per scale of a multiscale discriminator.
DiscriminatorOutput = torch.Tensor | Sequence[torch.Tensor] | Sequence[Sequence[torch.Tensor]]


def _final_logits(pred: DiscriminatorOutput) -> list[torch.Tensor]:
    """The logits of each scale: a tensor -> [it]; a list of tensors (one discriminator's
    intermediate features, logits last) -> [its last]; a list of lists -> the last of each."""
    if isinstance(pred, torch.Tensor):
        return [pred]
    if len(pred) == 0:
        raise ValueError("empty discriminator output")
    if isinstance(pred[0], torch.Tensor):
        return [pred[-1]]
    return [scale[-1] for scale in pred]


def _gan_loss_one(
    logits: torch.Tensor, target_is_real: bool, mode: str, for_discriminator: bool
) -> torch.Tensor:
    # Losses in float32 even when the discriminator ran under bf16/fp16 autocast.
    x = logits.float()
    if mode == "lsgan":
        target = 1.0 if target_is_real else 0.0
        return (x - target).square().mean()
    if mode == "vanilla":
        target = torch.ones_like(x) if target_is_real else torch.zeros_like(x)
        return F.binary_cross_entropy_with_logits(x, target)
    # hinge
    if for_discriminator:
        return F.relu(1.0 - x).mean() if target_is_real else F.relu(1.0 + x).mean()
    if not target_is_real:
        raise ValueError("the hinge generator loss only exists for target_is_real=True")
    return -x.mean()


def gan_loss(
    pred: DiscriminatorOutput,
    target_is_real: bool,
    mode: str = "lsgan",
    for_discriminator: bool = True,
    scale_reduction: str = "sum",
) -> torch.Tensor:
    """Adversarial loss of discriminator logits against a real / fake target.

    ``pred``: a logits tensor of any shape (e.g. PatchGAN (N, 1, h, w)), one discriminator's
    feature list whose last element is the logits, or a multiscale output (one feature list per
    scale; the last element of each is used).

    Modes: ``vanilla`` = binary cross-entropy with logits (pix2pix); ``lsgan`` = mean squared error
    to 1 (real) or 0 (fake) (CycleGAN, pix2pixHD); ``hinge``: the discriminator uses
    mean(relu(1 - x)) for real and mean(relu(1 + x)) for fake, the generator (``for_discriminator=
    False``, ``target_is_real=True``) uses -mean(x). For ``vanilla`` and ``lsgan`` the generator
    loss is simply the loss with ``target_is_real=True``.

    Scales are combined by ``scale_reduction``: ``"sum"`` as pix2pixHD does (its GANLoss adds the
    per-scale losses) or ``"mean"``.
    """
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss mode {mode!r}; choose one of {', '.join(GAN_MODES)}")
    if scale_reduction not in ("sum", "mean"):
        raise ValueError(f"scale_reduction must be 'sum' or 'mean', not {scale_reduction!r}")
    losses = [_gan_loss_one(p, target_is_real, mode, for_discriminator) for p in _final_logits(pred)]
    total = torch.stack(losses).sum()
    return total / len(losses) if scale_reduction == "mean" else total


def level_weights(n: int) -> list[float]:
    """Weights of a ToDayGAN discriminator view's ``n`` logits maps, shallow first.

    Deeper levels count more: 1, 2, ..., n - 1 and n + 1 for the final map, divided by their sum and
    by ``n`` as in ToDayGAN's code. The weights thus sum to 1 / n, which sets the strength of the
    GAN term against the cycle loss in that method's defaults.
    """
    if n < 1:
        raise ValueError(f"need at least one logits map, got {n}")
    raw = [float(k) for k in range(1, n + 1)]
    raw[-1] += 1.0
    total = sum(raw) * n
    return [w / total for w in raw]


def relativistic_lsgan_loss(real: torch.Tensor, fake: torch.Tensor, for_discriminator: bool = True) -> torch.Tensor:
    """Relativistic least-squares GAN loss on paired logits maps of one shape (ToDayGAN).

    The discriminator wants each real map to exceed the fake one of the same batch position by 1:
    mean((real - fake - 1)^2); the generator wants the reverse, mean((fake - real - 1)^2), with the
    real maps taken as constants. Judging real against fake rather than against fixed targets
    keeps the discriminator from saturating on easy batches.
    """
    if real.shape != fake.shape:
        raise ValueError(f"relativistic loss needs real and fake maps of one shape: {tuple(real.shape)} vs "
                         f"{tuple(fake.shape)}")
    r, f = real.float(), fake.float()
    if for_discriminator:
        return (r - f - 1.0).square().mean()
    return (f - r.detach() - 1.0).square().mean()


def multiview_gan_loss(pred_real: Sequence[Sequence[torch.Tensor]] | None,
                       pred_fake: Sequence[Sequence[torch.Tensor]], mode: str = "rlsgan",
                       for_discriminator: bool = True) -> torch.Tensor:
    """GAN loss of a ToDayGAN discriminator: ``pred_*`` are lists over views (blurred colour, grey,
    gradient) of lists of logits maps, shallow first. Within a view the maps are weighted by
    :func:`level_weights`; the views are averaged.

    ``mode="rlsgan"``: :func:`relativistic_lsgan_loss` between the real and fake maps (``pred_real``
    is needed for the generator too). Other modes (:data:`GAN_MODES`): the discriminator's loss is
    ``gan(real, True) + gan(fake, False)`` per map, the generator's ``gan(fake, True)``
    (``pred_real`` unused). Halving the discriminator's loss is the caller's choice.
    """
    if mode != "rlsgan" and mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss mode {mode!r}; choose rlsgan or one of {', '.join(GAN_MODES)}")
    if pred_real is None and (for_discriminator or mode == "rlsgan"):
        raise ValueError(f"the {mode} {'discriminator' if for_discriminator else 'generator'} loss needs "
                         "the real predictions")
    views = []
    for v, fakes in enumerate(pred_fake):
        reals = pred_real[v] if pred_real is not None else [None] * len(fakes)
        if len(reals) != len(fakes):
            raise ValueError(f"view {v}: {len(reals)} real maps but {len(fakes)} fake maps")
        total = torch.zeros((), device=fakes[-1].device)
        for w, real, fake in zip(level_weights(len(fakes)), reals, fakes, strict=True):
            if mode == "rlsgan":
                term = relativistic_lsgan_loss(real, fake, for_discriminator)
            elif for_discriminator:
                term = _gan_loss_one(real, True, mode, True) + _gan_loss_one(fake, False, mode, True)
            else:
                term = _gan_loss_one(fake, True, mode, False)
            total = total + w * term
        views.append(total)
    if not views:
        raise ValueError("empty discriminator output")
    return torch.stack(views).mean()


def feature_matching_loss(
    fake_feats: Sequence[Sequence[torch.Tensor]],
    real_feats: Sequence[Sequence[torch.Tensor]],
    n_layers: int = 3,
    num_d: int = 2,
) -> torch.Tensor:
    """pix2pixHD feature-matching loss between discriminator features of fake and real inputs.

    ``fake_feats`` / ``real_feats``: one list per discriminator scale, each the intermediate
    feature maps followed by the final logits (which are excluded here). A single list of tensors
    is read as one scale. Returns
    sum over scales i and intermediate layers j of L1(fake[i][j], real[i][j].detach())
    * 4 / (n_layers + 1) / num_d, where ``n_layers`` is the discriminator's n_layers and ``num_d``
    its number of scales (must equal the number of scales given).
    """
    if len(fake_feats) and isinstance(fake_feats[0], torch.Tensor):
        fake_feats, real_feats = [fake_feats], [real_feats]
    if len(fake_feats) != len(real_feats):
        raise ValueError(f"{len(fake_feats)} fake scales but {len(real_feats)} real scales")
    if len(fake_feats) != num_d:
        raise ValueError(f"num_d={num_d} but the discriminator output has {len(fake_feats)} scales")
    layer_weight = 4.0 / (n_layers + 1)
    scale_weight = 1.0 / num_d
    total = torch.zeros((), device=fake_feats[0][-1].device)
    for fake_scale, real_scale in zip(fake_feats, real_feats, strict=True):
        if len(fake_scale) != len(real_scale):
            raise ValueError(f"{len(fake_scale)} fake feature maps but {len(real_scale)} real ones")
        for fake, real in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + F.l1_loss(fake.float(), real.detach().float()) * (layer_weight * scale_weight)
    return total


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """CycleGAN cycle-consistency loss: mean |G_BA(G_AB(a)) - a|, both (N, C, H, W) in [-1, 1]."""
    return F.l1_loss(reconstructed.float(), original.float())


def identity_loss(same: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """CycleGAN identity loss: mean |G_AB(b) - b|, both (N, C, H, W) in [-1, 1]."""
    return F.l1_loss(same.float(), original.float())


# ----------------------------------------------------------------------------- perceptual loss

VGG_WEIGHTS_ENV = "VID2VID_VGG_WEIGHTS"
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
# ImageNet statistics torchvision's VGG weights were trained with (inputs in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def find_vgg_weights(backbone: str = "vgg16", explicit: str | Path | None = None) -> Path | None:
    """The ImageNet weight file for the perceptual loss, or ``None`` when none is found.

    Order: ``explicit`` (the only candidate when given); ``$VID2VID_VGG_WEIGHTS``; then
    ``<backbone>_features_imagenet.pth`` in ``$VID2VID_WEIGHTS_DIR`` and in the ``shared/weights``
    folder beside a source checkout; then the torch hub cache (``vgg16-397923af.pth`` /
    ``vgg19-dcbb9e9d.pth``). Never downloads.
    """
    if backbone not in ("vgg16", "vgg19"):
        raise ValueError(f"the perceptual loss uses vgg16 or vgg19, not {backbone!r}")
    if explicit is not None:
        return find_backbone_weights(backbone, explicit)
    env = os.environ.get(VGG_WEIGHTS_ENV)
    if env:
        return find_backbone_weights(backbone, env)
    return find_backbone_weights(backbone)


def _missing_vgg_weights_message(backbone: str, explicit: str | Path | None) -> str:
    if explicit is not None:
        return (
            f"VGG weight file {explicit} does not exist; pass the path of a {backbone} ImageNet state dict."
        )
    env = os.environ.get(VGG_WEIGHTS_ENV)
    if env:
        return f"VGG weight file {env} (from ${VGG_WEIGHTS_ENV}) does not exist."
    looked = ", ".join(str(p) for p in backbone_weight_candidates(backbone))
    return (
        f"no {backbone} ImageNet weights found (looked in {looked}); pass the weight file's path "
        f"or set ${VGG_WEIGHTS_ENV}, or turn the VGG loss off."
    )


class VGGLoss(nn.Module):
    """Perceptual loss: weighted L1 distance between frozen VGG features (pix2pixHD).

    ``forward(x, y)``: x (generated) and y (target), float (N, 3, H, W) in [-1, 1], H and W at
    least 16 -> scalar. Both are mapped to [0, 1] and normalised with the ImageNet mean/std the
    torchvision weights expect, then compared at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with
    ``layer_weights``; the target's features carry no gradient. (pix2pixHD's code feeds [-1, 1]
    images to VGG19 without the ImageNet normalisation; normalising matches the statistics the
    weights were trained on.) VGG19 at these layers is the pix2pixHD loss; VGG16 at the same block
    starts is the offline stand-in whose weights ship with the project.

    The backbone is frozen and stays in eval mode. Its parameters are part of this module's
    ``state_dict``: save the generator and discriminator, not the loss module.
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        backbone: str = "vgg16",
        layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS,
    ):
        super().__init__()
        if len(layer_weights) != 5:
            raise ValueError(f"layer_weights needs 5 values (one per VGG stage), got {len(layer_weights)}")
        path = find_vgg_weights(backbone, weights_path)
        if path is None:
            raise UserError(_missing_vgg_weights_message(backbone, weights_path))
        self.weights_path = path
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.features = StagedFeatures(backbone, STAGE_ENDS[(backbone, "relu_x_1")], path)
        # [-1, 1] -> ImageNet-normalised: (x + 1) / 2 - mean) / std == x * scale + shift.
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("scale", 0.5 / std, persistent=False)
        self.register_buffer("shift", (0.5 - mean) / std, persistent=False)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"VGGLoss inputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
        fx = self.features(self._normalise(x))
        # The target only provides constants: no graph is built for it (saves memory and time).
        with torch.no_grad():
            fy = self.features(self._normalise(y))
        total = torch.zeros((), device=x.device)
        for w, a, b in zip(self.layer_weights, fx, fy, strict=True):
            total = total + w * F.l1_loss(a.float(), b.float())
        return total


# ----------------------------------------------------------------------------- history pool


class ImagePool:
    """CycleGAN's history of generated images, shown to the discriminator instead of only the
    newest ones (Shrivastava et al. 2017).

    ``query(images)``: (N, C, H, W) -> (N, C, H, W), detached. With ``size`` 0 the input is returned.
    While the pool has fewer than ``size`` images, each new image is stored and returned. Once
    full, each image is with probability 0.5 swapped for a random stored one (which is returned,
    the new one taking its place) and otherwise returned as is.

    Randomness comes from a private ``torch.Generator`` (seeded with ``seed``), so training is
    reproducible and ``state_dict()`` / ``load_state_dict()`` (stored images + generator state)
    resume it exactly.
    """

    def __init__(self, size: int = 50, seed: int | None = None):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images.split(1):  # each (1, C, H, W)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index].to(image.device))
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, dim=0)

    def state_dict(self) -> dict:
        """Plain data (int, list of tensors, uint8 tensor): loadable with ``weights_only=True``."""
        return {"size": self.size, "images": list(self.images), "rng_state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(f"saved image pool has size {state['size']}, this pool has size {self.size}")
        self.images = [img.clone() for img in state["images"]]
        self.generator.set_state(state["rng_state"].cpu())

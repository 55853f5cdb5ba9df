"""A global image descriptor for place retrieval: GeM-pooled VGG16 conv5 features.

Retrieval-based localization compares one vector per image: a query photo's descriptor is matched
against those of a database of geo-tagged photos by cosine similarity. This descriptor is VGG16's
last convolutional block (relu5_3, 512 channels, before the final max-pool) pooled by generalised
mean (GeM, Radenović, Tolias and Chum, TPAMI 2018) and L2-normalised.

Why this one: it runs offline on a CPU with the ImageNet VGG16 weights the project already uses for
its perceptual loss and LPIPS (nothing to download or train); GeM over the last conv layer is the
standard off-the-shelf global descriptor for instance and landmark retrieval and works at any input
size; and like DenseVLAD (what the ToDayGAN paper localised with) it is a single global vector whose
nearest neighbours give the retrieval ranking. The p = 3 exponent is the value Radenović et al.
report working well for off-the-shelf VGG features: between average pooling (p = 1) and max pooling
(p -> infinity), it favours strong local activations without depending on a single one.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .losses import IMAGENET_MEAN, IMAGENET_STD
from .vgg import backbone_weight_candidates, find_backbone_weights, load_features

# torchvision's vgg16().features[:30] ends with relu5_3; index 30 is the last max-pool, left out.
VGG16_CONV5_END = 30
DESCRIPTOR_DIM = 512
GEM_P = 3.0
# VGG16 halves the resolution four times before conv5: smaller inputs leave no conv5 map.
MIN_SIDE = 32


def gem(features: torch.Tensor, p: float = GEM_P, eps: float = 1e-6) -> torch.Tensor:
    """Generalised mean over space: (N, C, H, W) non-negative -> (N, C) float32,
    ``(mean(clamp(x, eps) ** p)) ** (1 / p)``. p = 1 is average pooling; large p approaches max."""
    x = features.float().clamp(min=eps)
    return x.pow(p).mean(dim=(2, 3)).pow(1.0 / p)


def find_descriptor_weights(explicit: str | Path | None = None) -> Path:
    """The ImageNet VGG16 weight file for the descriptor: ``explicit`` when given, else the folders
    and hub cache that the perceptual loss and LPIPS search. UserError naming them when missing."""
    path = find_backbone_weights("vgg16", explicit)
    if path is not None:
        return path
    if explicit is not None:
        raise UserError(f"VGG16 weight file {explicit} does not exist; pass the path of an ImageNet VGG16 "
                        "state dict (e.g. vgg16_features_imagenet.pth).")
    looked = ", ".join(str(p) for p in backbone_weight_candidates("vgg16"))
    raise UserError(f"no VGG16 ImageNet weights for the retrieval descriptor (looked in {looked}); pass "
                    "--weights FILE or set $VID2VID_WEIGHTS_DIR.")


class GeMDescriptor(nn.Module):
    """Frozen VGG16 conv5 + GeM + L2 normalisation.

    ``forward(x)``: x float (N, 3, H, W) RGB in [-1, 1] with H, W >= 32 -> (N, 512) float32
    descriptors of unit L2 norm; the cosine similarity of two images is the dot product of theirs.
    Always in eval mode with frozen weights. :attr:`settings` identifies the descriptor (e.g. in a
    cache key) together with the weight file's contents.
    """

    def __init__(self, weights_path: str | Path, p: float = GEM_P):
        super().__init__()
        if p <= 0:
            raise ValueError(f"GeM exponent must be positive, got {p}")
        self.weights_path = Path(weights_path)
        self.p = float(p)
        self.features = load_features("vgg16", weights_path)[:VGG16_CONV5_END]
        # [-1, 1] -> ImageNet-normalised ((x + 1) / 2 - mean) / std, as x * scale + shift.
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("scale", 0.5 / std, persistent=False)
        self.register_buffer("shift", (0.5 - mean) / std, persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def settings(self) -> dict:
        """What determines the output besides the weights: name, layer, pooling, dimension."""
        return {"name": "gem-vgg16-conv5", "layer": "relu5_3", "p": self.p, "dim": DESCRIPTOR_DIM,
                "normalisation": "imagenet", "l2": True}

    def train(self, mode: bool = True) -> GeMDescriptor:
        return super().train(False)  # frozen: batch statistics never matter, dropout never runs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) RGB images, got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_SIDE:
            raise ValueError(f"images of {x.shape[-1]}x{x.shape[-2]} are too small for the descriptor; "
                             f"it needs at least {MIN_SIDE}x{MIN_SIDE}")
        features = self.features(x * self.scale.to(x.dtype) + self.shift.to(x.dtype))
        return F.normalize(gem(features, self.p), dim=1)

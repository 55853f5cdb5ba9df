"""Frozen ImageNet backbones (VGG16, VGG19, AlexNet) cut into five feature stages.

Shared by the VGG perceptual loss (:class:`vid2vid_app.models.losses.VGGLoss`) and the LPIPS
metric (:class:`vid2vid_app.metrics.LPIPS`). The networks are torchvision's ``features`` stacks
built with ``weights=None``; the ImageNet weights always come from a local file, never from a
download:

1. an explicit path given by the caller,
2. a folder of weight files (``VID2VID_WEIGHTS_DIR``, then the ``shared/weights`` folder beside a
   source checkout) holding ``<backbone>_features_imagenet.pth``,
3. the torch hub cache (``$TORCH_HOME/hub/checkpoints``), where torchvision keeps
   ``vgg16-397923af.pth`` and friends once a user with internet has downloaded them.

A weight file is either a ``features`` state dict (keys ``0.weight``, ``0.bias``, ...) or a full
torchvision model state dict (keys ``features.0.weight``, ..., classifier keys are ignored).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..errors import UserError, load_failure

BACKBONES = ("vgg16", "vgg19", "alexnet")

# Exclusive end indices of the five stages inside torchvision's ``features`` Sequential: stage k is
# features[ends[k-1]:ends[k]], so each stage's output is the ReLU at index end - 1.
#
# "relu_x_1" are the first ReLU of each VGG block (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1), the
# layers pix2pixHD's perceptual loss reads from VGG19; the VGG16 loss uses the same block starts so
# the five layer weights mean the same thing for both backbones.
# "lpips" are the layers of Zhang et al. 2018: VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3;
# AlexNet relu1 ... relu5.
STAGE_ENDS: dict[tuple[str, str], tuple[int, ...]] = {
    ("vgg16", "relu_x_1"): (2, 7, 12, 19, 26),
    ("vgg19", "relu_x_1"): (2, 7, 12, 21, 30),
    ("vgg16", "lpips"): (4, 9, 16, 23, 30),
    ("alexnet", "lpips"): (2, 5, 8, 10, 12),
}

# Channels of each stage's output, per layer set.
STAGE_CHANNELS: dict[tuple[str, str], tuple[int, ...]] = {
    ("vgg16", "relu_x_1"): (64, 128, 256, 512, 512),
    ("vgg19", "relu_x_1"): (64, 128, 256, 512, 512),
    ("vgg16", "lpips"): (64, 128, 256, 512, 512),
    ("alexnet", "lpips"): (64, 192, 384, 256, 256),
}

# File names of the ImageNet weights: in a weights folder, and in the torch hub cache.
FOLDER_FILENAMES = {b: f"{b}_features_imagenet.pth" for b in BACKBONES}
HUB_FILENAMES = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
}

# Environment variable naming a folder of weight files (like ../shared/weights).
WEIGHTS_DIR_ENV = "VID2VID_WEIGHTS_DIR"


def _check_backbone(backbone: str) -> None:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")


def weights_dirs() -> list[Path]:
    """Folders searched for weight files, in order: ``$VID2VID_WEIGHTS_DIR`` (when set), then the
    ``shared/weights`` folder beside a source checkout of this package (a development layout;
    absent in a normal install, where it is simply skipped)."""
    dirs = []
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    # vid2vid_app/models/vgg.py -> parents[2] is the checkout root; shared/ sits beside it.
    dirs.append(Path(__file__).resolve().parents[3] / "shared" / "weights")
    return dirs


def hub_checkpoint_dir() -> Path:
    """The torch hub cache's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def backbone_weight_candidates(backbone: str) -> list[Path]:
    """Every path :func:`find_backbone_weights` tries (without an explicit path), in order."""
    _check_backbone(backbone)
    paths = [d / FOLDER_FILENAMES[backbone] for d in weights_dirs()]
    paths.append(hub_checkpoint_dir() / HUB_FILENAMES[backbone])
    return paths


def find_backbone_weights(backbone: str, explicit: str | Path | None = None) -> Path | None:
    """The ImageNet weight file for ``backbone``, or ``None`` when there is none.

    An ``explicit`` path is the only candidate when given (returned only if it exists); otherwise
    the folders of :func:`weights_dirs` and the torch hub cache are searched.
    """
    _check_backbone(backbone)
    if explicit is not None:
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    for path in backbone_weight_candidates(backbone):
        if path.is_file():
            return path
    return None


def load_features(backbone: str, path: str | Path) -> nn.Sequential:
    """torchvision's ``features`` stack of ``backbone`` (``weights=None``) with the weights of
    ``path`` (a features or full-model state dict), loaded strictly.

    The network is built on the meta device and its storage filled only by the loaded weights:
    random initialisation of VGG's 100M-parameter classifier would cost seconds for nothing.
    Raises :class:`UserError` when the file cannot be read or does not fit ``backbone``.
    """
    _check_backbone(backbone)
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickled code, not a torch file at all
        raise UserError(f"{path} is not a readable weight file ({load_failure(exc)}).") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict of {backbone} weights.")
    if any(k.startswith("features.") for k in state):
        # A full torchvision model: keep the convolution stack, drop the classifier.
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    with torch.device("meta"):
        features = getattr(torchvision.models, backbone)(weights=None).features
    features = features.to_empty(device="cpu")
    try:
        features.load_state_dict(state, strict=True)
    except RuntimeError:
        expected = sorted(features.state_dict())
        raise UserError(
            f"{path} does not match the {backbone} feature layers "
            f"(expected {len(expected)} tensors such as {expected[0]!r} with matching shapes, "
            f"found {len(state)})."
        ) from None
    return features


class StagedFeatures(nn.Module):
    """A frozen backbone returning the outputs of its five stages.

    ``forward(x)``: x float (N, 3, H, W), already normalised the way the backbone expects ->
    list of five (N, C_k, H_k, W_k) ReLU outputs (C_k from :data:`STAGE_CHANNELS`).
    The module is always in eval mode and its parameters never require gradients; gradients still
    flow through it to ``x``.
    """

    def __init__(self, backbone: str, stage_ends: Sequence[int], weights_path: str | Path):
        super().__init__()
        features = load_features(backbone, weights_path)
        starts = (0, *stage_ends[:-1])
        # Layers after the last stage (e.g. the final max-pool) are never run.
        self.stages = nn.ModuleList(features[a:b] for a, b in zip(starts, stage_ends, strict=True))
        self.backbone = backbone
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> StagedFeatures:
        # A frozen feature extractor stays in eval mode even inside a module put in train mode.
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

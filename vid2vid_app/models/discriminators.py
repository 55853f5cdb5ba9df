"""Discriminators: PatchGAN, pixel (1x1) GAN, and pix2pixHD multi-scale (also used as the temporal
pair discriminator and the face discriminator).

"patch" and "pixel" return a logits map (N, 1, h, w). The multi-scale ones return
``list[list[Tensor]]``: one inner list per scale, full resolution first, holding every layer's
output of that scale; the last element is the logits map (pix2pixHD's feature-matching layout).
"""

from __future__ import annotations

import torch
from torch import nn

from .generators import check_norm, conv_bias, make_norm


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix / CycleGAN): 4x4 convs with padding 1, n_layers stride-2 levels (widths ndf,
    2ndf, ... capped at 8ndf), a stride-1 level and a 1-channel conv. n_layers=3 sees 70x70 patches.

    (N, in_channels, H, W) -> logits (N, 1, ~H/2^n_layers - 2, ...). Keys ``model.N`` as the reference.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        check_norm(norm)
        bias = conv_bias(norm)
        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        c = ndf
        for n in range(1, n_layers + 1):
            c_next = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(c, c_next, 4, stride=stride, padding=1, bias=bias), make_norm(norm, c_next),
                       nn.LeakyReLU(0.2, True)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: classifies every pixel on its own. (N, C, H, W) -> logits (N, 1, H, W)."""

    def __init__(self, in_channels: int, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        check_norm(norm)
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), make_norm(norm, ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FeatureDiscriminator(nn.Module):
    """pix2pixHD single-scale PatchGAN returning every layer's output.

    Like :class:`PatchDiscriminator` (equal widths for ndf <= 64 and n_layers <= 3) but with padding 2,
    a bias on every conv, widths capped at 512, and split into n_layers + 2 stages. (N, in_channels, H, W) -> [features..., logits (N, 1, h, w)].
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        check_norm(norm)
        pad = 2  # ceil((4 - 1) / 2), as pix2pixHD
        stages = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=pad), nn.LeakyReLU(0.2, True))]
        c = ndf
        for n in range(1, n_layers + 1):
            c_next = min(c * 2, 512)  # pix2pixHD caps the width at 512 (PatchGAN: at 8 * ndf)
            stride = 2 if n < n_layers else 1
            stages.append(nn.Sequential(nn.Conv2d(c, c_next, 4, stride=stride, padding=pad),
                                        make_norm(norm, c_next), nn.LeakyReLU(0.2, True)))
            c = c_next
        stages.append(nn.Sequential(nn.Conv2d(c, 1, 4, stride=1, padding=pad)))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD multi-scale discriminator: ``num_d`` :class:`FeatureDiscriminator` s, scale k seeing
    the input average-pooled k times (3x3, stride 2).

    (N, in_channels, H, W) -> list over scales (full resolution first) of
    [features..., logits]. ``num_d`` and ``n_layers`` are attributes so losses can weight the
    feature-matching terms.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance", num_d: int = 2):
        super().__init__()
        if num_d < 1:
            raise ValueError(f"num_d must be >= 1, got {num_d}")
        self.num_d = num_d
        self.n_layers = n_layers
        self.scales = nn.ModuleList(FeatureDiscriminator(in_channels, ndf, n_layers, norm) for _ in range(num_d))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for k, scale in enumerate(self.scales):
            if k > 0:
                x = self.downsample(x)
            results.append(scale(x))
        return results


class TemporalDiscriminator(MultiscaleDiscriminator):
    """Everybody Dance Now pair discriminator: a multi-scale discriminator on
    cat(pose t, pose t+1, frame t, frame t+1), so in_channels = 2 * (pose channels + 3).
    Build its input with :meth:`pair`."""

    @staticmethod
    def pair(pose0: torch.Tensor, pose1: torch.Tensor, frame0: torch.Tensor, frame1: torch.Tensor) -> torch.Tensor:
        """Concatenate two consecutive (pose, frame) pairs along channels, in the order the D expects."""
        return torch.cat([pose0, pose1, frame0, frame1], 1)


class FaceDiscriminator(MultiscaleDiscriminator):
    """Face-stage discriminator: a multi-scale discriminator on cat(pose crop, face crop)."""

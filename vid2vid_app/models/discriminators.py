"""Discriminators: PatchGAN, pixel (1x1) GAN, pix2pixHD multi-scale (also used as the temporal
pair discriminator and the face discriminator) and ToDayGAN's three-view discriminator.

"patch" and "pixel" return a logits map (N, 1, h, w). The multi-scale ones return
``list[list[Tensor]]``: one inner list per scale, full resolution first, holding every layer's
output of that scale; the last element is the logits map (pix2pixHD's feature-matching layout).
"todaygan" returns ``list[list[Tensor]]`` too: one inner list per view (blurred colour, grey,
gradient), each holding logits maps only, shallow levels first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


class DeepPatchDiscriminator(nn.Module):
    """A PatchGAN whose intermediate levels also judge: a 1x1 conv reads a logits map off each
    stride-2 level after the first, and the PatchGAN's own logits come last.

    Layout as :class:`PatchDiscriminator` (4x4 convs, widths ndf, 2ndf, ... capped at 8ndf). Deeper
    levels see larger patches; asking each level for a verdict gives the shallow, small-patch levels
    their own training signal (ToDayGAN's discriminators do this).
    (N, in_channels, H, W) -> list of ``n_layers`` logits maps (N, 1, h_k, w_k), shallow first.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        check_norm(norm)
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        bias = conv_bias(norm)
        levels = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True))]
        heads = []
        c = ndf
        for n in range(1, n_layers + 1):
            c_next = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            levels.append(nn.Sequential(nn.Conv2d(c, c_next, 4, stride=stride, padding=1, bias=bias),
                                        make_norm(norm, c_next), nn.LeakyReLU(0.2, True)))
            if n < n_layers:
                heads.append(nn.Conv2d(c_next, 1, 1))
            c = c_next
        self.levels = nn.ModuleList(levels)
        self.heads = nn.ModuleList(heads)
        self.final = nn.Conv2d(c, 1, 4, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for k, level in enumerate(self.levels):
            x = level(x)
            if 1 <= k <= len(self.heads):
                outputs.append(self.heads[k - 1](x))
        outputs.append(self.final(x))
        return outputs


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """(size, size) float32 Gaussian weights summing to 1, centred."""
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = torch.outer(g, g)
    return kernel / kernel.sum()


LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B in grey


class ToDayGANDiscriminator(nn.Module):
    """ToDayGAN's discriminator of one domain (Anoosheh et al., ICRA 2019): three
    :class:`DeepPatchDiscriminator` s, each judging one view of the image.

    * ``color``: the RGB image blurred by a 5x5 Gaussian (sigma 3), so it judges colours and
      large-scale appearance rather than texture;
    * ``gray``: the greyscale image (BT.601 luma), so it judges structure and texture whatever the
      colours;
    * ``gradient``: the horizontal and vertical central differences of the greyscale image taken
      every second pixel (2 channels, (H/2 - 2) x (W/2 - 2)), so it judges edges; being half size,
      it has one level fewer.

    (N, 3, H, W) in [-1, 1] -> ``[color maps, gray maps, gradient maps]``, each a list of logits
    maps (shallow first, final last). The filters are fixed buffers, rebuilt from the config.
    """

    branches = ("color", "gray", "gradient")

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 blur_size: int = 5, blur_sigma: float = 3.0):
        super().__init__()
        if in_channels != 3:
            raise ValueError(f"the ToDayGAN discriminator judges RGB images (3 channels), got {in_channels}")
        if n_layers < 2:
            raise ValueError(f"n_layers must be >= 2 (the gradient view uses n_layers - 1), got {n_layers}")
        self.color = DeepPatchDiscriminator(3, ndf, n_layers, norm)
        self.gray = DeepPatchDiscriminator(1, ndf, n_layers, norm)
        self.gradient = DeepPatchDiscriminator(2, ndf, n_layers - 1, norm)
        blur = gaussian_kernel(blur_size, blur_sigma)
        self.register_buffer("blur_kernel", blur.expand(3, 1, blur_size, blur_size).clone(), persistent=False)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)

    def views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(blurred (N, 3, H, W), grey (N, 1, H, W), gradient (N, 2, H/2 - 2, W/2 - 2)) of ``x``."""
        pad = self.blur_kernel.shape[-1] // 2
        blurred = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), self.blur_kernel.to(x.dtype), groups=3)
        gray = (x * self.luma.to(x.dtype)).sum(dim=1, keepdim=True)
        half = gray[..., ::2, ::2]
        dx = half[..., 1:-1, 2:] - half[..., 1:-1, :-2]
        dy = half[..., 2:, 1:-1] - half[..., :-2, 1:-1]
        return blurred, gray, torch.cat((dx, dy), 1)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        blurred, gray, gradient = self.views(x)
        return [self.color(blurred), self.gray(gray), self.gradient(gradient)]

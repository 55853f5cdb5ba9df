"""Image-to-image generators: pix2pix U-Net, CycleGAN ResNet, pix2pixHD global generator and local
enhancer.

Every generator maps (N, in_channels, H, W) in [-1, 1] to (N, out_channels, H, W) in [-1, 1] (Tanh)
and exposes ``stride``: H and W must be multiples of it (pad with ``imaging.pad_to_multiple``).

The modules are nested exactly like the reference implementations (pytorch-CycleGAN-and-pix2pix and
pix2pixHD), so their state-dict keys are identical and reference checkpoints load directly:
U-Net ``model.model.1.model.3...``, ResNet / global ``model.N``, local enhancer ``model`` (global
trunk), ``model1_1`` (enhancer down path), ``model1_2`` (enhancer blocks and up path).
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "instance", "none")


def check_norm(norm: str) -> None:
    """Raise ValueError when ``norm`` is not one of :data:`NORMS`."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose from {', '.join(NORMS)}")


def make_norm(norm: str, channels: int) -> nn.Module:
    """The normalisation layer used everywhere: BatchNorm (affine, running stats), InstanceNorm
    (no affine, no running stats: the reference setting) or Identity."""
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` gets a bias in the pix2pix / CycleGAN networks.

    A BatchNorm right after the conv subtracts the mean, so a bias would be redundant. The reference
    code also drops it when there is no norm layer at all; here such convs keep a bias, because
    without normalisation nothing else can shift the activations. (Reference checkpoints saved
    that way still load: their missing biases are zeros.)
    """
    return norm != "batch"


# --------------------------------------------------------------------------------------------
# U-Net (pix2pix)
# --------------------------------------------------------------------------------------------


class UnetBlock(nn.Module):
    """One level of the U-Net: down-conv, the inner levels, up-conv, and a skip concatenation.

    Input (N, outer_nc or in_channels, H, W). A non-outermost block returns
    cat(input, processed) with outer_nc * 2 channels at the same H, W; the outermost block returns
    (N, outer_nc, H, W) through Tanh. Layer order and indices follow the reference so the keys match:
    outermost [down, inner, relu, up, tanh], middle [lrelu, down, norm, inner, relu, up, norm,
    (dropout)], innermost [lrelu, down, relu, up, norm].
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        *,
        in_channels: int | None = None,
        inner: nn.Module | None = None,
        outermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        in_channels = outer_nc if in_channels is None else in_channels
        down = nn.Conv2d(in_channels, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [down, inner, nn.ReLU(True), up, nn.Tanh()]
        elif inner is None:  # innermost: no norm after the down-conv, nothing to concatenate
            up = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, make_norm(norm, outer_nc)]
        else:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, make_norm(norm, inner_nc), inner,
                      nn.ReLU(True), up, make_norm(norm, outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The first layer is an in-place LeakyReLU, so ``x`` is already activated when it is
        # concatenated: the skip carries lrelu(x). The reference behaves the same way, and its
        # checkpoints were trained with it, so this must stay in place to reproduce their outputs.
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net with ``n_downs`` stride-2 levels (unet_128: 7, unet_256: 8).

    Level i (0 = outermost) has ngf * min(2^i, 8) inner channels; the levels between the 8x-wide
    ones and the innermost carry dropout 0.5 when ``dropout`` (three of them for unet_256). Any
    depth >= 2 works; for depths >= 5 the layout equals the reference exactly. stride = 2^n_downs.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: bool = True):
        super().__init__()
        if n_downs < 2:
            raise ValueError(f"a U-Net needs at least 2 levels, got n_downs={n_downs}")
        check_norm(norm)
        width = [ngf * min(2**i, 8) for i in range(n_downs)]  # inner channels of level i
        block = UnetBlock(width[-2], width[-1], norm=norm)  # innermost
        for i in range(n_downs - 2, 0, -1):
            wide = width[i - 1] == width[i] == ngf * 8
            block = UnetBlock(width[i - 1], width[i], inner=block, norm=norm, dropout=dropout and wide)
        self.model = UnetBlock(out_channels, width[0], in_channels=in_channels, inner=block,
                               outermost=True, norm=norm)
        self.stride = 2**n_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1]; H, W multiples of stride."""
        return self.model(x)


# --------------------------------------------------------------------------------------------
# ResNet generator (CycleGAN) and pix2pixHD global generator
# --------------------------------------------------------------------------------------------


class ResnetBlock(nn.Module):
    """x + [reflect-pad, conv3x3, norm, ReLU, (dropout), reflect-pad, conv3x3, norm](x)."""

    def __init__(self, dim: int, norm: str, bias: bool, dropout: bool = False):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(norm, dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def resnet_layers(in_channels: int, out_channels: int, ngf: int, n_downsample: int, n_blocks: int,
                  norm: str, dropout: bool, bias: bool) -> list[nn.Module]:
    """The layer list shared by the CycleGAN ResNet generator and the pix2pixHD global generator:
    7x7 conv, ``n_downsample`` stride-2 3x3 convs (channels doubling), ``n_blocks`` residual blocks at
    ngf * 2^n_downsample channels, as many transposed convs back up, 7x7 conv to ``out_channels``,
    Tanh. The last three entries are [pad, conv, Tanh] (the local enhancer drops them)."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias), make_norm(norm, ngf), nn.ReLU(True)]
    for i in range(n_downsample):
        c = ngf * 2**i
        layers += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1, bias=bias), make_norm(norm, c * 2), nn.ReLU(True)]
    c = ngf * 2**n_downsample
    layers += [ResnetBlock(c, norm, bias, dropout) for _ in range(n_blocks)]
    for i in range(n_downsample):
        c = ngf * 2 ** (n_downsample - i)
        layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                   make_norm(norm, c // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
    return layers


class ResnetGenerator(nn.Module):
    """Encoder, residual blocks, decoder.

    CycleGAN's generator is this with n_downsample=2 and 6 or 9 blocks (convs before a BatchNorm
    have no bias); pix2pixHD's global generator is this with n_downsample=4 (default), 9 blocks and
    a bias on every conv (``always_bias=True``). stride = 2^n_downsample.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_downsample: int = 2,
                 n_blocks: int = 9, norm: str = "instance", dropout: bool = False, always_bias: bool = False):
        super().__init__()
        check_norm(norm)
        if n_blocks < 0 or n_downsample < 0:
            raise ValueError("n_blocks and n_downsample must be >= 0")
        bias = True if always_bias else conv_bias(norm)
        self.model = nn.Sequential(
            *resnet_layers(in_channels, out_channels, ngf, n_downsample, n_blocks, norm, dropout, bias))
        self.stride = 2**n_downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1]; H, W multiples of stride."""
        return self.model(x)


class GlobalGenerator(ResnetGenerator):
    """pix2pixHD global generator G1: ngf 64, 4 downsamplings, 9 blocks, every conv biased."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_downsample: int = 4,
                 n_blocks: int = 9, norm: str = "instance"):
        super().__init__(in_channels, out_channels, ngf, n_downsample, n_blocks, norm, dropout=False,
                         always_bias=True)


# --------------------------------------------------------------------------------------------
# pix2pixHD local enhancer
# --------------------------------------------------------------------------------------------


class LocalEnhancer(nn.Module):
    """pix2pixHD local enhancer: a global generator trunk (width ngf * 2^n_local_enhancers, without its
    final conv/Tanh) runs on the input downsampled 2^n_local_enhancers times; each enhancer n
    (1..n_local_enhancers, coarse to fine) adds its own stride-2 features of the input at its scale
    to the previous output, then refines and upsamples x2. The last enhancer ends in a 7x7 conv + Tanh.

    Attribute names follow the reference (``model``, ``model{n}_1``, ``model{n}_2``) so checkpoints
    load directly. stride = 2^(n_downsample + n_local_enhancers).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 32, n_downsample: int = 4,
                 n_blocks: int = 9, n_local_enhancers: int = 1, n_blocks_local: int = 3, norm: str = "instance"):
        super().__init__()
        check_norm(norm)
        if n_local_enhancers < 1:
            raise ValueError("a local enhancer needs n_local_enhancers >= 1")
        self.n_local_enhancers = n_local_enhancers
        trunk = resnet_layers(in_channels, out_channels, ngf * 2**n_local_enhancers, n_downsample, n_blocks,
                              norm, dropout=False, bias=True)
        self.model = nn.Sequential(*trunk[:-3])  # drop the trunk's [pad, conv, Tanh]
        for n in range(1, n_local_enhancers + 1):
            c = ngf * 2 ** (n_local_enhancers - n)
            down = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, c, 7), make_norm(norm, c), nn.ReLU(True),
                    nn.Conv2d(c, c * 2, 3, stride=2, padding=1), make_norm(norm, c * 2), nn.ReLU(True)]
            up = [ResnetBlock(c * 2, norm, bias=True) for _ in range(n_blocks_local)]
            up += [nn.ConvTranspose2d(c * 2, c, 3, stride=2, padding=1, output_padding=1),
                   make_norm(norm, c), nn.ReLU(True)]
            if n == n_local_enhancers:
                up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
            setattr(self, f"model{n}_1", nn.Sequential(*down))
            setattr(self, f"model{n}_2", nn.Sequential(*up))
        # Averages 3x3 windows at stride 2; ignoring the padding keeps borders unbiased.
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.stride = 2 ** (n_downsample + n_local_enhancers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1]; H, W multiples of stride."""
        pyramid = [x]  # full resolution first
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local_enhancers + 1):
            features = getattr(self, f"model{n}_1")(pyramid[self.n_local_enhancers - n])
            out = getattr(self, f"model{n}_2")(features + out)
        return out

"""Network registries and the two builders the rest of the application uses.

``GENERATORS`` / ``DISCRIMINATORS`` map a name to its class (their keys are the CLI choices);
``GENERATOR_DEFAULTS`` / ``DISCRIMINATOR_DEFAULTS`` list, per name, every keyword the network takes
and its reference default. A built network carries ``config`` (the exact keywords, with "arch"),
so ``build_generator(**model.config)`` rebuilds it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import UserError
from .discriminators import (
    FaceDiscriminator,
    MultiscaleDiscriminator,
    PatchDiscriminator,
    PixelDiscriminator,
    TemporalDiscriminator,
    ToDayGANDiscriminator,
)
from .face import FaceResidualGenerator
from .generators import NORMS, GlobalGenerator, LocalEnhancer, ResnetGenerator, UnetGenerator
from .init import init_weights

GENERATORS: dict[str, type[nn.Module]] = {
    "unet_128": UnetGenerator,
    "unet_256": UnetGenerator,
    "resnet_6blocks": ResnetGenerator,
    "resnet_9blocks": ResnetGenerator,
    "global": GlobalGenerator,
    "local": LocalEnhancer,
    "face": FaceResidualGenerator,
}

_IO = {"in_channels": 3, "out_channels": 3}
GENERATOR_DEFAULTS: dict[str, dict[str, Any]] = {
    # pix2pix: batch norm and dropout.
    "unet_128": {**_IO, "n_downs": 7, "ngf": 64, "norm": "batch", "dropout": True},
    "unet_256": {**_IO, "n_downs": 8, "ngf": 64, "norm": "batch", "dropout": True},
    # CycleGAN: instance norm, no dropout, always 2 downsamplings.
    "resnet_6blocks": {**_IO, "ngf": 64, "n_blocks": 6, "norm": "instance", "dropout": False},
    "resnet_9blocks": {**_IO, "ngf": 64, "n_blocks": 9, "norm": "instance", "dropout": False},
    # pix2pixHD: instance norm; the local enhancer's ngf is its own width (global branch: ngf * 2^n).
    "global": {**_IO, "ngf": 64, "n_downsample": 4, "n_blocks": 9, "norm": "instance"},
    "local": {**_IO, "ngf": 32, "n_downsample": 4, "n_blocks": 9, "n_local_enhancers": 1,
              "n_blocks_local": 3, "norm": "instance"},
    # Everybody Dance Now face stage: in_channels = pose channels + 3 (the generated face crop).
    "face": {"in_channels": 6, "out_channels": 3, "ngf": 32, "n_downsample": 3, "n_blocks": 5, "norm": "instance"},
}

DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "patch": PatchDiscriminator,
    "pixel": PixelDiscriminator,
    "multiscale": MultiscaleDiscriminator,
    "temporal": TemporalDiscriminator,
    "face": FaceDiscriminator,
    "todaygan": ToDayGANDiscriminator,
}

DISCRIMINATOR_DEFAULTS: dict[str, dict[str, Any]] = {
    "patch": {"ndf": 64, "n_layers": 3, "norm": "batch"},
    "pixel": {"ndf": 64, "norm": "batch"},
    "multiscale": {"ndf": 64, "n_layers": 3, "norm": "instance", "num_d": 2},
    "temporal": {"ndf": 64, "n_layers": 3, "norm": "instance", "num_d": 2},
    "face": {"ndf": 64, "n_layers": 3, "norm": "instance", "num_d": 2},
    # ToDayGAN: blurred colour, grey and gradient views of each image, each judged at every level.
    "todaygan": {"ndf": 64, "n_layers": 3, "norm": "instance"},
}


def _resolve(kind: str, arch: str, registry: dict, defaults: dict, given: dict[str, Any]) -> dict[str, Any]:
    """The keywords for ``arch``: its defaults overridden by the given non-None values; keywords the
    arch does not take are ignored (callers pass one option set to every arch)."""
    if arch not in registry:
        raise UserError(f"Unknown {kind} architecture {arch!r}; choose one of: {', '.join(registry)}.")
    norm = given.get("norm")
    if norm is not None and norm not in NORMS:
        raise UserError(f"Unknown norm {norm!r}; choose one of: {', '.join(NORMS)}.")
    return {k: (given[k] if given.get(k) is not None else v) for k, v in defaults[arch].items()}


def build_generator(
    arch: str,
    *,
    in_channels: int | None = None,
    out_channels: int | None = None,
    ngf: int | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
    n_downsample: int | None = None,
    n_blocks: int | None = None,
    n_local_enhancers: int | None = None,
    n_blocks_local: int | None = None,
    n_downs: int | None = None,
    init: str | None = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """Build the generator ``arch`` (a key of GENERATORS); None means the arch's default
    (GENERATOR_DEFAULTS), keywords it does not take are ignored.

    Returns a module mapping (N, in_channels, H, W) in [-1, 1] to (N, out_channels, H, W) in
    [-1, 1], with ``.stride`` (H, W must be multiples) and ``.config`` (rebuild with
    ``build_generator(**config)``). Weights are initialised with :func:`init_weights` (``init``;
    None keeps PyTorch's defaults, e.g. before loading a checkpoint).
    """
    given = dict(in_channels=in_channels, out_channels=out_channels, ngf=ngf, norm=norm, dropout=dropout,
                 n_downsample=n_downsample, n_blocks=n_blocks, n_local_enhancers=n_local_enhancers,
                 n_blocks_local=n_blocks_local, n_downs=n_downs)
    kwargs = _resolve("generator", arch, GENERATORS, GENERATOR_DEFAULTS, given)
    try:
        model = GENERATORS[arch](**kwargs)
    except ValueError as e:
        raise UserError(f"Cannot build generator {arch!r}: {e}.") from e
    model.config = {"arch": arch, **kwargs}
    if init is not None:
        init_weights(model, init, init_gain)
    return model


def build_discriminator(
    arch: str,
    *,
    in_channels: int,
    ndf: int | None = None,
    n_layers: int | None = None,
    norm: str | None = None,
    num_d: int | None = None,
    init: str | None = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """Build the discriminator ``arch`` (a key of DISCRIMINATORS) on ``in_channels`` input channels.

    "patch" and "pixel" return logits (N, 1, h, w); "multiscale", "temporal" and "face" return
    list[list[Tensor]] (per scale, full resolution first: features..., logits last); "todaygan"
    list[list[Tensor]] (per view: logits maps, shallow first). ``.config``
    holds the keywords (with "arch" and "in_channels").
    """
    given = dict(ndf=ndf, n_layers=n_layers, norm=norm, num_d=num_d)
    kwargs = _resolve("discriminator", arch, DISCRIMINATORS, DISCRIMINATOR_DEFAULTS, given)
    try:
        model = DISCRIMINATORS[arch](in_channels, **kwargs)
    except ValueError as e:
        raise UserError(f"Cannot build discriminator {arch!r}: {e}.") from e
    model.config = {"arch": arch, "in_channels": in_channels, **kwargs}
    if init is not None:
        init_weights(model, init, init_gain)
    return model

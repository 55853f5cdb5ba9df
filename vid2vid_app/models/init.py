"""Weight initialisation and parameter counting shared by every network."""

from __future__ import annotations

from torch import nn

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
_NORM_TYPES = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.InstanceNorm2d, nn.GroupNorm)


def init_weights(module: nn.Module, init: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise ``module`` in place the way pix2pix / CycleGAN / pix2pixHD do and return it.

    Conv and linear weights: N(0, gain) for ``init="normal"`` (else xavier-normal with ``gain``,
    kaiming-normal fan-in, or orthogonal with ``gain``), biases 0. Affine norm layers: weight
    N(1, gain), bias 0. A conv flagged with ``zero_init = True`` (e.g. the last conv of a residual
    head that must start as identity) is set to all zeros instead, so re-initialising a whole
    model keeps that property.
    """
    if init not in INIT_TYPES:
        raise ValueError(f"unknown init {init!r}; choose from {', '.join(INIT_TYPES)}")
    for m in module.modules():
        if getattr(m, "weight", None) is not None and m.weight.is_meta:
            continue  # built on the meta device (e.g. to count parameters): there are no values to set
        if isinstance(m, _CONV_TYPES):
            if getattr(m, "zero_init", False):
                nn.init.zeros_(m.weight)
            elif init == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif init == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif init == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORM_TYPES) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


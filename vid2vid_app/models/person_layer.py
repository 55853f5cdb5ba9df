"""The person layer: a generator that paints only the person, composited over a background plate.

The generator emits 4 channels in [-1, 1] (Tanh): colour (3) and alpha (1, mapped to [0, 1]).
The frame is ``alpha * colour + (1 - alpha) * plate``. Every loss and discriminator sees that
composite; alpha itself gets two light terms:

- :func:`mask_loss`: mean |alpha - person mask| against the segmentation (a coarse guide that
  the reconstruction losses refine);
- :func:`halo_loss`: mean alpha farther than a margin from the person, where partial alpha would
  otherwise survive unnoticed (over the plate a half-transparent copy of the plate looks right) and
  show as a halo once the background is swapped.

Tensors are float (N, C, H, W); images in [-1, 1], alpha and masks in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LAYER_CHANNELS = 4  # colour + alpha


def split_layers(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generator output (N, 4, H, W) in [-1, 1] -> (colour (N, 3, H, W) in [-1, 1], alpha
    (N, 1, H, W) in [0, 1])."""
    if raw.shape[1] != LAYER_CHANNELS:
        raise ValueError(f"a person-layer generator emits {LAYER_CHANNELS} channels, got {raw.shape[1]}")
    return raw[:, :3], (raw[:, 3:] + 1.0) * 0.5


def composite(colour: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``alpha * colour + (1 - alpha) * background``: colour and background (N or 1, 3, H, W) in
    [-1, 1], alpha (N, 1, H, W) in [0, 1] -> (N, 3, H, W) in [-1, 1]."""
    return background + alpha * (colour - background)


def generate_composite(generator: torch.nn.Module, x: torch.Tensor,
                       plate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a person-layer ``generator`` on ``x`` and composite over ``plate`` (N or 1, 3, H, W):
    returns (frame (N, 3, H, W) in [-1, 1], alpha (N, 1, H, W) in [0, 1])."""
    colour, alpha = split_layers(generator(x))
    return composite(colour, alpha, plate.to(colour.dtype)), alpha


def swap_background(frame: torch.Tensor, alpha: torch.Tensor, plate: torch.Tensor,
                    background: torch.Tensor) -> torch.Tensor:
    """A frame composited over ``plate`` moved onto ``background``: the plate's share
    ``(1 - alpha) * plate`` is replaced by ``(1 - alpha) * background``. Anything added to the
    composite afterwards (the face stage's refinement) is kept. All (N or 1, C, H, W)."""
    return frame + (1.0 - alpha) * (background - plate)


def mask_loss(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between alpha and the person mask, both (N, 1, H, W) in [0, 1]."""
    return F.l1_loss(alpha.float(), mask.float())


def far_from_person(mask: torch.Tensor, margin: int, level: float = 0.5) -> torch.Tensor:
    """(N, 1, H, W) float: 1 where a pixel is more than ``margin`` pixels (a square's half side)
    from every pixel where ``mask`` reaches ``level``, else 0."""
    person = (mask >= level).float()
    if margin > 0:
        person = F.max_pool2d(person, kernel_size=2 * margin + 1, stride=1, padding=margin)
    return 1.0 - person


def halo_loss(alpha: torch.Tensor, mask: torch.Tensor, margin: int) -> torch.Tensor:
    """Mean alpha over the pixels far (``margin`` pixels) from the person of ``mask``; alpha and
    mask (N, 1, H, W) in [0, 1]. Zero when the matte is empty away from the person."""
    far = far_from_person(mask.float(), margin)
    return (alpha.float() * far).sum() / far.sum().clamp(min=1.0)

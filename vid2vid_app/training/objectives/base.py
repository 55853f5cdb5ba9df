"""The interface every training objective implements, and helpers they share.

An objective owns BUILT networks (as attributes) and knows how to run one full training iteration
on a batch. The training loop knows nothing of GANs: it moves the objective to a device, wraps the
trainable networks (DDP, SyncBatchNorm) through :meth:`Objective.wrap_networks`, builds the
optimizers with :meth:`Objective.make_optimizers`, and calls :meth:`Objective.train_step`.

Conventions shared by the subclasses:

- Trainable networks live in attributes named in ``trainable`` (e.g. ``("G", "D")``). During DDP
  training those attributes hold the DDP wrapper; ``self.raw(name)`` is always the plain module.
- A discriminator used only to compute the generator's loss is called through ``self.raw(...)``
  inside :func:`frozen`: its weights need no gradient there, which saves their backward work and
  keeps DDP's gradient reduction out of the generator step.
- ``train_step`` returns plain floats (one device sync per step) and keeps the images of the step
  for :meth:`Objective.sample_images`, so sample grids need no extra forward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.optim import Adam, Optimizer

from ..amp import Amp
from ..modules import unwrap


class Objective(nn.Module):
    """Base class: trainable networks by name, optimizers, one training iteration, sample images."""

    #: attribute names of the trainable networks
    trainable: tuple[str, ...] = ()
    #: attribute names of frozen helper networks kept in eval mode (e.g. VGG, a finished body G)
    frozen_modules: tuple[str, ...] = ()
    #: the network a generator export takes
    generator_name: str = "G"

    def __init__(self) -> None:
        super().__init__()
        self._last_images: list[torch.Tensor] | None = None

    # -- networks -------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """Trainable networks by name (plain modules, never DDP wrappers)."""
        return {name: self.raw(name) for name in self.trainable}

    def raw(self, name: str) -> nn.Module:
        """The plain module stored under ``name`` (unwrapping DDP)."""
        return unwrap(getattr(self, name))

    def generator(self) -> nn.Module:
        """The network :func:`export_generator` takes (plain module)."""
        return self.raw(self.generator_name)

    def wrap_networks(self, fn: Callable[[str, nn.Module], nn.Module]) -> None:
        """Replace each trainable network with ``fn(name, module)`` (DDP, SyncBatchNorm)."""
        for name in self.trainable:
            setattr(self, name, fn(name, getattr(self, name)))

    def train(self, mode: bool = True) -> Objective:
        super().train(mode)
        for name in self.frozen_modules:
            module = getattr(self, name, None)
            if module is not None:
                module.eval()
        return self

    # -- optimisation ---------------------------------------------------------------------------
    def make_optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, Optimizer]:
        """One Adam per trainable network by default; subclasses may group networks."""
        return {name: adam(self.raw(name).parameters(), lr, betas) for name in self.trainable}

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Optimizer],
                   amp: Amp | None = None) -> dict[str, float]:
        """One full iteration (discriminator and generator updates); returns the losses."""
        raise NotImplementedError

    def sample_images(self, batch: dict[str, torch.Tensor] | None = None) -> list[torch.Tensor]:
        """``[input, output, target, ...]`` (N, C, H, W) in [-1, 1] from the last ``train_step``."""
        if self._last_images is None:
            raise RuntimeError("sample_images needs a train_step first")
        return self._last_images

    # -- extra state saved in checkpoints (image pools, ...) ------------------------------------
    def extra_state(self) -> dict:
        """State besides network weights that exact resume needs (weights_only-loadable)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`extra_state` returned."""

    # -- helpers for subclasses -----------------------------------------------------------------
    def _keep_images(self, *images: torch.Tensor) -> None:
        self._last_images = [img.detach() for img in images]


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float]) -> Adam:
    """Adam with the fused kernel (CUDA, CPU) when every parameter sits on a supported device,
    else the multi-tensor (foreach) one. Same update rule either way."""
    params = list(params)
    devices = {p.device.type for p in params}
    if params and devices <= {"cuda", "cpu"} and all(p.is_floating_point() for p in params):
        try:
            return Adam(params, lr=lr, betas=betas, fused=True)
        except (RuntimeError, ValueError):
            pass
    return Adam(params, lr=lr, betas=betas, foreach=True)


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` of the modules' parameters inside the block (restored after).

    Gradients still flow through the modules to their inputs; only their own weight gradients are
    skipped.
    """
    params = [p for m in modules for p in unwrap(m).parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def zero_grad(*optimizers: Optimizer) -> None:
    """Drop gradients (``set_to_none``: no memset, and the next backward writes instead of adds)."""
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)


def to_floats(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """Detach and convert all losses in one device-to-host copy."""
    if not losses:
        return {}
    values = torch.stack([v.detach().float().reshape(()) for v in losses.values()]).tolist()
    return dict(zip(losses.keys(), values, strict=True))


def detach_features(pred):
    """Detach a discriminator output (tensor or list[list[tensor]])."""
    if isinstance(pred, torch.Tensor):
        return pred.detach()
    return [[f.detach() for f in scale] for scale in pred]

"""Small helpers around ``nn.Module`` objects: the plain module inside a wrapper, eval mode for
a block and the train/eval mode kept across a block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


@contextlib.contextmanager
def kept_mode(*modules: nn.Module) -> Iterator[None]:
    """Give each of ``modules`` back the train/eval mode it had before the block, even when the
    block raises or changes it.

    Restoring calls ``module.train(mode)``, which sets every submodule to that mode (modules that
    pin themselves to eval, such as the frozen VGG, stay in eval).
    """
    modes = [m.training for m in modules]
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """``modules`` in eval mode inside the block (dropout off, batch norm on its running
    statistics), then back in the mode each had (:func:`kept_mode`)."""
    with kept_mode(*modules):
        for m in modules:
            m.eval()
        yield

"""training.modules: the plain module inside wrappers, eval mode for a block, modes kept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vid2vid_app.training.modules import eval_mode, kept_mode, unwrap


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))


def test_eval_mode_inside_the_block_and_each_mode_back_after():
    training, evaluating = _net().train(), _net().eval()
    with eval_mode(training, evaluating):
        assert not any(m.training for net in (training, evaluating) for m in net.modules())
        # Dropout off and batch norm on its running statistics: the output is deterministic.
        x = torch.randn(2, 3, 8, 8)
        assert torch.equal(training(x), training(x))
    assert all(m.training for m in training.modules())
    assert not any(m.training for m in evaluating.modules())


def test_modes_come_back_when_the_block_raises_or_changes_them():
    net = _net().train()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(net):
        raise RuntimeError("boom")
    assert net.training and net[2].training
    with kept_mode(net):
        net.eval()  # e.g. a validation function that switches without switching back
    assert all(m.training for m in net.modules())


def test_unwrap_reaches_the_plain_module():
    net = _net()
    assert unwrap(net) is net
    assert unwrap(nn.DataParallel(net)) is net

    class Compiled(nn.Module):  # what torch.compile returns keeps the original as _orig_mod
        def __init__(self, inner: nn.Module):
            super().__init__()
            self._orig_mod = inner

    assert unwrap(Compiled(nn.DataParallel(net))) is net

"""Tiny datasets, networks and comparisons shared by the training tests (and the DDP worker)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from vid2vid_app.models import build_discriminator, build_generator
from vid2vid_app.training import CycleGANObjective, Pix2PixObjective, TemporalObjective, ToDayGANObjective

SIZE = 64


class PairedToy(Dataset):
    """Paired 64x64 images: B is a fixed colour transform of A. With ``augment`` each item gets a
    random flip and noise from the global RNGs, so data order and per-sample seeding matter.

    ``interrupt_at`` raises KeyboardInterrupt on that (1-based) __getitem__ call; ``nan_index`` makes
    that item's input NaN.
    """

    def __init__(self, n: int = 5, augment: bool = True, interrupt_at: int | None = None,
                 nan_index: int | None = None, on_call=None):
        self.n, self.augment = n, augment
        self.interrupt_at, self.nan_index, self.on_call = interrupt_at, nan_index, on_call
        self.calls = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        if self.interrupt_at is not None and self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        g = torch.Generator().manual_seed(1000 + i)
        a = torch.rand(3, SIZE, SIZE, generator=g) * 2 - 1
        if self.augment:
            if torch.rand(()) < 0.5:
                a = a.flip(-1)
            a = (a + 0.1 * torch.randn_like(a)).clamp(-1, 1)
        b = torch.stack((a[1], a[2], -a[0]))
        if i == self.nan_index:
            a = torch.full_like(a, float("nan"))
        return {"A": a, "B": b}


class TemporalToy(Dataset):
    """Consecutive-frame samples for the temporal objective: 3-channel poses and frames, 32x32."""

    def __init__(self, n: int = 4):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(2000 + i)
        t = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
        return {"pose0": t[0], "pose1": t[1], "frame0": t[2], "frame1": t[3]}


def tiny_temporal(seed: int = 0) -> TemporalObjective:
    """Global generator (2 downsamplings, 1 block) ngf 4, 2-scale frame and temporal D ndf 4."""
    torch.manual_seed(seed)
    G = build_generator("global", in_channels=6, ngf=4, n_downsample=2, n_blocks=1)
    D = build_discriminator("multiscale", in_channels=6, ndf=4, n_layers=2, num_d=2)
    DT = build_discriminator("temporal", in_channels=12, ndf=4, n_layers=2, num_d=2)
    return TemporalObjective(G, D, DT, n_layers_d=2, num_d=2)


def tiny_pix2pix(seed: int = 0, norm: str = "batch", dropout: bool = True) -> Pix2PixObjective:
    """U-Net (6 downsamplings: 64x64 input; dropout in the innermost up block) ngf 4 + PatchGAN ndf 4."""
    torch.manual_seed(seed)
    G = build_generator("unet_256", n_downs=6, ngf=4, norm=norm, dropout=dropout)
    D = build_discriminator("patch", in_channels=6, ndf=4, n_layers=2, norm=norm)
    return Pix2PixObjective(G, D)


def tiny_cyclegan(seed: int = 0, pool_size: int = 2) -> CycleGANObjective:
    """ResNet generators (2 blocks) ngf 4 + PatchGAN ndf 4, instance norm."""
    torch.manual_seed(seed)
    gens = [build_generator("resnet_6blocks", ngf=4, n_blocks=2) for _ in range(2)]
    discs = [build_discriminator("patch", in_channels=3, ndf=4, n_layers=2, norm="instance") for _ in range(2)]
    return CycleGANObjective(*gens, *discs, pool_size=pool_size)


def tiny_todaygan(seed: int = 0, pool_size: int = 2) -> ToDayGANObjective:
    """ResNet generators (2 blocks) ngf 4 + ToDayGAN three-view discriminators ndf 4."""
    torch.manual_seed(seed)
    gens = [build_generator("resnet_6blocks", ngf=4, n_blocks=2) for _ in range(2)]
    discs = [build_discriminator("todaygan", in_channels=3, ndf=4, n_layers=2) for _ in range(2)]
    return ToDayGANObjective(*gens, *discs, pool_size=pool_size)


def state_of(objective) -> dict[str, torch.Tensor]:
    """All network weights and buffers of an objective, by qualified name (CPU copies)."""
    return {f"{n}.{k}": v.detach().cpu().clone()
            for n, net in objective.networks().items() for k, v in net.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0.0:
            assert torch.equal(a[k], b[k]), f"{k} differs"
        else:
            torch.testing.assert_close(a[k].float(), b[k].float(), atol=atol, rtol=0, msg=f"{k} differs")

"""CycleGAN (Zhu et al. 2017): two generators, two discriminators, generator step first.

Batch: ``{"A": images of domain A, "B": images of domain B}`` (N, C, H, W) in [-1, 1], unpaired.
``G_A``: A -> B, ``G_B``: B -> A; ``D_A`` judges domain B (real B vs G_A's fakes) and ``D_B``
judges domain A, following the reference naming::

    fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A)
    G step: gan(D_A(fake_B), True) + gan(D_B(fake_A), True)
            + lambda_cycle * (|rec_A - A| + |rec_B - B|)
            + lambda_identity * lambda_cycle * (|G_A(B) - B| + |G_B(A) - A|)
    D step: 0.5 * (gan(D_A(B), True) + gan(D_A(pool_B(fake_B)), False)), same for D_B

The discriminators see fakes drawn from a history pool of ``pool_size`` images. One Adam holds
both generators and one both discriminators, as in the reference. The export takes ``G_A``;
``G_B`` goes into the same file as an extra generator (``export_generator(...,
extra_generators={"G_B": objective.raw("G_B")})``).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.optim import Optimizer

from ...models.losses import ImagePool, cycle_loss, gan_loss, identity_loss
from ..amp import Amp
from .base import Objective, adam, frozen, to_floats, zero_grad


class CycleGANObjective(Objective):
    """CycleGAN with generators ``G_A`` (A->B), ``G_B`` (B->A) and discriminators ``D_A``, ``D_B``."""

    trainable = ("G_A", "G_B", "D_A", "D_B")
    generator_name = "G_A"

    def __init__(self, G_A: nn.Module, G_B: nn.Module, D_A: nn.Module, D_B: nn.Module,
                 gan_mode: str = "lsgan", lambda_cycle: float = 10.0, lambda_identity: float = 0.5,
                 pool_size: int = 50, pool_seed: int = 0):
        super().__init__()
        self.G_A, self.G_B, self.D_A, self.D_B = G_A, G_B, D_A, D_B
        self.gan_mode = gan_mode
        self.lambda_cycle = float(lambda_cycle)
        self.lambda_identity = float(lambda_identity)
        # Seeded pools keep runs reproducible; their state is checkpointed for exact resume.
        self.pool_A = ImagePool(pool_size, seed=pool_seed)  # generated A images (for D_B)
        self.pool_B = ImagePool(pool_size, seed=pool_seed + 1)  # generated B images (for D_A)

    def make_optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, Optimizer]:
        gens = itertools.chain(self.raw("G_A").parameters(), self.raw("G_B").parameters())
        discs = itertools.chain(self.raw("D_A").parameters(), self.raw("D_B").parameters())
        return {"G": adam(gens, lr, betas), "D": adam(discs, lr, betas)}

    # -- the terms a variant may replace (ToDayGAN does) ------------------------------------------
    def _judge_reals(self, real_a: torch.Tensor, real_b: torch.Tensor) -> tuple:
        """Discriminator outputs on the real images computed once before both updates, as
        ``(D_B(A), D_A(B))``; CycleGAN judges them inside the discriminator step instead (None)."""
        return None, None

    def _generator_gan(self, d_name: str, fake: torch.Tensor, pred_real) -> torch.Tensor:
        """The generator's adversarial term against the (frozen) discriminator ``d_name``."""
        return gan_loss(self.raw(d_name)(fake), True, self.gan_mode, for_discriminator=False)

    def _discriminator_gan(self, d_name: str, real: torch.Tensor, pooled: torch.Tensor, pred_real) -> torch.Tensor:
        """The discriminator's adversarial loss before halving: real -> 1, pooled fakes -> 0."""
        d = getattr(self, d_name)
        return gan_loss(d(real), True, self.gan_mode) + gan_loss(d(pooled), False, self.gan_mode)

    def _cycle(self, reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return cycle_loss(reconstructed, real)

    def _identity(self, same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return identity_loss(same, real)

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Optimizer],
                   amp: Amp | None = None) -> dict[str, float]:
        amp = amp or Amp.off()
        real_a, real_b = batch["A"], batch["B"]
        opt_g, opt_d = optimizers["G"], optimizers["D"]
        lam = self.lambda_cycle
        losses: dict[str, torch.Tensor] = {}
        with amp.autocast():
            pred_real_a, pred_real_b = self._judge_reals(real_a, real_b)

        # 1. Generators: fool both discriminators, reconstruct both cycles, keep identity.
        zero_grad(opt_g)
        with frozen(self.D_A, self.D_B), amp.autocast():
            fake_b = self.G_A(real_a)
            rec_a = self.G_B(fake_b)
            fake_a = self.G_B(real_b)
            rec_b = self.G_A(fake_a)
            loss_g = 0.0
            if self.lambda_identity > 0:
                losses["idt_A"] = self._identity(self.G_A(real_b), real_b) * lam * self.lambda_identity
                losses["idt_B"] = self._identity(self.G_B(real_a), real_a) * lam * self.lambda_identity
                loss_g = losses["idt_A"] + losses["idt_B"]
            losses["G_A"] = self._generator_gan("D_A", fake_b, pred_real_b)
            losses["G_B"] = self._generator_gan("D_B", fake_a, pred_real_a)
            losses["cycle_A"] = self._cycle(rec_a, real_a) * lam
            losses["cycle_B"] = self._cycle(rec_b, real_b) * lam
            loss_g = loss_g + losses["G_A"] + losses["G_B"] + losses["cycle_A"] + losses["cycle_B"]
        amp.backward(loss_g)
        amp.step(opt_g)

        # 2. Discriminators: real -> 1, pooled earlier fakes -> 0.
        zero_grad(opt_d)
        pooled_b = self.pool_B.query(fake_b.detach())
        pooled_a = self.pool_A.query(fake_a.detach())
        with amp.autocast():
            loss_d_a = 0.5 * self._discriminator_gan("D_A", real_b, pooled_b, pred_real_b)
        amp.backward(loss_d_a)
        with amp.autocast():
            loss_d_b = 0.5 * self._discriminator_gan("D_B", real_a, pooled_a, pred_real_a)
        amp.backward(loss_d_b)
        amp.step(opt_d)
        amp.update()
        losses["D_A"], losses["D_B"] = loss_d_a, loss_d_b

        # Sample grid: A | G_A(A) | G_B(G_A(A)) | B | G_B(B) | G_A(G_B(B)).
        self._keep_images(real_a, fake_b, rec_a, real_b, fake_a, rec_b)
        return to_floats(losses)

    def extra_state(self) -> dict:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if "pool_A" in state:
            self.pool_A.load_state_dict(state["pool_A"])
        if "pool_B" in state:
            self.pool_B.load_state_dict(state["pool_B"])

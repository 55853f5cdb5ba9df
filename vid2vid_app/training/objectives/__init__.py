"""Training objectives: one small module per method, all sharing :class:`Objective`."""

from .base import Objective, adam, frozen
from .cyclegan import CycleGANObjective
from .face import FaceObjective
from .pix2pix import Pix2PixObjective
from .pix2pixhd import MultiScaleGANObjective, Pix2PixHDObjective
from .temporal import TemporalObjective, generate_pair
from .todaygan import ToDayGANObjective

__all__ = [
    "CycleGANObjective",
    "FaceObjective",
    "MultiScaleGANObjective",
    "Objective",
    "Pix2PixHDObjective",
    "Pix2PixObjective",
    "TemporalObjective",
    "ToDayGANObjective",
    "adam",
    "frozen",
    "generate_pair",
]

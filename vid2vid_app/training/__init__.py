"""Training: objectives, the one training loop, checkpoints, distributed helpers.

    from vid2vid_app.training import TrainConfig, train, Pix2PixObjective
    result = train(Pix2PixObjective(G, D), dataset, TrainConfig(steps=1000), "runs/facades")
"""

from .amp import Amp
from .checkpoint import (
    FORMAT_VERSION,
    export_generator,
    load_checkpoint,
    load_generator_export,
    save_checkpoint,
)
from .loop import TrainConfig, TrainingInterrupted, TrainResult, checkpoint_path, train
from .objectives import (
    CycleGANObjective,
    FaceObjective,
    Objective,
    Pix2PixHDObjective,
    Pix2PixObjective,
    TemporalObjective,
    ToDayGANObjective,
)
from .schedule import lr_factor

__all__ = [
    "FORMAT_VERSION",
    "Amp",
    "CycleGANObjective",
    "FaceObjective",
    "Objective",
    "Pix2PixHDObjective",
    "Pix2PixObjective",
    "TemporalObjective",
    "ToDayGANObjective",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "checkpoint_path",
    "export_generator",
    "load_checkpoint",
    "load_generator_export",
    "lr_factor",
    "save_checkpoint",
    "train",
]

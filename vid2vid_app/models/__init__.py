"""Networks (generators, discriminators), their registries, weight init and reference-checkpoint
import. Losses live in :mod:`vid2vid_app.models.losses`."""

from .init import init_weights
from .reference import infer_generator_config, load_global_into_local, load_reference_generator
from .registry import (
    DISCRIMINATOR_DEFAULTS,
    DISCRIMINATORS,
    GENERATOR_DEFAULTS,
    GENERATORS,
    build_discriminator,
    build_generator,
)

__all__ = [
    "DISCRIMINATORS",
    "DISCRIMINATOR_DEFAULTS",
    "GENERATORS",
    "GENERATOR_DEFAULTS",
    "build_discriminator",
    "build_generator",
    "infer_generator_config",
    "init_weights",
    "load_global_into_local",
    "load_reference_generator",
]

"""Helpers for the `dance transfer` / `dance evaluate` tests: tiny model files built directly
through the model-file API (no training: the networks keep their random initial weights, which
is enough to test the pipelines' plumbing, shapes, frame counts and metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from video_utils import make_test_clip

from vid2vid_app.dance.config import make_config
from vid2vid_app.dance.model import save_dance_model
from vid2vid_app.imaging import letterbox_geometry
from vid2vid_app.models import build_generator
from vid2vid_app.pose import BodyStats, RenderStyle
from vid2vid_app.video import iter_frames, probe

CANVAS = (64, 128)  # (w, h): portrait canvas like the tiny preset's global stage, halved again

# Body statistics of samples/target_cam01.mp4 (360x640) as compute_stats measured them on its
# detected, smoothed poses; fixed here so the tests need not detect the target's poses again.
TARGET_SIZE = (360, 640)
TARGET_STATS = BodyStats(close_ankle_y=404.0, far_ankle_y=363.8, median_ankle_y=366.9, height_close=215.2,
                         height_far=206.0, width=360, height=640, valid_frames=100)


def tiny_generators(face: bool = False, seed: int = 0):
    """A small random global generator on cat(pose, previous) and optionally a face generator."""
    import torch

    torch.manual_seed(seed)
    g = build_generator("global", in_channels=6, out_channels=3, ngf=8, n_downsample=2, n_blocks=1)
    f = build_generator("face", in_channels=6, out_channels=3, ngf=8, n_downsample=2, n_blocks=1) if face else None
    return g, f


def save_tiny_model(path: Path, *, face: bool = False, target_size=TARGET_SIZE, stats=TARGET_STATS,
                    canvas=CANVAS, data: dict | None = None, landmarks: str = "holistic") -> Path:
    """Write a model file (random weights) for a target video of ``target_size``, whose stick
    figures have ``landmarks`` (the tiny preset's holistic, or body)."""
    g, f = tiny_generators(face)
    cfg = make_config("tiny", face_size=16, landmarks=landmarks)
    return save_dance_model(path, generator=g, face_generator=f, config=cfg, target_stats=stats,
                            render_style=RenderStyle(), target_size=target_size, resolution=canvas,
                            letterbox=letterbox_geometry(*target_size, *canvas), stage="global", data=data)


def cut_clip(src: Path, dst: Path, frames: int, *, with_audio: bool = False) -> Path:
    """The first ``frames`` frames of ``src`` re-encoded at its frame rate, optionally with a
    440 Hz sine audio track of the same length."""
    info = probe(src)
    images = list(iter_frames(src, end=frames))
    return make_test_clip(dst, images, info.fps, with_audio=with_audio)


def gradient_clip(path: Path, frames: int = 12, size=(96, 160), fps: int = 30) -> Path:
    """A clip with no person in it: moving colour gradients."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    images = [np.stack([(xx * 2 + 8 * i) % 256, (yy + 5 * i) % 256, np.full_like(xx, 90)], -1).astype(np.uint8)
              for i in range(frames)]
    return make_test_clip(path, images, fps)

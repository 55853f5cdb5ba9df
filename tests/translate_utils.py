"""Small real-photo datasets and clips for the translate-video tests.

The photos are the real landscape wallpapers in ../shared/samples/daynight (2560x1600). They are
downscaled once, then cut into small random crops. The paired (pix2pix) task maps a crop A to
``known_transform(A)``, a fixed tone change, so the best possible output is known exactly and the
identity baseline (output = input) has a clearly non-zero error.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import av
import cv2
import numpy as np

from vid2vid_app.imaging import read_image, write_image

DAY = ("plasma_Path_2560x1600", "plasma_BytheWater_2560x1600", "plasma_ColdRipple_2560x1600")
DUSK = ("plasma_DarkestHour_2560x1600", "plasma_summer_1am_2560x1600", "plasma_EveningGlow_2560x1600")


@functools.lru_cache(maxsize=16)
def _photo(path: str, width: int) -> np.ndarray:
    image = read_image(path)
    h, w = image.shape[:2]
    return cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def photo(samples: Path, stem: str, width: int = 320) -> np.ndarray:
    """A daynight photo downscaled to ``width`` (uint8 HWC RGB)."""
    return _photo(str(samples / "daynight" / f"{stem}.jpg"), width)


def known_transform(image: np.ndarray) -> np.ndarray:
    """A fixed per-pixel tone change: gamma 0.6 (brighter), then a warm tint (R up, B down)."""
    x = (image.astype(np.float32) / 255.0) ** 0.6
    x = x * np.array([1.0, 0.9, 0.6], np.float32) + np.array([0.0, 0.05, 0.0], np.float32)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def random_crops(image: np.ndarray, n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        out.append(np.ascontiguousarray(image[y : y + size, x : x + size]))
    return out


def make_paired_folders(root: Path, samples: Path, per_photo: int = 12, size: int = 80,
                        seed: int = 0) -> tuple[Path, Path]:
    """root/A/*.png day-photo crops and root/B/*.png their known transforms (same names)."""
    rng = np.random.default_rng(seed)
    dir_a, dir_b = root / "A", root / "B"
    dir_a.mkdir(parents=True, exist_ok=True)
    dir_b.mkdir(parents=True, exist_ok=True)
    for p, stem in enumerate(DAY):
        for i, crop in enumerate(random_crops(photo(samples, stem), per_photo, size, rng)):
            name = f"p{p}_{i:03d}.png"
            write_image(dir_a / name, crop)
            write_image(dir_b / name, known_transform(crop))
    return dir_a, dir_b


def make_domain_folder(folder: Path, samples: Path, stems: tuple[str, ...], per_photo: int = 12,
                       size: int = 80, seed: int = 0) -> Path:
    """``folder`` with random crops of the given photos."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for p, stem in enumerate(stems):
        for i, crop in enumerate(random_crops(photo(samples, stem), per_photo, size, rng)):
            write_image(folder / f"p{p}_{i:03d}.png", crop)
    return folder


def clip_frames(samples: Path, count: int = 16, width: int = 96, name: str = "pose2sim_singleperson_cam01.mp4"
                ) -> list[np.ndarray]:
    """The first ``count`` frames of a real sample clip, downscaled to ``width`` (even height)."""
    frames = []
    with av.open(str(samples / name)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            h, w = image.shape[:2]
            height = round(h * width / w) // 2 * 2
            frames.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
            if len(frames) == count:
                break
    return frames


def first_and_last_mean(stats_path: Path, key: str, window: int = 3) -> tuple[float, float]:
    """Mean of ``key`` over the first and the last ``window`` records of a stats.jsonl that have it
    (to check that a loss falls)."""
    values = []
    for line in Path(stats_path).read_text().splitlines():
        record = json.loads(line)
        losses = record.get("losses", record)
        if key in losses:
            values.append(float(losses[key]))
    if len(values) < 2 * window:
        raise ValueError(f"{stats_path} has {len(values)} records of {key!r}; need {2 * window}")
    return sum(values[:window]) / window, sum(values[-window:]) / window

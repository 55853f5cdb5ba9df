"""Aligned night/day crops of the Earth for night -> day translation and retrieval experiments.

The pair in ../shared/samples/daynight (``earth_night_west.jpg``, ``earth_day_west.jpg``: NASA city
lights vs Blue Marble daylight, pixel-aligned, equirectangular, 1536x1024 covering longitudes -180
to +90) is cut into::

    OUT/train/night/r03_c05.png ...  TRAIN x TRAIN crops of the western three quarters of the image
    OUT/train/day/r03_c05.png ...    (longitudes -180 to +22.5) that show city lights, the same places
                                     under the same names: pairs for pix2pix, two unpaired domains for
                                     CycleGAN / ToDayGAN
    OUT/heldout/night/*.png          the queries: EVAL x EVAL crops of the eastern quarter (longitudes
                                     +22.5 to +90, never seen in training) that show city lights
                                     (an all-black night crop cannot be localised by any method)
    OUT/heldout/day/*.png            the database: the day crop of every grid place of the eastern
                                     quarter; a query matches the day crop of its own name
    OUT/heldout/nearby.csv           ground truth with a tolerance: each query with the day crops of
                                     its own and the 8 neighbouring grid places (centres at most one
                                     grid step, 32 px = 5.6 degrees, away in each direction), for
                                     evaluate-retrieval --ground-truth
    OUT/night_pan.mp4                a night video panning over the eastern quarter

Usage: python samples/earth_crops.py [DAYNIGHT_DIR] OUT [--train-size 72] [--eval-size 64]
(DAYNIGHT_DIR defaults to ../shared/samples/daynight beside the checkout). The training crops are
72 px so that the tiny presets (72 px loaded, random 64 px crops) see them at the held-out crops'
scale. Training keeps lit places only, like the queries: most of the map is dark ocean, and a
model trained mostly on it learns to paint every night crop as sea.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a source checkout without installing

from vid2vid_app.imaging import read_image, write_image  # noqa: E402
from vid2vid_app.video import write_video  # noqa: E402

DEFAULT_DAYNIGHT = ROOT.parent / "shared" / "samples" / "daynight"
NIGHT, DAY = "earth_night_west.jpg", "earth_day_west.jpg"
HELD_OUT_FRACTION = 0.25  # the eastern quarter of the image
LIT_LEVEL = 40  # a night pixel counts as lit when its brightest channel exceeds this (0-255)
MIN_LIT_SHARE = 0.01  # a query crop needs at least this share of lit pixels


@dataclass(frozen=True)
class Split:
    """Column ranges [start, stop) of the training region and the held-out region."""

    train: tuple[int, int]
    heldout: tuple[int, int]


def load_pair(daynight: Path) -> tuple[np.ndarray, np.ndarray]:
    """The night and day images (uint8 HWC RGB, same size)."""
    night, day = read_image(daynight / NIGHT), read_image(daynight / DAY)
    if night.shape != day.shape:
        raise SystemExit(f"{daynight}: {NIGHT} is {night.shape[1]}x{night.shape[0]} but {DAY} is "
                         f"{day.shape[1]}x{day.shape[0]}; the pair must be pixel-aligned.")
    return night, day


def split_columns(width: int) -> Split:
    """Western three quarters for training, the eastern quarter held out."""
    cut = round(width * (1 - HELD_OUT_FRACTION))
    return Split(train=(0, cut), heldout=(cut, width))


def grid(height: int, columns: tuple[int, int], size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of ``size`` crops every ``stride`` pixels inside ``columns``."""
    x0, x1 = columns
    return [(y, x) for y in range(0, height - size + 1, stride) for x in range(x0, x1 - size + 1, stride)]


def lit_share(crop: np.ndarray) -> float:
    """Share of a night crop's pixels whose brightest channel exceeds :data:`LIT_LEVEL`."""
    return float((crop.max(axis=2) > LIT_LEVEL).mean())


def lit_places(night: np.ndarray, corners: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """The corners whose ``size`` night crop has at least :data:`MIN_LIT_SHARE` lit pixels."""
    return [(y, x) for y, x in corners if lit_share(night[y : y + size, x : x + size]) >= MIN_LIT_SHARE]


def crop_name(y: int, x: int, stride: int) -> str:
    return f"r{y // stride:02d}_c{x // stride:02d}"


def write_crops(night: np.ndarray, day: np.ndarray, corners: list[tuple[int, int]], size: int, stride: int,
                night_dir: Path | None, day_dir: Path | None) -> int:
    """Write the night and/or day crop at each corner under the same name; returns how many."""
    for folder in (night_dir, day_dir):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    for y, x in corners:
        name = crop_name(y, x, stride) + ".png"
        if night_dir is not None:
            write_image(night_dir / name, night[y : y + size, x : x + size])
        if day_dir is not None:
            write_image(day_dir / name, day[y : y + size, x : x + size])
    return len(corners)


def night_pan(night: np.ndarray, columns: tuple[int, int], width: int = 160, height: int = 96,
              frames: int = 48) -> list[np.ndarray]:
    """A window of ``width`` x ``height`` moving diagonally over the held-out night region."""
    x0, x1 = columns
    h = night.shape[0]
    xs = np.linspace(x0, x1 - width, frames).round().astype(int)
    ys = np.linspace(h * 0.2, h * 0.55 - height, frames).round().astype(int)
    return [np.ascontiguousarray(night[y : y + height, x : x + width]) for y, x in zip(ys, xs, strict=True)]


def write_nearby(path: Path, queries: list[tuple[int, int]], places: list[tuple[int, int]], stride: int) -> None:
    """CSV rows ``query,match,...``: each query and the places within one ``stride`` in y and x."""
    lines = []
    for qy, qx in queries:
        near = [crop_name(y, x, stride) + ".png" for y, x in places if abs(y - qy) <= stride and abs(x - qx) <= stride]
        lines.append(",".join([crop_name(qy, qx, stride) + ".png", *near]))
    path.write_text("query,matches\n" + "\n".join(lines) + "\n")


def make_earth_crops(daynight: Path, out: Path, train_size: int = 72, train_stride: int = 18,
                     eval_size: int = 64, eval_stride: int = 32, video: bool = True) -> dict[str, int]:
    """Write the folders described in the module docstring under ``out``; returns their sizes."""
    night, day = load_pair(daynight)
    split = split_columns(night.shape[1])
    train = lit_places(night, grid(night.shape[0], split.train, train_size, train_stride), train_size)
    places = grid(night.shape[0], split.heldout, eval_size, eval_stride)
    queries = lit_places(night, places, eval_size)
    sizes = {
        "train": write_crops(night, day, train, train_size, train_stride, out / "train" / "night",
                             out / "train" / "day"),
        "queries": write_crops(night, day, queries, eval_size, eval_stride, out / "heldout" / "night", None),
        "database": write_crops(night, day, places, eval_size, eval_stride, None, out / "heldout" / "day"),
    }
    write_nearby(out / "heldout" / "nearby.csv", queries, places, eval_stride)
    if video:
        write_video(out / "night_pan.mp4", night_pan(night, split.heldout), fps=12)
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="[DAYNIGHT_DIR] OUT")
    parser.add_argument("--train-size", type=int, default=72)
    parser.add_argument("--train-stride", type=int, default=18)
    parser.add_argument("--eval-size", type=int, default=64)
    parser.add_argument("--eval-stride", type=int, default=32)
    args = parser.parse_args(argv)
    if len(args.paths) > 2:
        parser.error("give at most DAYNIGHT_DIR and OUT")
    daynight = Path(args.paths[0]) if len(args.paths) == 2 else DEFAULT_DAYNIGHT
    out = Path(args.paths[-1])
    sizes = make_earth_crops(daynight, out, args.train_size, args.train_stride, args.eval_size, args.eval_stride)
    print(f"wrote {sizes['train']} training pairs to {out / 'train'}, {sizes['queries']} night queries and "
          f"{sizes['database']} day database crops to {out / 'heldout'}, and {out / 'night_pan.mp4'}")


if __name__ == "__main__":
    main()

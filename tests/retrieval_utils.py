"""Real night/day data for the retrieval and ToDayGAN tests: aligned crops of the Earth pair in
../shared/samples/daynight (NASA city lights vs Blue Marble), cut by samples/earth_crops.py, the
same helper the README walk-through and bench/retrieval_bench.py use."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def earth_crops_module():
    """samples/earth_crops.py as a module (it is a script, not part of the package)."""
    if "earth_crops" in sys.modules:
        return sys.modules["earth_crops"]
    spec = importlib.util.spec_from_file_location("earth_crops", REPO / "samples" / "earth_crops.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["earth_crops"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def make_earth(root: Path, shared_samples: Path, *, train_stride: int = 72, eval_stride: int = 64,
               video: bool = False) -> Path:
    """``root`` with train/{night,day} (72 px pairs of the western part), heldout/night (lit 64 px
    queries of the eastern quarter), heldout/day (64 px database) and optionally night_pan.mp4.
    Strides larger than the defaults keep the sets small for tests."""
    module = earth_crops_module()
    module.make_earth_crops(shared_samples / "daynight", root, train_size=72, train_stride=train_stride,
                            eval_size=64, eval_stride=eval_stride, video=video)
    return root


def subset(src: Path, dst: Path, names: list[str]) -> Path:
    """``dst`` holding copies of the named files of ``src``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(src / name, dst / name)
    return dst

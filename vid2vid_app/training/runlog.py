"""What a training run writes into its folder (rank 0 only).

    run_dir/
      config.json        {"app_config": ..., "train": {stage: TrainConfig dict}}
      log.txt            human-readable, one timestamped line per event
      stats.jsonl        one JSON object per line:
                           {"stage", "step", "epoch", "lr", "imgs_per_s", "losses": {name: mean since
                            the previous record}}  at every log step,
                           {"stage", "step", "val": {metric: value}}  at checkpoints with validation
      samples/step_000100.png      input | output | target (other stages: <stage>_step_000100.png)
      checkpoints/<stage>_latest.pt (+ <stage>_latest.prev.pt, the one before)
      tensorboard/       only with TrainConfig.tensorboard and the tensorboard package installed
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..fileio import write_bytes_atomic, write_json_atomic
from ..imaging import grid, to_uint8, write_image

logger = logging.getLogger("vid2vid_app.training")


class RunLog:
    """Writes log.txt, stats.jsonl, samples and optional TensorBoard scalars for one stage.

    With ``enabled=False`` (ranks other than 0) every method does nothing.
    """

    def __init__(self, run_dir: Path, stage: str, enabled: bool = True, tensorboard: bool = False):
        self.run_dir = Path(run_dir)
        self.stage = stage
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.warning("TensorBoard logging was asked for but the tensorboard package is not "
                             "installed (pip install 'vid2vid_app[tensorboard]'); continuing without it.")
            else:
                self._tb = SummaryWriter(str(self.run_dir / "tensorboard" / stage))

    # -- text log ---------------------------------------------------------------------------------
    def info(self, message: str) -> None:
        """Append a line to log.txt (and the ``vid2vid_app.training`` logger at INFO)."""
        if not self.enabled:
            return
        logger.info(message)
        self._append("log.txt", f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{self.stage}] {message}\n")

    def warning(self, message: str) -> None:
        """Append a warning to log.txt and emit it on the logger (shown on stderr by default)."""
        if not self.enabled:
            return
        logger.warning(message)
        self._append("log.txt", f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{self.stage}] WARNING {message}\n")

    # -- config and statistics --------------------------------------------------------------------
    def write_config(self, app_config: Mapping[str, Any] | None, train_config: Mapping[str, Any]) -> None:
        """Record the configs in config.json, keeping other stages' entries."""
        if not self.enabled:
            return
        path = self.run_dir / "config.json"
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                data = {}
        if app_config is not None:
            data["app_config"] = dict(app_config)
        data.setdefault("train", {})[self.stage] = dict(train_config)
        write_json_atomic(path, data)

    def stats(self, record: Mapping[str, Any]) -> None:
        """Append one JSON record (the stage is added) to stats.jsonl; scalars go to TensorBoard."""
        if not self.enabled:
            return
        record = {"stage": self.stage, **record}
        self._append("stats.jsonl", json.dumps(record) + "\n")
        if self._tb is not None:
            step = record["step"]
            for group in ("losses", "val"):
                for name, value in (record.get(group) or {}).items():
                    self._tb.add_scalar(f"{group}/{name}", value, step)
            for name in ("lr", "imgs_per_s"):
                if name in record:
                    self._tb.add_scalar(name, record[name], step)

    def truncate_stats(self, step: int) -> None:
        """Drop this stage's records after ``step`` (written after the checkpoint a run resumes from)."""
        path = self.run_dir / "stats.jsonl"
        if not self.enabled or not path.is_file():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if rec.get("stage") == self.stage and rec.get("step", 0) > step:
                continue
            kept.append(line + "\n")
        write_bytes_atomic(path, "".join(kept).encode())

    # -- images -----------------------------------------------------------------------------------
    def sample(self, step: int, images: list[torch.Tensor]) -> Path | None:
        """Save the first item of each (N, C, H, W) tensor in [-1, 1] side by side as a PNG."""
        if not self.enabled:
            return None
        row = [_as_rgb(to_uint8(img[:1].float())[0]) for img in images]
        prefix = "" if self.stage == "main" else f"{self.stage}_"
        path = self.run_dir / "samples" / f"{prefix}step_{step:06d}.png"
        write_image(path, grid([row]))
        return path

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _append(self, name: str, text: str) -> None:
        with open(self.run_dir / name, "a", encoding="utf-8") as f:
            f.write(text)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, C) with any C -> (H, W, 3): grey repeated, 2 channels padded, >3 truncated."""
    c = image.shape[2]
    if c == 3:
        return image
    if c == 1:
        return np.repeat(image, 3, axis=2)
    if c == 2:
        return np.concatenate([image, np.zeros_like(image[..., :1])], axis=2)
    return np.ascontiguousarray(image[..., :3])

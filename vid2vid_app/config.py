"""Dataclass configs: JSON round trip that tolerates old and new fields.

Every subsystem defines its own typed dataclass config. They are saved as JSON in run folders and
inside checkpoints, so a model can be rebuilt from its checkpoint alone. Loading fills fields that
an older file lacks with their defaults and ignores keys a newer version no longer knows, so old
checkpoints keep loading when a config grows.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass (possibly nested) as a plain JSON-able dict; tuples become lists."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[C], data: dict[str, Any] | None) -> C:
    """Build ``cls`` from ``data``: unknown keys dropped, missing keys take defaults, nested
    dataclass fields rebuilt recursively, lists turned back into tuples where the field is a tuple."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value = data[field.name]
        ftype = hints.get(field.name, field.type)
        kwargs[field.name] = _coerce(ftype, value)
    return cls(**kwargs)


def _coerce(ftype: Any, value: Any) -> Any:
    origin = typing.get_origin(ftype)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ftype) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return _coerce(args[0], value)
        return value
    if dataclasses.is_dataclass(ftype) and isinstance(value, dict):
        return from_dict(ftype, value)
    if (origin is tuple or ftype is tuple) and isinstance(value, list):
        return tuple(value)
    return value


# Fixed lists that command options offer as choices. They live here, in a module without heavy
# imports, so that `--help` and option parsing need neither PyAV nor the pose package (OpenCV).

#: Temporal smoothing of keypoint sequences (vid2vid_app.pose.smoothing).
SMOOTHING_METHODS = ("one_euro", "median")

# x264's speed presets, fastest first (vid2vid_app.video.writer). "medium" is x264's default;
# "veryfast" encodes about 2.3x faster at the same CRF (measured on the bundled 360x640 clip: 185 vs
# 79 frames/s on 2 cores, 38.9 vs 40.8 dB against the input), which matters when a GPU generates
# faster than x264 encodes.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def save_json(config: Any, path: str | Path) -> None:
    """Save a dataclass config as JSON (atomically)."""
    from .fileio import write_json_atomic

    write_json_atomic(path, to_dict(config))


def load_json(cls: type[C], path: str | Path) -> C:
    """Load a dataclass config saved by :func:`save_json`."""
    return from_dict(cls, json.loads(Path(path).read_text()))

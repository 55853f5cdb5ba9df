"""Dataclass configs: JSON round trip that tolerates old and new fields.

Every subsystem defines its own typed dataclass config. They are saved as JSON in run folders and
inside checkpoints, so a model can be rebuilt from its checkpoint alone. Loading fills fields that
an older file lacks with their defaults and ignores keys a newer version no longer knows, so old
checkpoints keep loading when a config grows. A config whose layout changed defines
``upgrade_dict(data) -> data`` (a static method) that turns an older dict into the current layout;
:func:`from_dict` applies it first.

:class:`TrainSettings` are the run settings of the one training loop that both jobs share (the loop's
``TrainConfig`` adds the length of a stage to them); the job configs hold them in a field ``train``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import UserError

C = TypeVar("C")


@dataclass
class TrainSettings:
    """How a training run goes, whatever the job and stage: optimizer, data loading, device and
    precision, logging. Saved inside each job's config (its ``train`` field)."""

    batch_size: int = 1               # per process (global batch = batch_size * world size)
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    num_workers: int = 0              # DataLoader worker processes
    seed: int = 0
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    amp: bool = True                  # CUDA mixed precision (bf16 where supported, else fp16 + scaler)
    # CPU mixed precision: bf16 autocast (True) or fp32 (False); None decides by the CPU when the run
    # is set up (on where it has native bf16, see resolve_cpu_bf16), and the run
    # keeps the decided value.
    cpu_bf16: bool | None = None
    channels_last: bool = True        # on CUDA (on CPU it measured 10-20% slower for these networks)
    log_every: int = 10               # steps between stats.jsonl records
    sample_every: int = 100           # steps between sample grids (0: never)
    checkpoint_every: int = 500       # steps between checkpoints (and validation); always at the end
    tensorboard: bool = False
    sync_bn: bool = False             # SyncBatchNorm under DDP
    deterministic: bool = False       # torch.use_deterministic_algorithms for bit-exact reruns
    shuffle: bool = True
    drop_last: bool = True            # equal batch shapes; the short tail batch of an epoch is skipped
    reuse_cpu_memory: bool = True     # CPU: keep freed memory for reuse (device.reuse_freed_memory)
    compile: bool = False             # torch.compile the trainable networks (first steps compile for minutes)

    def validate(self) -> None:
        """Raise :class:`UserError` for impossible settings."""
        checks = [
            (self.batch_size >= 1, f"batch size must be at least 1 (got {self.batch_size})"),
            (self.lr > 0 and math.isfinite(self.lr), f"learning rate must be positive (got {self.lr})"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "Adam betas must be in [0, 1)"),
            (self.num_workers >= 0, f"num_workers must be 0 or more (got {self.num_workers})"),
            (self.log_every >= 1, f"log_every must be at least 1 (got {self.log_every})"),
            (self.sample_every >= 0, f"sample_every must be 0 or more (got {self.sample_every})"),
            (self.checkpoint_every >= 1, f"checkpoint_every must be at least 1 (got {self.checkpoint_every})"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"invalid training settings: {message}.")


def nest_fields(data: Mapping[str, Any], name: str, cls: type) -> dict[str, Any]:
    """An older flat config dict in the nested layout: its top-level keys that are fields of the
    dataclass ``cls`` move into ``data[name]`` (values already there win). Other keys stay."""
    names = {f.name for f in dataclasses.fields(cls)}
    out = {key: value for key, value in data.items() if key not in names}
    flat = {key: value for key, value in data.items() if key in names}
    if flat:
        nested = data.get(name)
        out[name] = {**flat, **(nested if isinstance(nested, Mapping) else {})}
    return out


def upgrade_run_settings(data: Mapping[str, Any], name: str = "train") -> dict[str, Any]:
    """A job config dict saved by an older version, with its run settings in today's layout: flat
    ones nested under ``name`` (:func:`nest_fields`), and ``cpu_bf16`` False where the file names
    none. Such a file comes from before the CPU precision was decided per machine, when CPU
    training ran in fp32 unless asked otherwise, so its run resumes in the precision it had."""
    out = nest_fields(data, name, TrainSettings)
    settings = out.get(name)
    if isinstance(settings, Mapping) and "cpu_bf16" not in settings:
        out[name] = {**settings, "cpu_bf16": False}
    return out


def replace_given(config: C, changes: Mapping[str, Any] | None) -> C:
    """A copy of the dataclass ``config`` with ``changes`` applied; ``None`` values mean "keep".
    TypeError for a name that is not a field (a programming error, not a user's)."""
    known = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(changes or {}) - known)
    if unknown:
        raise TypeError(f"{type(config).__name__} has no field {', '.join(map(repr, unknown))}")
    return dataclasses.replace(config, **{k: v for k, v in (changes or {}).items() if v is not None})


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass (possibly nested) as a plain JSON-able dict; tuples become lists."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def changed_fields(old: Any, new: Any) -> list[str]:
    """Names of the fields in which the dataclasses ``old`` and ``new`` (of one type) differ; inside
    a nested dataclass field the names are dotted (``"train.lr"``)."""
    names = []
    for f in dataclasses.fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if dataclasses.is_dataclass(a) and type(a) is type(b):
            names += [f"{f.name}.{name}" for name in changed_fields(a, b)]
        elif a != b:
            names.append(f.name)
    return names


def from_dict(cls: type[C], data: dict[str, Any] | None) -> C:
    """Build ``cls`` from ``data``: an older layout upgraded first (``cls.upgrade_dict``), unknown
    keys dropped, missing keys take defaults (inside a nested dataclass: those of the field's default
    value), nested dataclass fields rebuilt recursively, lists turned back into tuples where the
    field is a tuple."""
    data = dict(data or {})
    upgrade = getattr(cls, "upgrade_dict", None)
    if upgrade is not None:
        data = upgrade(data)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value = data[field.name]
        ftype = hints.get(field.name, field.type)
        if (dataclasses.is_dataclass(ftype) and isinstance(value, dict)
                and field.default_factory is not dataclasses.MISSING):
            # e.g. a job's own logging intervals, not the generic class defaults
            value = {**to_dict(field.default_factory()), **value}
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


# The CPU feature that TrainSettings.cpu_bf16=None decides by. Here rather than in device.py, which
# imports torch: presets are resolved while options are parsed (--help), where torch must not load.

def cpu_flags_have_bf16(flags: str) -> bool:
    """Whether a CPU feature list (the ``flags`` line of Linux's /proc/cpuinfo) names native bf16
    arithmetic: AVX512-BF16 (``avx512_bf16``) or AMX-BF16 (``amx_bf16``).

    Plain AVX-512 or AVX2 is not enough: there oneDNN still runs bf16, but emulated by converting
    to and from fp32, which brings no speed.
    """
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16), which is
    where bf16 autocast makes CPU training faster.

    Linux: the kernel's feature flags in /proc/cpuinfo (what a virtual machine's guest may really
    use). Elsewhere: PyTorch's own CPU probe where this version has it; otherwise False. Not
    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``: that is also True on AVX-512 CPUs without
    bf16 instructions, where oneDNN emulates bf16. Cached: the CPU does not change.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return cpu_flags_have_bf16(line.split(":", 1)[1])
    except OSError:
        pass
    import torch  # only here: this module stays light enough for option parsing

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private; absent in some versions
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def resolve_cpu_bf16(cpu_bf16: bool | None) -> bool:
    """The setting ``cpu_bf16`` decided: True or False as given; None (automatic) means on where
    the CPU has native bf16 (:func:`cpu_has_native_bf16`)."""
    return cpu_has_native_bf16() if cpu_bf16 is None else bool(cpu_bf16)


# Fixed lists that command options offer as choices. They live here, in a module without heavy
# imports, so that `--help` and option parsing need neither PyAV nor the pose package (OpenCV).

#: Temporal smoothing of keypoint sequences (vid2vid_app.pose.smoothing).
SMOOTHING_METHODS = ("one_euro", "median")

#: Landmark sets of the pose detector (vid2vid_app.pose.parts): body, face-70 and hands, or body only.
LANDMARK_SETS = ("holistic", "body")

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

"""The translation model file (``RUNS/NAME/model.pt``) and how ``--model`` is resolved.

A model file is a generator export of :mod:`vid2vid_app.training.checkpoint` (``kind``
"generator", loadable with ``torch.load(weights_only=True)``) whose ``meta`` says what it is::

    meta = {"app": "translate", "mode": "pix2pix" | "cyclegan" | "todaygan",
            "direction": "AtoB" | "BtoA",              # the default direction at inference
            "directions": {"main": "AtoB", "G_B": "BtoA"},   # which stored generator runs which way
            "train_size": crop size in pixels, "config": TranslateConfig as a dict, ...}

pix2pix stores its one generator (the trained direction); CycleGAN and ToDayGAN store G_A (A->B) as
the main generator and G_B (B->A) as an extra one, so both directions run from the one file.

``--model`` may also name a generator checkpoint of pytorch-CycleGAN-and-pix2pix or pix2pixHD
(a bare state dict such as ``latest_net_G.pth`` / ``latest_net_G_A.pth``; the architecture is
inferred by :func:`vid2vid_app.models.load_reference_generator`, overridable by keyword arguments)
or any other generator export of this application with RGB input and output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import runs
from ..errors import UserError
from ..runs import ModelRecord

APP = "translate"
DIRECTIONS = ("AtoB", "BtoA")


@dataclass
class TranslateModel:
    """Loaded generators by direction ("AtoB" / "BtoA"), eval mode, on ``device``."""

    mode: str  # "pix2pix", "cyclegan", "todaygan", or "reference" (a foreign single-generator checkpoint)
    generators: dict[str, nn.Module]
    direction: str  # the default direction
    path: Path
    train_size: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def arch(self) -> str:
        g = next(iter(self.generators.values()))
        return str(getattr(g, "config", {}).get("arch", type(g).__name__))

    @property
    def files(self) -> list[Path]:
        """The files the model was read from: its file, and for a CycleGAN reference checkpoint
        the sibling generator (``*_net_G_A.pth`` / ``*_net_G_B.pth``) too."""
        if not _CYCLEGAN_NAME.search(self.path.name):
            return [self.path]
        return [self.path.with_name(_CYCLEGAN_NAME.sub(f"net_G_{side}.pth", self.path.name)) for side in "AB"]

    def generator(self, direction: str | None = None) -> nn.Module:
        """The generator for ``direction`` (None: the model's default). UserError for a direction
        this model cannot run."""
        direction = direction or self.direction
        if direction not in DIRECTIONS:
            raise UserError(f"unknown direction {direction!r}; use AtoB or BtoA.")
        if direction in self.generators:
            return self.generators[direction]
        have = ", ".join(self.generators)
        if self.mode == "pix2pix":
            raise UserError(f"{self.path} is a pix2pix model, which translates one way only ({have}); "
                            f"it cannot run {direction}.")
        raise UserError(f"{self.path} holds only the {have} generator; it cannot run {direction}.")


def save_model(path: str | Path, mode: str, generators: dict[str, nn.Module], direction: str,
               train_size: int | None, config: dict[str, Any], meta: dict[str, Any] | None = None) -> Path:
    """Write the model file atomically. ``generators`` maps a direction to a generator built by
    ``build_generator``: one entry for pix2pix, "AtoB" (G_A) and "BtoA" (G_B) for CycleGAN."""
    from ..training.checkpoint import export_generator

    order = sorted(generators, key=DIRECTIONS.index)
    main, extra = order[0], order[1:]
    directions = {"main": main, **{f"G_{'B' if d == 'BtoA' else 'A'}": d for d in extra}}
    info = {**(meta or {}), "app": APP, "mode": mode, "direction": direction, "directions": directions,
            "train_size": train_size, "config": config}
    extras = {name: generators[d] for name, d in directions.items() if name != "main"}
    return export_generator(path, generators[main], info, extra_generators=extras)


def _load_file(path: Path) -> Any:
    """torch.load with weights_only; memory-mapped when the format allows (weights read lazily)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - zip/pickle errors of every kind mean "not a model file"
        try:  # files from torch < 1.6 (legacy format) cannot be memory-mapped
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"{path} is not a readable model or checkpoint file ({type(exc).__name__}).") from None


def _is_dance_model(data: Any) -> bool:
    """A `dance train` model file: the 0.1 format, or a generator export whose meta says "dance"."""
    if not isinstance(data, dict):
        return False
    meta = data.get("meta")
    return data.get("kind") == "vid2vid_app.dance_model" or (
        data.get("kind") == "generator" and isinstance(meta, dict) and meta.get("app") == "dance")


def is_translate_model(data: Any) -> bool:
    return (isinstance(data, dict) and data.get("kind") == "generator"
            and isinstance(data.get("meta"), dict) and data["meta"].get("app") == APP)


def load_model(path: str | Path, device: str | torch.device = "cpu", *, arch: str | None = None,
               **reference_kw) -> TranslateModel:
    """Load one of our model files, another RGB generator export, or a reference checkpoint.

    ``arch`` and ``reference_kw`` (ngf, norm, n_blocks, ...) override what is inferred from a
    reference checkpoint; they are ignored for our own files, which carry their configuration.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    data = _load_file(path)
    if _is_dance_model(data):
        raise UserError(f"{path} is a motion-transfer model from `dance train`; use it with `dance transfer`.")
    if isinstance(data, dict) and data.get("kind") == "generator":
        model = _from_export(data, path)
    elif isinstance(data, dict) and "format_version" in data:
        raise UserError(f"{path} is a training checkpoint ({data.get('kind', 'unknown kind')}), not a model; "
                        "use the run's model.pt (written when training finishes).")
    elif isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        model = _from_reference(path, data, arch, reference_kw)
    else:
        raise UserError(f"{path} is neither a translate-video model nor a generator checkpoint.")
    for direction, g in model.generators.items():
        channels = (getattr(g, "config", None) or {}).get("in_channels", 3)
        if channels != 3:
            raise UserError(f"{path}: the {direction} generator takes {channels} input channels; "
                            "translate-video needs a generator of RGB images.")
        g.to(device).eval().requires_grad_(False)
    return model


def _from_export(data: dict[str, Any], path: Path) -> TranslateModel:
    from ..training.checkpoint import FORMAT_VERSION, generator_from_payload

    version = data.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{path} has format {version!r}, newer than this vid2vid_app understands; upgrade it.")
    meta = dict(data.get("meta") or {})
    payloads = {"main": {"config": data["generator_config"], "state": data["generator_state"]},
                **(data.get("extra_generators") or {})}
    ours = meta.get("app") == APP
    directions = meta.get("directions") if ours else None
    directions = directions or {"main": meta.get("direction", "AtoB")}
    generators = {direction: generator_from_payload(payloads[name], source=str(path))
                  for name, direction in directions.items() if name in payloads}
    return TranslateModel(mode=meta.get("mode", "pix2pix") if ours else "export", generators=generators,
                          direction=meta.get("direction", directions["main"]), path=path,
                          train_size=meta.get("train_size"), config=meta.get("config") or {}, meta=meta)


_CYCLEGAN_NAME = re.compile(r"net_G_([AB])\.pth$")


def reference_direction(path: Path) -> tuple[str, str]:
    """(mode, direction) from a pytorch-CycleGAN-and-pix2pix file name: ``*_net_G_A.pth`` is a
    CycleGAN A->B generator, ``*_net_G_B.pth`` B->A; anything else a one-way (pix2pix-like) model."""
    m = _CYCLEGAN_NAME.search(path.name)
    if m:
        return "cyclegan", "AtoB" if m.group(1) == "A" else "BtoA"
    return "reference", "AtoB"


def _from_reference(path: Path, state: dict[str, torch.Tensor], arch: str | None,
                    kw: dict[str, Any]) -> TranslateModel:
    from ..models import load_reference_generator

    kw = {k: v for k, v in kw.items() if v is not None}
    g = load_reference_generator(path, arch=arch, **kw)
    mode, direction = reference_direction(path)
    generators = {direction: g}
    if mode == "cyclegan":
        # The other direction lives in the sibling file (G_A <-> G_B) of the same training run.
        other = "BtoA" if direction == "AtoB" else "AtoB"
        sibling = path.with_name(_CYCLEGAN_NAME.sub(f"net_G_{'B' if other == 'BtoA' else 'A'}.pth", path.name))
        if sibling.is_file():
            generators[other] = load_reference_generator(sibling, arch=arch, **kw)
    return TranslateModel(mode=mode, generators=generators, direction=direction, path=path,
                          meta={"reference": True})


# ----------------------------------------------------------------------------------------------
# Names, runs folder, listing


def describe_model(path: Path) -> dict[str, Any] | None:
    """What ``translate-video list`` shows of one model file (read memory-mapped: weights are not
    loaded): mode, directions, train_size, arch. None when the file is not a translate model."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001
        return None
    if not is_translate_model(data):
        return None
    meta = data["meta"]
    directions = tuple(sorted((meta.get("directions") or {"main": meta.get("direction", "AtoB")}).values(),
                              key=lambda d: DIRECTIONS.index(d) if d in DIRECTIONS else 9))
    arch = (data.get("generator_config") or {}).get("arch", "?")
    return {"mode": str(meta.get("mode", "?")), "directions": directions, "train_size": meta.get("train_size"),
            "arch": str(arch)}


def list_models(runs_dir: str | Path | None) -> list[ModelRecord]:
    """Translate models in the runs folder (other runs, e.g. dance models, skipped); ``details``
    as :func:`describe_model` gives them."""
    return runs.list_models(runs_dir, "translate", describe_model)


def resolve_model_path(name_or_path: str | os.PathLike, runs_dir: str | Path | None) -> Path:
    """The translate model file ``--model`` means (see :func:`vid2vid_app.runs.resolve_model_path`)."""
    return runs.resolve_model_path(name_or_path, runs_dir, "translate", describe_model)

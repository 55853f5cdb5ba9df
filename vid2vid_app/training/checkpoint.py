"""Training checkpoints and small generator-only exports.

A checkpoint is one dict of plain data (tensors, dicts, lists, strings, numbers), written through a
temp file + rename and read back with ``torch.load(weights_only=True)``: loading a checkpoint never
runs code from the file. Every file written here carries ``format_version`` and ``kind`` so foreign
files are refused with a clear message.

Training checkpoint (written by the training loop)::

    {"format_version", "kind": "checkpoint", "stage", "step", "epoch", "batch_in_epoch",
     "networks": {name: state_dict}, "optimizers": {name: state_dict}, "scaler": state_dict | None,
     "objective": extra objective state (e.g. image pools), "rng": [per-rank RNG states],
     "generator_configs": {name: config}, "train_config": dict, "app_config": dict}

Generator export (what inference loads)::

    {"format_version", "kind": "generator", "generator_config": G.config,
     "generator_state": state_dict, "meta": JSON-able dict,
     "extra_generators": {name: {"config", "state"}},   # e.g. CycleGAN's second generator
     "tensors": {name: tensor}}   # optional: data inference needs besides weights (a plate image)

``meta`` holds JSON-able data only (configs, statistics); tensors belong in the state dicts or in
``tensors`` (absent from files that have none, so older readers see the layout they know).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..fileio import atomic_path
from .modules import unwrap

FORMAT_VERSION = 1
"""Bumped when the layout changes incompatibly; older versions keep loading where possible."""


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (plain data) to ``path`` atomically; ``format_version`` and ``kind`` are
    added when missing. Returns the path."""
    return _write(Path(path), state, keep_previous=False)


def save_rotating(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Save ``state`` to ``path``, keeping the file it replaces as ``<stem>.prev<suffix>``.

    The new file is written completely before the old one moves aside, so a crash at any moment
    leaves at least one complete checkpoint (see :func:`find_checkpoint`).
    """
    return _write(Path(path), state, keep_previous=True)


def _write(path: Path, state: Mapping[str, Any], keep_previous: bool) -> Path:
    data = dict(state)
    data.setdefault("format_version", FORMAT_VERSION)
    data.setdefault("kind", "checkpoint")
    # A failure while writing removes the temp file; the destination only ever holds whole files.
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
    return path


def previous_path(path: str | os.PathLike) -> Path:
    """Where :func:`save_rotating` keeps the checkpoint before ``path``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def find_checkpoint(path: str | os.PathLike) -> Path | None:
    """``path`` if it exists, else the previous checkpoint kept beside it, else None."""
    path = Path(path)
    for candidate in (path, previous_path(path)):
        if candidate.is_file():
            return candidate
    return None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a file written by this module with ``weights_only=True``.

    Raises :class:`UserError` when the file is missing, unreadable/corrupt, not written by this
    application, or from a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist.")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError,
            AttributeError, TypeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable checkpoint (corrupt, truncated or not a torch "
                        f"file: {reason[:200]}).") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise UserError(f"{path} is not a vid2vid_app checkpoint (no format_version); for "
                        "pytorch-CycleGAN-and-pix2pix or pix2pixHD generators use the reference import.")
    version = data["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{path} has checkpoint format {version!r}, newer than this version of "
                        f"vid2vid_app understands ({FORMAT_VERSION}); upgrade vid2vid_app.")
    return data


def generator_payload(generator: nn.Module) -> dict[str, Any]:
    """``{"config": G.config, "state": state_dict}`` for a generator built by ``build_generator``.

    DDP / torch.compile wrappers are unwrapped; tensors are copied to the CPU.
    """
    generator = unwrap(generator)
    config = getattr(generator, "config", None)
    if not isinstance(config, Mapping) or "arch" not in config:
        raise ValueError("the generator has no .config with an 'arch' (build it with build_generator)")
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    return {"config": dict(config), "state": state}


def generator_from_payload(payload: Mapping[str, Any], device: str | torch.device = "cpu",
                           source: str = "checkpoint") -> nn.Module:
    """Rebuild a generator from :func:`generator_payload` data; returned in eval mode on ``device``.

    ``source`` names the file in error messages.
    """
    from ..models import build_generator

    config = dict(payload["config"])
    try:
        generator = build_generator(**config)
    except (TypeError, ValueError, KeyError) as exc:
        raise UserError(f"{source} describes a generator this version cannot build ({exc}).") from None
    try:
        generator.load_state_dict(payload["state"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{source} does not match its generator config: "
                        f"{' '.join(first[:3])[:300]}") from None
    return generator.to(device).eval()


def export_generator(path: str | os.PathLike, generator: nn.Module, meta: Mapping[str, Any] | None = None,
                     extra_generators: Mapping[str, nn.Module] | None = None,
                     tensors: Mapping[str, torch.Tensor] | None = None) -> Path:
    """Write the small file inference needs: the generator's config and weights plus ``meta``.

    ``extra_generators`` adds more generators by name (a CycleGAN export stores G_A as the main
    generator and ``{"G_B": G_B}`` as an extra one); ``tensors`` adds named tensors (copied to the
    CPU). Written atomically.
    """
    main = generator_payload(generator)
    state = {
        "format_version": FORMAT_VERSION,
        "kind": "generator",
        "generator_config": main["config"],
        "generator_state": main["state"],
        "meta": dict(meta or {}),
        "extra_generators": {name: generator_payload(g) for name, g in (extra_generators or {}).items()},
    }
    if tensors:
        state["tensors"] = {name: t.detach().cpu().clone() for name, t in tensors.items()}
    return save_checkpoint(path, state)


def load_generator_export(path: str | os.PathLike, device: str | torch.device = "cpu",
                          name: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a file written by :func:`export_generator`: ``(generator in eval mode, meta)``.

    ``name`` picks one of the extra generators instead of the main one.
    """
    data = load_checkpoint(path, map_location="cpu")
    if data.get("kind") != "generator" or "generator_state" not in data:
        raise UserError(f"{path} is a {data.get('kind', 'different')} file, not a generator export.")
    if name is None:
        payload = {"config": data["generator_config"], "state": data["generator_state"]}
    else:
        extras = data.get("extra_generators") or {}
        if name not in extras:
            known = ", ".join(sorted(extras)) or "none"
            raise UserError(f"{path} has no generator named {name!r} (extra generators: {known}).")
        payload = extras[name]
    generator = generator_from_payload(payload, device=device, source=str(path))
    return generator, dict(data.get("meta") or {})

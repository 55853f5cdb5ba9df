"""The trained motion-transfer model file: save, find by name, load, render and generate.

A finished ``dance train`` run leaves ONE file, ``RUNS/NAME/model.pt``, holding everything that
transfer needs (a plain dict, loadable with ``torch.load(weights_only=True)``):

- ``generator_config`` / ``generator_state``: the last trained body generator (the local enhancer
  when that stage was trained, else the global generator), rebuilt with ``build_generator``;
- ``face_generator_config`` / ``face_generator_state``: the face residual generator, or ``None``;
- ``config``: the :class:`~vid2vid_app.dance.config.DanceConfig` as a dict;
- ``target_stats``: the target's :class:`~vid2vid_app.pose.normalize.BodyStats` (JSON), in the
  pixel coordinates of the original target video of size ``target_size``;
- ``render_style``: the :class:`~vid2vid_app.pose.render.RenderStyle` used for training;
- ``resolution`` (w, h) of the generator's canvas and ``letterbox``: how target-video pixel
  coordinates map into that canvas (scale, then offset), exactly as the training frames were fitted;
- ``data``: where the run's prepared frames live (relative to the model file) and which frames were
  held out for validation, for ``dance evaluate``;
- the tensor ``plates`` (V, H, W, 3) uint8, only for a person-layer model: the clean background
  plate of each target video at ``resolution``; its generator emits colour + alpha (4 channels)
  and frames are composited over the first plate (:mod:`vid2vid_app.models.person_layer`).
  Files without it are full-frame models, as every file written before the person layer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_dict, to_dict
from ..device import autocast, autocast_dtype, resolve_device
from ..errors import UserError
from ..imaging import Letterbox, crop_to, keypoints_to_canvas, pad_to_multiple
from ..models.person_layer import LAYER_CHANNELS, composite, split_layers
from .config import DanceConfig

APP = "dance"  # meta["app"] of a dance model file
LEGACY_KIND = "vid2vid_app.dance_model"  # the model file of version 0.1 (still read)
LEGACY_FORMAT_VERSION = 1


def letterbox_to_dict(box: Letterbox) -> dict[str, float]:
    return {"scale": box.scale, "x0": box.x0, "y0": box.y0, "content_w": box.content_w,
            "content_h": box.content_h}


def letterbox_from_dict(data: dict[str, Any]) -> Letterbox:
    return Letterbox(float(data["scale"]), int(data["x0"]), int(data["y0"]), int(data["content_w"]),
                     int(data["content_h"]))


def stats_from_json(data: Any):
    from ..pose.normalize import BodyStats

    return BodyStats.from_json(data)


def save_dance_model(path: str | os.PathLike, *, generator: torch.nn.Module,
                     face_generator: torch.nn.Module | None, config: DanceConfig, target_stats,
                     render_style, target_size: tuple[int, int], resolution: tuple[int, int],
                     letterbox: Letterbox, stage: str, data: dict[str, Any] | None = None,
                     plates: np.ndarray | None = None) -> Path:
    """Write the model file: the one generator-export format every trained network uses
    (:func:`vid2vid_app.training.export_generator`), with the face generator as the extra generator
    "face", what transfer needs in ``meta`` and, for a person layer, the ``plates`` (V, H, W, 3)
    uint8 as the tensor "plates". Written atomically; tensors moved to the CPU."""
    from ..training.checkpoint import export_generator

    meta = {
        "app": APP,
        "stage": stage,
        "config": to_dict(config),
        # The stick figures the generator learnt: "holistic" or "body" (files without it: "body").
        "landmarks": config.landmarks,
        "target_stats": target_stats.to_json(),
        "render_style": to_dict(render_style),
        "target_size": [int(target_size[0]), int(target_size[1])],
        "resolution": [int(resolution[0]), int(resolution[1])],
        "letterbox": letterbox_to_dict(letterbox),
        "data": data or {},
    }
    extras = {"face": face_generator} if face_generator is not None else {}
    tensors = {"plates": torch.from_numpy(np.ascontiguousarray(plates, dtype=np.uint8))} if plates is not None else None
    return export_generator(path, generator, meta, extra_generators=extras, tensors=tensors)


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """The model's contents (``weights_only`` load) as one flat dict: ``generator_config``,
    ``generator_state``, ``face_generator_config`` / ``_state`` (None without a face stage) and
    the metadata keys of :func:`save_dance_model`, and ``plates`` ((V, H, W, 3) uint8 tensor of a
    person-layer model, else None). Reads the generator-export format and the
    format of version 0.1 (kind "vid2vid_app.dance_model"); :class:`UserError` for anything else."""
    from ..training.checkpoint import FORMAT_VERSION

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not our file"
        raise UserError(f"{path} is not a readable model file ({type(exc).__name__}).") from None
    if not isinstance(payload, dict):
        raise UserError(f"{path} is not a `dance train` model file.")
    if int(payload.get("format_version", 0)) > max(FORMAT_VERSION, LEGACY_FORMAT_VERSION):
        raise UserError(f"{path} was written by a newer version of vid2vid_app (format "
                        f"{payload['format_version']}); upgrade to load it.")
    if payload.get("kind") == LEGACY_KIND:
        return {"plates": None, **payload}  # 0.1 files were all full-frame models
    meta = payload.get("meta") if payload.get("kind") == "generator" else None
    if not isinstance(meta, dict) or meta.get("app") != APP:
        raise UserError(f"{path} is not a `dance train` model file.")
    face = (payload.get("extra_generators") or {}).get("face")
    return {**meta, "generator_config": payload["generator_config"], "generator_state": payload["generator_state"],
            "face_generator_config": face["config"] if face else None,
            "face_generator_state": face["state"] if face else None,
            "plates": (payload.get("tensors") or {}).get("plates")}


def _build(config: dict[str, Any], state: dict[str, torch.Tensor], path: Path) -> torch.nn.Module:
    from ..models import build_generator

    net = build_generator(**config)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"{path}: the stored weights do not fit the stored generator config "
                        f"({str(exc).splitlines()[0]}).") from None
    return net.eval().requires_grad_(False)


@dataclass
class DanceModel:
    """A trained per-subject model, ready for inference.

    ``generator`` maps cat(pose image, previous output) (N, 6, H, W) in [-1, 1] to a frame
    (N, 3, H, W) in [-1, 1] at ``resolution`` (w, h), or for a person layer (``plates`` (V, H, W, 3)
    uint8, not None) to colour + alpha (N, 4, H, W), composited over ``plate`` (the first plate
    unless :meth:`use_plate` picks another). ``face_generator`` (or None) refines the face
    crop. ``target_stats`` and ``target_size`` (w, h) describe the target video in its own pixels;
    ``render`` maps such coordinates into the canvas like the training frames were letterboxed.
    """

    generator: torch.nn.Module
    face_generator: torch.nn.Module | None
    resolution: tuple[int, int]
    target_stats: Any
    render_style: Any
    target_size: tuple[int, int]
    letterbox: Letterbox
    config: dict[str, Any]
    device: torch.device
    stage: str = "global"
    path: Path | None = None
    data: dict[str, Any] | None = None
    plates: torch.Tensor | None = None
    plate: torch.Tensor | None = None  # (1, 3, H, W) float in [-1, 1] on ``device``: plates[plate_index]
    plate_index: int = 0

    @property
    def person_layer(self) -> bool:
        """True for a model that generates the person over a background plate."""
        return self.plates is not None

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = "cpu") -> DanceModel:
        """Load a model file written by :func:`save_dance_model` onto ``device`` ("auto" picks CUDA
        when available). Files from older versions (fewer config fields) still load."""
        from ..pose.render import RenderStyle

        path = Path(path)
        payload = read_model_file(path)
        device = device if isinstance(device, torch.device) else resolve_device(device)
        generator = _build(payload["generator_config"], payload["generator_state"], path)
        face = None
        if payload.get("face_generator_config"):
            face = _build(payload["face_generator_config"], payload["face_generator_state"], path)
        config = to_dict(from_dict(DanceConfig, payload.get("config", {})))
        model = cls(
            generator=generator,
            face_generator=face,
            resolution=(int(payload["resolution"][0]), int(payload["resolution"][1])),
            target_stats=stats_from_json(payload["target_stats"]),
            render_style=from_dict(RenderStyle, payload.get("render_style", {})),
            target_size=(int(payload["target_size"][0]), int(payload["target_size"][1])),
            letterbox=letterbox_from_dict(payload["letterbox"]),
            config=config,
            device=device,
            stage=str(payload.get("stage", "global")),
            path=path,
            data=dict(payload.get("data") or {}),
            plates=check_plates(payload, path),
        )
        return model.to(device)

    def to(self, device: str | torch.device) -> DanceModel:
        """Move the networks to ``device`` (channels_last on CUDA, where convolutions prefer it)."""
        self.device = torch.device(device)
        memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        self.generator.to(self.device, memory_format=memory_format)
        if self.face_generator is not None:
            self.face_generator.to(self.device, memory_format=memory_format)
        if self.plates is not None:
            self.use_plate(self.plate_index)
        return self

    def use_plate(self, index: int) -> None:
        """Composite over the plate of target video ``index`` from now on (person layers only)."""
        from ..imaging import to_tensor

        if self.plates is None or not 0 <= index < len(self.plates):
            raise ValueError(f"no background plate {index} (the model has {0 if self.plates is None else len(self.plates)})")
        self.plate_index = int(index)
        self.plate = to_tensor(self.plates[index].numpy()).to(self.device)

    @property
    def face_size(self) -> int:
        return int(self.config.get("face_size", 128))

    @property
    def landmarks(self) -> str:
        """The stick figures the model was trained on: "holistic" (body, face, hands) or "body"
        (model files from before holistic figures have no such setting and mean "body")."""
        return str(self.config.get("landmarks") or "body")

    def canvas_keypoints(self, keypoints: np.ndarray) -> np.ndarray:
        """Keypoints (..., K, 3) in target-video pixels -> canvas pixels at ``resolution``."""
        return keypoints_to_canvas(keypoints, self.letterbox)

    def render(self, keypoints: np.ndarray) -> np.ndarray:
        """Stick figure of ``keypoints`` (33, 3), or a holistic (145, 3) pose, given in target-video
        pixel coordinates, drawn at ``resolution`` as uint8 (H, W, 3) — the same drawing the
        generator was trained on: a body-only model draws only the body of a holistic pose."""
        from ..pose.render import render_pose

        if self.landmarks == "body":
            keypoints = np.asarray(keypoints)[..., :33, :]
        w, h = self.resolution
        return render_pose(self.canvas_keypoints(keypoints), w, h, self.render_style)

    def face_box(self, keypoints: np.ndarray) -> np.ndarray | None:
        """The face box (x0, y0, x1, y1) in canvas pixels for ``keypoints`` (33, 3) or (145, 3) in target-video
        pixels, or None when the model has no face stage or the pose shows no face. Pass it to
        :meth:`generate` as ``boxes`` (one row per image)."""
        if self.face_generator is None:
            return None
        from ..models.face import face_box

        # The face stage was trained on boxes of one side per target (a steady crop scale).
        side = (self.data or {}).get("face_side")
        if self.landmarks == "body":  # boxes as in training: from the body's face points
            keypoints = np.asarray(keypoints)[..., :33, :]
        box = face_box(self.canvas_keypoints(keypoints), self.resolution,
                       box_frac=float(self.config.get("face_box_frac", 2.0)),
                       side=int(side) if side else None)
        return None if box is None else np.asarray(box, dtype=np.float32)

    @torch.inference_mode()
    def generate(self, pose_images: torch.Tensor, prev: torch.Tensor | None = None,
                 boxes: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """One generation step.

        pose_images: (N, 3, H, W) in [-1, 1] at ``resolution``; prev: the previous generated
        frames (N, 3, H, W) in [-1, 1], or None for the first frame (zeros, as in training).
        boxes: (N, 4) face boxes from :meth:`face_box`; the face stage is applied when the model
        has one and boxes are given. Returns (N, 3, H, W) float32 in [-1, 1] on ``device``; a person
        layer's frames are composites over :attr:`plate` (see :meth:`generate_layers`).
        """
        return self.generate_layers(pose_images, prev, boxes)[0]

    @torch.inference_mode()
    def generate_layers(self, pose_images: torch.Tensor, prev: torch.Tensor | None = None,
                        boxes: torch.Tensor | np.ndarray | None = None):
        """:meth:`generate` with the layers: ``(frame, colour, alpha)``, float32 on ``device``:
        frame (N, 3, H, W) in [-1, 1] (over the plate, face refined); for a person layer colour
        (N, 3, H, W) in [-1, 1] (the face stage's change added) and alpha (N, 1, H, W) in [0, 1],
        else both None."""
        pose = pose_images.to(self.device, torch.float32)
        prev = torch.zeros_like(pose[:, :3]) if prev is None else prev.to(self.device, torch.float32)
        x = torch.cat([pose, prev], dim=1)
        x, hw = pad_to_multiple(x, int(getattr(self.generator, "stride", 1)))
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        colour = alpha = None
        with autocast(self.device, autocast_dtype(self.device)):
            out = crop_to(self.generator(x), hw).float()
            if self.plate is not None:
                colour, alpha = split_layers(out)
                out = composite(colour, alpha, self.plate)
            if self.face_generator is not None and boxes is not None:
                refined = self._refine_faces(out, pose, boxes).float()
                if colour is not None:
                    colour = colour + (refined - out)
                out = refined
        if colour is not None:
            colour, alpha = colour.float().clamp_(-1.0, 1.0), alpha.float().clamp_(0.0, 1.0)
        return out.float().clamp_(-1.0, 1.0), colour, alpha

    def _refine_faces(self, frames: torch.Tensor, pose: torch.Tensor, boxes) -> torch.Tensor:
        boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32), device=self.device).reshape(-1, 4)
        return refine_faces(self.face_generator, frames, pose, boxes, self.face_size)


def check_plates(payload: dict[str, Any], path: Path) -> torch.Tensor | None:
    """The plates (V, H, W, 3) uint8 of a model file's contents, or None for a full-frame model;
    :class:`UserError` when the plates and the generator's channels disagree."""
    plates = payload.get("plates")
    channels = int(payload["generator_config"].get("out_channels", 3))
    if plates is None:
        if channels == LAYER_CHANNELS:
            raise UserError(f"{path}: the generator paints a person layer but the file holds no background plate.")
        return None
    w, h = (int(v) for v in payload["resolution"])
    if channels != LAYER_CHANNELS or plates.dtype != torch.uint8 or tuple(plates.shape[1:]) != (h, w, 3):
        raise UserError(f"{path}: the stored background plates ({tuple(plates.shape)}) do not fit its "
                        f"{w}x{h} generator of {channels} channels.")
    return plates


def refine_faces(face_generator: torch.nn.Module, frames: torch.Tensor, pose: torch.Tensor,
                 boxes: torch.Tensor, size: int) -> torch.Tensor:
    """The face stage: crop (size x size) face boxes (N, 4) from the pose images and the generated
    frames (N, 3, H, W), let the face generator refine cat(pose crop, frame crop), paste back."""
    from ..models.face import crop_faces, paste_faces

    pose_crop = crop_faces(pose, boxes, size)
    frame_crop = crop_faces(frames, boxes, size)
    refined = face_generator(torch.cat([pose_crop, frame_crop], dim=1))
    return paste_faces(frames, refined, boxes)

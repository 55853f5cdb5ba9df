"""Evaluate a motion-transfer model on frames of its own target person.

Each evaluation frame is reconstructed from its own pose (no normalisation: the poses already
belong to the target), generating in order with the previous output fed back (reset to zeros
after a gap in the frames or where another video starts), as
:mod:`vid2vid_app.dance.transfer` does. Then:

- ``psnr``, ``ssim``: mean over frames (dB; SSIM in [0, 1]), generated vs real;
- ``lpips``: mean LPIPS distance (AlexNet by default; lower is better), or None when its
  offline weights are not found and were not asked for explicitly (a note says so);
- ``pose_distance``: the keypoints re-detected on the generated frames (MediaPipe, tracking
  mode) against the input keypoints, mean distance in units of body height (lower is better);
  a re-detection whose left and right sides are swapped (the detector's front/back ambiguity) is
  compared with its sides matched; ``pose_distance_real`` is the same for the real frames, the
  detector's own floor;
- ``flicker``: mean absolute frame-to-frame change of the generated frames divided by that of
  the real frames (1.0 = as stable as the real footage);
- ``background_flicker``: the same outside the person (the real frames' person masks, grown a
  little: from the training run's cache, else MediaPipe's segmentation of the real frames).

Beside each metric the same for two baselines (:mod:`vid2vid_app.dance.baselines`), so the
figures say how much the model adds: the mean training frame and the nearest training pose
(``baselines`` in the JSON; skipped with a note when the run's data is not beside the model).

All metrics are computed on the video part of the model's canvas (its letterbox bars cut away),
at the model's resolution.

Frames: by default the held-out frames of the training run (the last part of the prepared
target frames, never trained on), read from the run folder's ``data/`` cache that the model file
points to. With ``video`` given, every frame of that video in which a person is detected (it
should show the target person, filmed like the training video).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..imaging import keypoints_to_canvas, letterbox, letterbox_geometry, to_tensor, to_uint8
from ..progress import plural, progress
from .transfer import content_crop, load_model

METRIC_KEYS = ("psnr", "ssim", "lpips", "pose_distance", "flicker", "background_flicker")
BASELINES = {"mean_training_frame": "mean frame", "nearest_training_pose": "nearest pose"}
LPIPS_NETS = ("alexnet", "vgg16")


@dataclass
class EvalFrames:
    """Frames to evaluate on: ``real`` (T, H, W, 3) uint8 letterboxed into the model canvas,
    ``keypoints`` (T, K, 3) in target-video pixels (K = 33, or 145 holistic), ``restart`` (T,) bool: the frame does not
    follow the previous one (first frame, a gap, another video), so the previous-frame feedback
    starts again from zeros; and what the frames are."""

    real: np.ndarray
    keypoints: np.ndarray
    restart: np.ndarray
    fps: float
    description: str
    masks: np.ndarray | None = None  # (T, H, W) uint8 person masks of ``real`` (255 = person), when known


@dataclass
class EvalOptions:
    """Settings of :func:`evaluate`.

    video: evaluate on this video of the target person instead of the held-out frames.
    lpips_weights: folder with ``<net>_features_imagenet.pth`` and ``<net>_lpips_lin_v0.1.pth``.
        Given: it must work. None: looked up ($VID2VID_WEIGHTS_DIR, ../shared/weights beside a
        source checkout, torch hub cache), and LPIPS is skipped with a note when not found.
    lpips_net: "alexnet" (the LPIPS authors' recommended metric) or "vgg16".
    max_frames: evaluate at most this many frames (None: all).
    pose: also compute the pose distances (runs the pose detector on the frames).
    outputs: files the caller will write afterwards (e.g. ``--json``); refused before the work
        when one of them is an input (the video, the model file, its training data, the LPIPS
        weights), whatever ``--overwrite`` says.
    """

    video: Path | None = None
    lpips_weights: Path | None = None
    lpips_net: str = "alexnet"
    max_frames: int | None = None
    pose: bool = True
    baselines: bool = True  # also measure the mean training frame and the nearest training pose
    device: str | None = "auto"
    quiet: bool = False
    outputs: Sequence[Path] = ()


@dataclass
class EvalReport:
    """``metrics`` holds the keys of :data:`METRIC_KEYS` (None where a metric could not be
    computed) plus extras; ``notes`` explains anything skipped."""

    metrics: dict[str, Any]
    frames: int
    description: str
    model: Path | None
    notes: list[str] = field(default_factory=list)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> metrics (BASELINES)

    def table(self) -> str:
        rows = [
            ("PSNR (dB, higher is better)", "psnr"),
            ("SSIM (0-1, higher is better)", "ssim"),
            (f"LPIPS {self.metrics.get('lpips_net', '')} (lower is better)", "lpips"),
            ("pose distance (x body height, lower is better)", "pose_distance"),
            ("  same for the real frames (detector floor)", "pose_distance_real"),
            ("flicker (generated / real, 1 = as stable)", "flicker"),
            ("background flicker (outside the person)", "background_flicker"),
        ]
        names = [BASELINES[b] for b in self.baselines]
        width = max(len(name) for name, _ in rows)
        lines = [f"evaluation on {plural(self.frames, 'frame')}: {self.description}"]
        if names:
            lines.append(f"  {'':<{width}}  {'model':>10}" + "".join(f"  {n:>12}" for n in names))
        for name, key in rows:
            line = f"  {name:<{width}}  {_fmt(self.metrics.get(key)):>10}"
            if key != "pose_distance_real":
                line += "".join(f"  {_fmt(b.get(key)):>12}" for b in self.baselines.values())
            lines.append(line.rstrip())
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe: non-finite numbers become None (JSON has no NaN or infinity)."""
        out = {k: _json_number(v) for k, v in self.metrics.items()}
        out["baselines"] = {name: {k: _json_number(v) for k, v in m.items()} for name, m in self.baselines.items()}
        out.update({"frames": self.frames, "description": self.description,
                    "model": str(self.model) if self.model else None, "notes": list(self.notes)})
        return out


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------------------------------
# Which frames


def held_out_frames(model: Any, max_frames: int | None = None) -> EvalFrames:
    """The held-out frames of the model's training run (see :mod:`vid2vid_app.dance.train`):
    real frames from ``data/frames_WxH.u8`` and keypoints from ``data/poses.npz`` beside the
    model file. :class:`UserError` when the model file has no such data beside it."""
    data = model.data or {}
    path = getattr(model, "path", None)
    if not data.get("val_frames") or path is None:
        raise UserError(f"model {path or ''} records no held-out frames (trained with --val-fraction 0?); "
                        "pass a VIDEO of the target person to evaluate on.")
    root = Path(path).parent / str(data.get("dir", "data"))
    frames_file = root / str(data.get("frames_file", ""))
    poses_file = root / "poses.npz"
    if not frames_file.is_file() or not poses_file.is_file():
        raise UserError(f"the training data of {path} is not beside it ({frames_file} or {poses_file} is "
                        "missing); pass a VIDEO of the target person to evaluate on.")
    w, h = (int(v) for v in data.get("canvas", model.resolution))
    if (w, h) != tuple(model.resolution):
        raise UserError(f"{frames_file} holds {w}x{h} frames but the model generates "
                        f"{model.resolution[0]}x{model.resolution[1]}; pass a VIDEO to evaluate on.")
    total = int(data.get("frames", 0))
    frames = np.memmap(frames_file, dtype=np.uint8, mode="r", shape=(total, h, w, 3))
    with np.load(poses_file) as z:
        keypoints = z["keypoints"].astype(np.float32)
        segment = z["segment"] if "segment" in z.files else np.zeros(len(keypoints), np.int64)
    indices = np.asarray(data["val_frames"], dtype=np.int64)
    if max_frames:
        indices = indices[:max_frames]
    description = (f"held-out frames {int(indices[0])}-{int(indices[-1])} of the training video(s) "
                   f"(never trained on)")
    masks_file = root / str(data.get("masks_file") or "")
    masks = (np.asarray(np.memmap(masks_file, dtype=np.uint8, mode="r", shape=(total, h, w))[indices])
             if data.get("masks_file") and masks_file.is_file() else None)
    return EvalFrames(real=np.asarray(frames[indices]), keypoints=keypoints[indices],
                      restart=restarts(indices, segment[indices]), fps=float(data.get("fps", 30.0)),
                      description=description, masks=masks)


def restarts(indices: np.ndarray, segment: np.ndarray | None = None) -> np.ndarray:
    """(T,) True where frame ``indices[t]`` does not directly follow ``indices[t - 1]`` in the same
    video ``segment`` (and for the first frame)."""
    out = np.ones(len(indices), dtype=bool)
    out[1:] = np.diff(indices) != 1
    if segment is not None:
        out[1:] |= np.diff(segment) != 0
    return out


def video_frames(model: Any, video: Path, max_frames: int | None = None, quiet: bool = False) -> EvalFrames:
    """Frames of ``video`` (the target person) with a detected person, letterboxed into the model
    canvas, and their keypoints mapped into the target video's pixels. A video of another size
    than the training video is fitted into it first (aspect kept, centred). One decoding pass (in
    a background thread): the detector sees a copy downscaled to 640 px, only the small canvas
    frames are kept."""
    from ..imaging import resize_max_side
    from ..pose import detect_sequence, fill_gaps, smooth
    from ..video import ThreadedReader, VideoReader
    from .transfer import DETECT_MAX_SIDE

    reader = VideoReader(video, end=max_frames or None)
    info = reader.info
    size = (info.width, info.height)
    tw, th = model.target_size
    cw, ch = model.resolution
    canvases: list[np.ndarray] = []

    def detector_frames():
        for frame in ThreadedReader(reader, maxsize=8):
            fitted = frame if size == (tw, th) else letterbox(frame, tw, th)[0]
            canvases.append(letterbox(fitted, cw, ch)[0])
            yield resize_max_side(frame, DETECT_MAX_SIDE)

    seq = detect_sequence(detector_frames(), float(info.fps), size, quiet=quiet, total=len(reader),
                          landmarks=model.landmarks)
    seq, _ = fill_gaps(seq)
    seq = smooth(seq)
    valid = seq.valid
    if not valid.any():
        raise UserError(f"no person was detected in any of the {len(seq)} frames of {video}.")
    keypoints = seq.packed()[valid]
    if size != (tw, th):
        keypoints = keypoints_to_canvas(keypoints, letterbox_geometry(size[0], size[1], tw, th))
    indices = np.flatnonzero(valid)
    return EvalFrames(real=np.stack([canvases[t] for t in indices]), keypoints=keypoints,
                      restart=restarts(indices), fps=float(info.fps),
                      description=f"{len(indices)} frames of {video} with a person")


# ------------------------------------------------------------------------------------------------
# Reconstruction and metrics


def reconstruct(model: Any, keypoints: np.ndarray, restart: np.ndarray, quiet: bool = True) -> np.ndarray:
    """Generate one canvas frame per pose (T, 33, 3) in target pixels, in order, feeding back the
    previous output; the feedback restarts from zeros where ``restart`` (T,) is True.
    -> uint8 (T, H, W, 3)."""
    out = []
    prev = None
    last_box = None
    for i, kp in enumerate(progress(keypoints, total=len(keypoints), desc="evaluate", unit="frame", quiet=quiet)):
        if restart[i]:
            prev = None
        boxes = None
        if model.face_generator is not None:
            box = model.face_box(kp)
            if box is not None and np.shape(box) == (4,) and np.isfinite(box).all():
                last_box = np.asarray(box, dtype=np.float32)
            boxes = None if last_box is None else last_box[None]
        pose = to_tensor(model.render(kp))
        prev = model.generate(pose, prev, boxes=boxes)
        out.append(to_uint8(prev)[0])
    return np.stack(out)


def mirror_permutation() -> np.ndarray:
    """(33,) landmark order with every left landmark swapped for its right twin (from the names in
    :mod:`vid2vid_app.pose.skeleton`: L_x <-> R_x, MOUTH_L <-> MOUTH_R)."""
    from ..pose import skeleton as sk

    perm = np.arange(sk.NUM_LANDMARKS)
    for name in dir(sk):
        twin = None
        if name.startswith("L_"):
            twin = "R_" + name[2:]
        elif name.endswith("_L"):
            twin = name[:-2] + "_R"
        if twin is None or not hasattr(sk, twin):
            continue
        a, b = getattr(sk, name), getattr(sk, twin)
        if a < sk.NUM_LANDMARKS and b < sk.NUM_LANDMARKS:
            perm[a], perm[b] = b, a
    return perm


def match_sides(reference: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Per frame, ``detected`` (T, 33, 3) as found or with left and right swapped, whichever lies
    closer to ``reference``. The detector cannot always tell a person's front from their back and
    then labels the sides the other way round; that is its ambiguity, not a wrong pose."""
    from ..metrics import pose_distance

    swapped = detected[:, mirror_permutation()]
    out = detected.copy()
    for t in range(len(detected)):
        plain = pose_distance(reference[t : t + 1], detected[t : t + 1])
        mirror = pose_distance(reference[t : t + 1], swapped[t : t + 1])
        if mirror < plain:  # NaN compares False: keep the detection as it is
            out[t] = swapped[t]
    return out


def canvas_pose_distance(model: Any, frames: np.ndarray, keypoints: np.ndarray, fps: float) -> float:
    """Re-detect poses on ``frames`` (T, h, w, 3) (the video part of the canvas) and compare them
    with the body of ``keypoints`` (T, K, 3) in target pixels, mapped the same way. Body-height
    units; the sides of each re-detected pose are matched first (:func:`match_sides`)."""
    from ..metrics import pose_distance
    from ..pose import detect_sequence

    box = model.letterbox
    reference = model.canvas_keypoints(np.asarray(keypoints)[:, :33])  # the body rows of packed poses
    reference[..., 0] -= box.x0
    reference[..., 1] -= box.y0
    h, w = frames.shape[1:3]
    detected = detect_sequence(list(frames), fps, (w, h), quiet=True)
    return pose_distance(reference, match_sides(reference, detected.keypoints))


def make_lpips(options: EvalOptions, notes: list[str]):
    """The LPIPS metric, or None (with a note) when its weights are not found and were not
    asked for explicitly; an explicit ``lpips_weights`` folder that does not work is an error."""
    from ..metrics import LPIPS

    if options.lpips_net not in LPIPS_NETS:
        raise UserError(f"unknown LPIPS network {options.lpips_net!r}; choose {' or '.join(LPIPS_NETS)}.")
    if options.lpips_weights is not None:
        return LPIPS(options.lpips_net, weights_dir=options.lpips_weights)
    try:
        return LPIPS(options.lpips_net)
    except UserError as exc:
        # The metric's own advice ("pass the weights folder") is replaced by this command's options.
        reason = str(exc).removesuffix(".").removesuffix("; pass the weights folder")
        notes.append(f"LPIPS skipped: {reason}; pass --lpips-weights DIR or set VID2VID_WEIGHTS_DIR.")
        return None


def evaluate(model: Any, options: EvalOptions | None = None,
             runs_dir: str | os.PathLike | None = None) -> EvalReport:
    """Reconstruct frames of the target person from their own poses and measure the result.

    model: a loaded DanceModel, a model name in ``runs_dir``, a run folder or a model file.
    Returns an :class:`EvalReport` whose ``metrics`` has the keys ``psnr``, ``ssim``, ``lpips``,
    ``pose_distance``, ``flicker`` (+ ``pose_distance_real``, ``lpips_net``, ``frames``).
    """
    from ..fileio import check_not_input

    opts = options or EvalOptions()
    notes: list[str] = []
    net = load_model(model, opts.device, runs_dir)
    model_path = getattr(net, "path", None)
    inputs = [opts.video, model_path, opts.lpips_weights]
    if opts.video is None and model_path is not None:
        inputs.append(Path(model_path).parent / str((net.data or {}).get("dir", "data")))
    for output in opts.outputs:
        check_not_input(output, inputs)
    lpips = make_lpips(opts, notes)  # before the slow part: a bad --lpips-weights fails at once
    if opts.video is not None:
        data = video_frames(net, Path(opts.video), opts.max_frames, opts.quiet)
    else:
        data = held_out_frames(net, opts.max_frames)

    if getattr(net, "person_layer", False) and len(net.plates) > 1:
        from .backdrop import closest_image

        # Several target cameras: composite over the plate of the one that filmed these frames.
        net.use_plate(closest_image(net.plates.numpy(), data.real, net.letterbox))
    generated = reconstruct(net, data.keypoints, data.restart, opts.quiet)
    box = net.letterbox
    fake = np.stack([content_crop(f, box) for f in generated])
    real = np.stack([content_crop(f, box) for f in data.real])
    background = background_region(content_crop_masks(data, box, real, opts.quiet))

    metrics = frame_metrics(net, fake, real, data, background, lpips, opts, notes)
    if opts.pose:
        metrics["pose_distance_real"] = canvas_pose_distance(net, real, data.keypoints, data.fps)
        if metrics["pose_distance"] is not None and math.isnan(metrics["pose_distance"]):
            notes.append("pose distance: no person was re-detected on the generated frames.")
    metrics["frames"] = len(fake)
    baselines = {}
    if opts.baselines:
        for name, frames in baseline_frames(net, data, notes).items():
            crops = np.stack([content_crop(f, box) for f in frames])
            baselines[name] = frame_metrics(net, crops, real, data, background, lpips, opts)
    return EvalReport(metrics=metrics, frames=len(fake), description=data.description,
                      model=getattr(net, "path", None), notes=notes, baselines=baselines)


def frame_metrics(net: Any, fake: np.ndarray, real: np.ndarray, data: EvalFrames, background: np.ndarray,
                  lpips, opts: EvalOptions, notes: list[str] | None = None) -> dict[str, Any]:
    """The metrics of :data:`METRIC_KEYS` for ``fake`` against ``real`` (T, h, w, 3) uint8, the video
    part of the canvas; ``background`` (T, h, w) bool away from the person. What cannot be measured
    is None, with a reason in ``notes`` when given."""
    from ..metrics import background_flicker, flicker, psnr, ssim

    notes = [] if notes is None else notes
    metrics: dict[str, Any] = {"psnr": psnr(fake, real), "ssim": ssim(fake, real), "lpips": None,
                               "pose_distance": None, "flicker": None, "background_flicker": None}
    if lpips is not None:
        if min(fake.shape[1:3]) >= 32:
            metrics["lpips"] = lpips(fake, real)
            metrics["lpips_net"] = opts.lpips_net
        else:
            notes.append(f"LPIPS skipped: frames of {fake.shape[2]}x{fake.shape[1]} are below its 32x32 minimum.")
    if len(fake) >= 2:
        metrics["flicker"] = flicker(fake, real)
        metrics["background_flicker"] = background_flicker(fake, real, background)
    else:
        notes.append("flicker needs at least two frames.")
    if opts.pose:
        metrics["pose_distance"] = canvas_pose_distance(net, fake, data.keypoints, data.fps)
    return metrics


def content_crop_masks(data: EvalFrames, box, real: np.ndarray, quiet: bool = True) -> np.ndarray:
    """(T, h, w) uint8 person masks of the real frames' video part: the training run's cached ones
    where known, else segmented now from ``real`` (T, h, w, 3)."""
    from .baselines import segment_canvas_frames

    if data.masks is not None:
        return np.stack([content_crop(m, box) for m in data.masks])
    return segment_canvas_frames(real, quiet=quiet)


def background_region(masks: np.ndarray) -> np.ndarray:
    """(T, h, w) bool: away from the person of the uint8 ``masks`` (T, h, w) (grown as for plates)."""
    from .plate import PERSON_MARGIN, person_region

    grow = int(round(PERSON_MARGIN * masks.shape[1]))
    return np.stack([~person_region(m, grow) for m in masks])


def baseline_frames(model: Any, data: EvalFrames, notes: list[str]) -> dict[str, np.ndarray]:
    """The baselines' canvas frames (T, H, W, 3) for the evaluation frames (see
    :mod:`vid2vid_app.dance.baselines`), or none with a note when the training data is not beside
    the model."""
    from .backdrop import closest_image
    from .baselines import mean_training_frame, nearest_pose_index, training_frames

    train = training_frames(model)
    if train is None:
        notes.append("baselines skipped: the model's training data (data/ beside the model file) is not there.")
        return {}
    videos = train.videos()
    means = np.stack([mean_training_frame(v) for v in videos])
    best = closest_image(means, data.real, model.letterbox)  # the target video these frames belong to
    train, mean = videos[best], means[best]
    nearest = nearest_pose_index(train, data.keypoints)
    return {"mean_training_frame": np.repeat(mean[None], len(data.keypoints), axis=0),
            "nearest_training_pose": np.stack([train.frames[int(t)] for t in nearest])}


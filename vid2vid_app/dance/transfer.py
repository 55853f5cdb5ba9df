"""Motion transfer ("do as I do"): the trained target person performs a source video's moves.

One call, :func:`transfer`, runs the numbered steps:

1. **Source poses.** Decode the source (in a background thread, downscaled for the detector) and
   detect the followed person in every frame; interpolate short misses, smooth.
2. **Normalise** the source poses onto the target's body statistics (global pose normalisation:
   the source's scale and ground line become the target's). ``normalize=False`` only fits the
   source frame into the target's frame (uniform scale, centred), for sources filmed like the
   target.
3. **Render** a stick figure per frame at the model's canvas, with the training renderer.
4. **Generate** frame by frame, feeding each output back as the next frame's "previous frame".
5. **Encode** at the source's frame rate with the source's audio (trimmed to the chosen range).

With ``poses`` (the ``keypoints.npz`` that ``dance pose SOURCE`` wrote, or a
:class:`~vid2vid_app.pose.keypoints.PoseSequence`) step 1 reads those keypoints instead of
detecting: no MediaPipe is imported, and the keypoints are used as they are (``dance pose``
already filled short gaps and smoothed them); frames without a pose hold the nearest one. The
sequence must have one pose per source frame at the source's size.

Steps 1-2 stream into steps 3-5 (:mod:`.stream`): the source is detected in the background while
the frames found so far are cleaned up, normalised, rendered and generated, so a transfer takes
about as long as its slowest stage instead of the pose pass plus the generation pass. The
normalisation statistics, which describe all the source's frames, then come from a first look
at a sample of them, and smoothing looks half a second ahead instead of to the end of each run.
``whole_clip=True`` keeps the two passes of earlier versions (detect everything, then generate)
and their results exactly. Rendering (step 3) and encoding (step 5, plus decoding the source
again for the side-by-side video) run in background threads beside the generator.

Output geometry: the model's canvas holds the target video letterboxed (aspect kept, black bars).
The output video is the content part of the canvas: the target video's aspect at the model's
resolution (e.g. 128x228 for a 360x640 target on a 128x256 canvas), black bars cropped away.
The encoder pads an odd width or height to even. The output has exactly one frame per source
frame in the chosen range; frames where nobody was detected reuse interpolated poses (short
gaps) or hold the nearest detected pose (long gaps, and before the first / after the last
detection), and the report counts both.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..fileio import check_not_input, check_output_path
from ..imaging import (
    Letterbox,
    float_array_to_uint8,
    hstack,
    keypoints_to_canvas,
    letterbox_geometry,
    to_float_array,
    to_uint8_tensor,
)
from ..progress import plural, progress
from ..video.writer import WRITER_SUFFIXES, check_video_suffix
from .backdrop import BACKGROUND_WORDS, Backdrop, check_layered, make_backdrop, open_background
from .stream import LOOKAHEAD_SECONDS

# The detector works on frames whose longer side is at most this many pixels (MediaPipe scales
# its input to 256 px anyway); coordinates are mapped back to the source's own pixels.
DETECT_MAX_SIDE = 640
# The side-by-side video is at least this tall, so a tiny model's output stays visible.
SIDE_BY_SIDE_MIN_HEIGHT = 256

_POSITION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(s)?\s*$")


@dataclass
class TransferOptions:
    """Settings of :func:`transfer`.

    start, end: the frame range ``[start, end)`` of the source to transfer. An int, or a string:
        ``"120"`` is frame 120, ``"2.5s"`` is 2.5 seconds (rounded to the nearest frame).
        None: from the first frame / to the last one.
    normalize: global pose normalisation onto the target (False: fit the source frame only).
    side_by_side: also write source | stick figure | generated to this video file.
    device: "auto", "cpu", "cuda", "cuda:N".
    quality: x264 CRF of the outputs (18 = visually lossless).
    encoder_preset: x264 speed preset of the outputs (``veryfast`` when the GPU outruns the encoder).
    smooth_method: "one_euro" or "median" (see :func:`vid2vid_app.pose.smooth`); None: no smoothing.
    max_gap: longest run of missed frames bridged by interpolation (None: a quarter second).
    crop: (x, y, width, height) in source pixels: use only this region of the source, e.g. to
        pick one of several people (the detector follows one person per video). The region then
        plays the role of the source frame (normalisation, side-by-side panel).
    poses: the source's keypoints, read instead of detecting them: the ``keypoints.npz`` that
        ``dance pose SOURCE`` wrote (a path) or a PoseSequence. It must hold one pose per frame
        of the whole source, at the source's size; it is used as it is (no further gap filling
        or smoothing) and cannot be combined with ``crop``.
    quiet: no progress bars.
    overwrite: replace existing outputs.
    whole_clip: detect the whole source before generating: normalisation statistics and
        smoothing from all its frames, as earlier versions did (slower). Default: stream the
        detection into generation (statistics from a first look at a sample of frames; see
        :mod:`.stream`). Keypoints read from ``poses`` are used whole either way.
    smooth_lookahead: seconds the smoothing of a streamed transfer looks ahead (None: to the end
        of each run of frames, as the whole-clip pass does; generation then waits for the
        whole detection).
    """

    start: int | str | None = None
    end: int | str | None = None
    normalize: bool = True
    side_by_side: Path | None = None
    device: str | None = "auto"
    quality: int = 18
    encoder_preset: str = "medium"
    smooth_method: str | None = "one_euro"
    max_gap: int | None = None
    crop: tuple[int, int, int, int] | None = None
    poses: str | os.PathLike | Any | None = None
    workers: int | None = None  # processes of the pose pass (None: every core)
    quiet: bool = False
    overwrite: bool = False
    whole_clip: bool = False
    smooth_lookahead: float | None = LOOKAHEAD_SECONDS
    # Person-layer models only (see vid2vid_app.dance.backdrop): what goes behind the dancer,
    # "plate" (None: the same), "source", "none" or an image / video file; and where to write
    # the alpha matte: a video file (grey matte) or a folder (RGBA PNGs: colour with the matte).
    background: str | os.PathLike | None = None
    alpha: Path | None = None


@dataclass
class TransferReport:
    """What :func:`transfer` did. Times in seconds; ``size`` is the output (width, height).

    In a streamed transfer (``streamed``) ``pose_seconds`` is when the last pose was detected,
    counted from the start, and ``generate_seconds`` the generation pass, which began long before
    that: the two overlap and add up to more than ``total_seconds``."""

    output: Path
    side_by_side: Path | None
    source: Path
    model: Path | None
    frames: int
    start: int
    end: int
    fps: float
    size: tuple[int, int]
    frames_detected: int
    frames_interpolated: int
    frames_held: int
    normalized: bool
    audio: bool
    device: str
    crop: tuple[int, int, int, int] | None = None
    poses_file: Path | None = None  # the keypoints file read instead of detecting (None: detected)
    pose_seconds: float = 0.0
    generate_seconds: float = 0.0
    total_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    background: str | None = None  # what stands behind the dancer (a person-layer model), else None
    alpha: Path | None = None  # where the matte was written
    streamed: bool = False  # poses streamed into generation: pose and generation seconds overlap

    @property
    def generate_fps(self) -> float:
        """Frames per second of the generation pass (render + generate + encode)."""
        return self.frames / self.generate_seconds if self.generate_seconds > 0 else float("nan")

    def summary(self) -> str:
        lines = [
            f"wrote {self.output} ({plural(self.frames, 'frame')} {self.start}-{self.start + self.frames - 1} of "
            f"{self.source.name}, "
            f"{self.size[0]}x{self.size[1]} at {self.fps:g} fps, {'with' if self.audio else 'no'} audio)",
        ]
        if self.side_by_side is not None:
            lines.append(f"wrote {self.side_by_side} (source | stick figure | generated)")
        if self.alpha is not None:
            kind = "PNGs with transparency" if self.alpha.is_dir() else "matte video"
            lines.append(f"wrote {self.alpha} (the alpha matte: {kind})")
        if self.background is not None:
            lines.append(f"background: {self.background}")
        missed = self.frames - self.frames_detected
        region = "" if self.crop is None else " (region x={} y={} {}x{})".format(*self.crop)
        if self.poses_file is not None:
            lines.append(f"poses read from {self.poses_file}: a pose in {self.frames_detected}/{self.frames} frames"
                         + (f"; {self.frames_held} held from the nearest frame with a pose" if missed else ""))
        else:
            lines.append(f"person detected{region} in {self.frames_detected}/{self.frames} frames"
                         + (f"; {self.frames_interpolated} interpolated, {self.frames_held} held from the "
                            f"nearest detected frame" if missed else ""))
        lines.append(f"poses {'normalised onto the target' if self.normalized else 'not normalised'}; "
                     f"device {self.device}")
        if self.streamed:
            lines.append(f"time {self.total_seconds:.1f} s = {self.frames / self.total_seconds:.1f} frames/s "
                         f"(poses detected until {self.pose_seconds:.1f} s, generation {self.generate_seconds:.1f} s, "
                         "overlapping)")
        else:
            lines.append(f"time {self.total_seconds:.1f} s (poses {self.pose_seconds:.1f} s, generation "
                         f"{self.generate_seconds:.1f} s = {self.generate_fps:.1f} frames/s)")
        lines.extend(self.notes)
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Frame range


def parse_position(value: int | str | None, fps: float, name: str = "position") -> int | None:
    """A frame index from ``value``: an int or ``"120"`` is a frame index, ``"2.5s"`` seconds
    (rounded to the nearest frame at ``fps``); None stays None. :class:`UserError` otherwise."""
    if value is None or isinstance(value, int):
        if isinstance(value, int) and value < 0:
            raise UserError(f"--{name} {value} must not be negative.")
        return value
    m = _POSITION.match(str(value))
    if not m:
        raise UserError(f"--{name} {value!r} is neither a frame number (e.g. 120) nor seconds (e.g. 2.5s).")
    number, seconds = m.group(1), m.group(2)
    if seconds:
        return int(round(float(number) * fps))
    if "." in number:
        raise UserError(f"--{name} {value!r}: a frame number is a whole number; write seconds as {value}s.")
    return int(number)


def frame_range(frame_count: int, fps: float, start: int | str | None, end: int | str | None,
                source: Path | str = "the source") -> tuple[int, int]:
    """``[start, end)`` clipped to the video; :class:`UserError` when it holds no frame."""
    s = parse_position(start, fps, "start") or 0
    e = parse_position(end, fps, "end")
    e = frame_count if e is None else min(e, frame_count)
    if s >= frame_count:
        raise UserError(f"--start is frame {s} but {source} has only {frame_count} frames.")
    if e <= s:
        raise UserError(f"the range --start {start} --end {end} holds no frame of {source} (frames {s} to {e}).")
    return s, e


def check_crop(crop: tuple[int, int, int, int] | None, width: int, height: int,
               source: Path | str = "the source") -> tuple[int, int, int, int]:
    """The region (x, y, w, h) of the source to use: ``crop`` checked against the frame size,
    or the whole frame. :class:`UserError` when it is not inside the frame or is too small."""
    if crop is None:
        return 0, 0, width, height
    x, y, w, h = (int(v) for v in crop)
    if x < 0 or y < 0 or w < 16 or h < 16 or x + w > width or y + h > height:
        raise UserError(f"--crop {x},{y},{w},{h} must lie inside the {width}x{height} frames of {source} "
                        "and be at least 16x16 pixels.")
    return x, y, w, h


def _cropped(frames, region: tuple[int, int, int, int], scale_x: float, scale_y: float) -> Iterator[np.ndarray]:
    """``region`` (x, y, w, h) in source pixels cut from frames decoded at (scale_x, scale_y)."""
    x, y, w, h = region
    x0, y0 = round(x * scale_x), round(y * scale_y)
    x1, y1 = max(x0 + 1, round((x + w) * scale_x)), max(y0 + 1, round((y + h) * scale_y))
    for frame in frames:
        yield np.ascontiguousarray(frame[y0:y1, x0:x1])


# ------------------------------------------------------------------------------------------------
# Step 1: source poses


@dataclass
class SourcePoses:
    """Poses of the source range. ``sequence`` keypoints (T, 33, 3) (with face and hands for
    holistic poses) in source pixels after gap
    filling and smoothing, with NaN frames where nobody was found for too long; ``filled`` (T, K, 3)``
    the same with those frames held from the nearest detected frame (no NaN frame left)."""

    sequence: Any  # PoseSequence
    filled: np.ndarray
    detected: int
    interpolated: int
    held: int
    truncated: str | None = None


def hold_missing(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace each missing frame of (T, K, 3) ``keypoints`` by the nearest earlier valid frame
    (the first valid frame for missing frames at the start). ``valid`` (T,) must have a True."""
    if not valid.any():
        raise ValueError("no valid frame to hold")
    index = np.where(valid, np.arange(len(valid)), -1)
    index = np.maximum.accumulate(index)  # last valid frame at or before t
    index[index < 0] = int(np.argmax(valid))  # before the first detection: the first one
    return keypoints[index].copy()


def detect_source_poses(source: Path, start: int, end: int, *, crop: tuple[int, int, int, int] | None = None,
                        smooth_method: str | None = "one_euro", max_gap: int | None = None,
                        quiet: bool = False, landmarks: str = "body", workers: int | None = None) -> SourcePoses:
    """Step 1: detect the source's frames ``[start, end)`` (``landmarks`` "body" or "holistic",
    spread over ``workers`` processes, None: every core; each decodes its own frames), fill
    short gaps, smooth, then hold the nearest pose over the remaining misses. With ``crop``
    (x, y, w, h) only that region is searched and coordinates are in its pixels.

    Raises :class:`UserError` when no frame of the range shows a person.
    """
    from ..pose import fill_gaps, smooth
    from ..pose.parallel import detect_chunked
    from ..video import FrameRange, probe

    info = probe(source)
    region = check_crop(crop, info.width, info.height, source)
    frames = FrameRange(source, max_side=DETECT_MAX_SIDE, crop=crop, start=start, end=end)
    seq = detect_chunked(frames, end - start, float(info.fps), region[2:], workers=workers, landmarks=landmarks,
                         quiet=quiet)
    detected = int(seq.valid.sum())
    if detected == 0:
        raise UserError(f"no person was detected in any of the {len(seq)} frames of {source}"
                        + (f" (frames {start}-{end - 1})" if (start, end) != (0, info.frame_count) else "")
                        + "; motion transfer needs a source with a visible person.")
    seq, gaps = fill_gaps(seq, max_gap=max_gap)
    if smooth_method:
        seq = smooth(seq, method=smooth_method)
    filled = hold_missing(seq.packed(), seq.valid)
    truncated = None
    if len(seq) < end - start:
        truncated = (f"{source} ended after {len(seq)} of the expected {end - start} frames "
                     f"(damaged or cut short); the output has {len(seq)} frames.")
    return SourcePoses(sequence=seq, filled=filled, detected=detected, interpolated=gaps.filled_frames,
                       held=gaps.missing_frames, truncated=truncated)


def poses_path(poses: str | os.PathLike) -> Path:
    """The keypoints file for ``--poses``: the file itself, or ``keypoints.npz`` in a folder that
    `dance pose` wrote."""
    path = Path(poses)
    if path.is_dir():
        if not (path / "keypoints.npz").is_file():
            raise UserError(f"{path} is a folder without keypoints.npz; pass the keypoints.npz that "
                            "`dance pose SOURCE -o DIR` wrote (or its folder DIR).")
        return path / "keypoints.npz"
    return path


def read_source_poses(poses: Any, source: Path, frame_count: int, size: tuple[int, int], start: int,
                      end: int) -> SourcePoses:
    """Step 1 from keypoints computed earlier (``dance pose SOURCE`` writes them to
    ``OUTDIR/keypoints.npz``): ``poses`` is such a file or a PoseSequence.

    A folder holding ``keypoints.npz`` stands for that file. The sequence must have
    ``frame_count`` poses (one per source frame) in pixels of a frame of ``size`` (width,
    height); frames ``[start, end)`` are used as they are (no further gap filling
    or smoothing) and frames without a pose hold the nearest one. Imports no MediaPipe.
    Raises :class:`UserError` for a missing or invalid file, a sequence of another length or
    size, or a range without any pose.
    """
    from ..pose.keypoints import PoseSequence

    if isinstance(poses, PoseSequence):
        seq, name = poses, "the given poses"
    else:
        path = poses_path(poses)
        seq, name = PoseSequence.load(path), str(path)
    if len(seq) != frame_count:
        raise UserError(f"{name} holds poses for {len(seq)} frames but {source} has {frame_count} frames; "
                        f"pass the keypoints.npz that `dance pose {source}` wrote for this very video.")
    if tuple(seq.size) != tuple(size):
        raise UserError(f"{name} holds poses for {seq.size[0]}x{seq.size[1]} frames but {source} is "
                        f"{size[0]}x{size[1]}; pass the keypoints.npz that `dance pose {source}` wrote "
                        "for this very video.")
    part = seq.with_points(seq.packed()[start:end])
    valid = part.valid
    with_pose = int(valid.sum())
    if with_pose == 0:
        where = f" (frames {start}-{end - 1})" if (start, end) != (0, frame_count) else ""
        raise UserError(f"{name} has no pose in any of the {len(part)} frames{where}; motion transfer needs "
                        "a source with a visible person.")
    filled = hold_missing(part.packed(), valid)
    return SourcePoses(sequence=part, filled=filled, detected=with_pose, interpolated=0,
                       held=len(part) - with_pose)


def pose_notes(poses: SourcePoses, model: Any) -> list[str]:
    """Notes for the summary: a source cut short, and keypoints without the face and hands a
    holistic model was trained on (read with ``--poses`` from a body-only `dance pose` run)."""
    notes = [poses.truncated] if poses.truncated else []
    if getattr(model, "landmarks", "body") == "holistic" and poses.sequence.landmarks == "body":
        notes.append("the keypoints hold no face or hands but the model was trained on holistic stick figures; "
                     "its figures are drawn with the body only (write them with `dance pose` without "
                     "--landmarks body).")
    return notes


# ------------------------------------------------------------------------------------------------
# Step 2: into the target's coordinates


def to_target_poses(poses: SourcePoses, target_size: tuple[int, int], target_stats: Any,
                    normalize: bool, source: Path | str = "the source") -> np.ndarray:
    """Step 2: source keypoints -> (T, K, 3) keypoints in the target video's pixels (K = 33, or
    145 for holistic poses, whose face and hands move with the body).

    The source frame is first fitted into the target frame the way a letterbox would (one
    uniform scale, centred: :func:`~vid2vid_app.imaging.keypoints_to_canvas`); with
    ``normalize`` the source's body statistics (from its detected and interpolated frames,
    never the held copies) are then mapped onto ``target_stats`` frame by frame.
    """
    from ..pose.keypoints import PoseSequence

    seq = poses.sequence
    box = letterbox_geometry(seq.size[0], seq.size[1], target_size[0], target_size[1])
    fitted = PoseSequence.from_packed(keypoints_to_canvas(seq.packed(), box), target_size, seq.fps)
    held = PoseSequence.from_packed(keypoints_to_canvas(poses.filled, box), target_size, seq.fps)
    if not normalize:
        return held.packed()
    from ..pose.normalize import compute_stats
    from ..pose.normalize import normalize as normalize_poses

    try:
        source_stats = compute_stats(fitted)
    except UserError as exc:
        raise UserError(f"cannot normalise the poses of {source}: {str(exc).rstrip('.')}; "
                        "pass --no-normalize to use them as they are.") from None
    return normalize_poses(held, source_stats, target_stats).packed()


# ------------------------------------------------------------------------------------------------
# Steps 3-5: render, generate, encode (threads around the generator)


@dataclass
class _Frame:
    """One generated frame on its way to the encoder thread."""

    generated: torch.Tensor  # (1, 3, H, W): float in [-1, 1] on the CPU, or uint8 on the GPU
    pose_image: np.ndarray  # (H, W, 3) uint8 stick figure on the canvas
    layers: tuple[torch.Tensor, torch.Tensor] | None = None  # person layer: uint8 colour (1, 3, H, W), alpha (1, 1, H, W)


def content_crop(image: np.ndarray, box: Letterbox) -> np.ndarray:
    """The part of a letterboxed canvas image (H, W, C) that holds the video (bars cut away)."""
    return image[box.y0 : box.y0 + box.content_h, box.x0 : box.x0 + box.content_w]


def _render_stream(model: Any, keypoints: np.ndarray, pin: bool) -> Iterator[tuple[np.ndarray, torch.Tensor, Any]]:
    """Step 3 (runs in a background thread): per frame the stick figure (uint8 canvas), the
    generator input (1, 3, H, W) in [-1, 1] and the face box (or None).

    The conversion is done in numpy: a torch op here would start a second OpenMP thread team
    that fights the generator's for the CPU cores."""
    last_box = None
    for kp in keypoints:
        image = model.render(kp)
        tensor = torch.from_numpy(to_float_array(image))
        if pin:
            tensor = tensor.pin_memory()
        if model.face_generator is not None:
            box = model.face_box(kp)
            # A frame where the face cannot be placed keeps the previous frame's face box.
            if box is not None and np.shape(box) == (4,) and np.isfinite(box).all():
                last_box = np.asarray(box, dtype=np.float32)
        yield image, tensor, last_box


def run_generation(model: Any, keypoints: Any, write: Callable[[np.ndarray, np.ndarray], None],
                   *, quiet: bool = False, desc: str = "transfer", backgrounds: Iterable[np.ndarray] | None = None,
                   write_layers: Callable[[np.ndarray, np.ndarray], None] | None = None,
                   cpu_threads: Callable[[], int] | None = None) -> float:
    """Steps 3-5 for (T, K, 3) ``keypoints`` in target-video pixels: an array, or any iterable with
    a length (e.g. a :class:`~.stream.SourceStream` whose rows come while the source is detected).

    Rendering runs in one background thread, ``write(generated, stick figure)`` (uint8 canvas
    images, (H, W, 3)) in another, the generator in the calling thread with each output fed back
    as the next frame's previous frame. Returns the seconds spent. ``cpu_threads()``, when given,
    says before each frame how many CPU threads the generator may use (PyTorch's count is restored
    at the end).

    Person-layer models only: ``backgrounds`` gives one uint8 (H, W, 3) canvas image per frame to
    put behind the dancer instead of the plate (the fed-back frame stays the composite over the
    plate, as in training); ``write_layers(colour (H, W, 3), alpha (H, W))`` (uint8) gets each
    frame's layers, in the writer thread after ``write``.
    """
    from ..video import ThreadedConsumer, ThreadedReader

    cuda = model.device.type == "cuda"

    def consume(item: _Frame) -> None:
        # CPU: numpy conversion (no torch op in this thread, see _render_stream). CUDA: the
        # uint8 conversion was queued on the GPU; .cpu() here waits for it off the main thread.
        generated = item.generated
        if generated.dtype == torch.uint8:
            frame = generated[0].permute(1, 2, 0).cpu().numpy()
        else:
            frame = float_array_to_uint8(generated[0].numpy())
        write(frame, item.pose_image)
        if item.layers is not None:
            colour, alpha = item.layers
            write_layers(colour[0].permute(1, 2, 0).cpu().numpy(), alpha[0, 0].cpu().numpy())

    started = time.perf_counter()
    writer = ThreadedConsumer(consume, maxsize=8, name="transfer-encode")
    # Every frame has the same size, so cuDNN may pick its fastest kernels once (GPU only).
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = benchmark or model.device.type == "cuda"
    renders = ThreadedReader(_render_stream(model, keypoints, cuda), maxsize=8)
    # Backgrounds are decoded and converted (numpy only, see _render_stream) in their own thread.
    backs = None if backgrounds is None else ThreadedReader(
        (torch.from_numpy(to_float_array(b)) for b in backgrounds), maxsize=4)
    back_iter = iter(backs) if backs is not None else None
    threads = torch.get_num_threads()
    try:
        prev = None
        for image, tensor, box in progress(renders, total=len(keypoints), desc=desc, unit="frame", quiet=quiet):
            if cpu_threads is not None and cpu_threads() != torch.get_num_threads():
                torch.set_num_threads(cpu_threads())
            pose = tensor.to(model.device, non_blocking=True)
            background = None if back_iter is None else next(back_iter).to(model.device, non_blocking=True)
            out, shown, layers = _generate_one(model, pose, prev, None if box is None else box[None], background,
                                               write_layers is not None)
            writer.put(_Frame(to_uint8_tensor(shown) if cuda else shown, image, layers))
            prev = out
    finally:
        # Stop the render thread now (not when the loop's generator is garbage collected).
        renders.close()
        if backs is not None:
            backs.close()
        torch.backends.cudnn.benchmark = benchmark
        torch.set_num_threads(threads)
        writer.close()
    return time.perf_counter() - started


def _generate_one(model: Any, pose: torch.Tensor, prev: torch.Tensor | None, boxes: np.ndarray | None,
                  background: torch.Tensor | None, layers: bool) -> tuple:
    """One generated frame: (the output fed back, the frame shown, the person layer's uint8
    (colour, alpha) or None). ``pose`` (1, 3, H, W) in [-1, 1]; ``background`` (1, 3, H, W) in
    [-1, 1] replaces a person-layer model's plate in the frame shown (not in the one fed back)."""
    from ..models.person_layer import swap_background

    if not getattr(model, "person_layer", False):
        out = model.generate(pose, prev, boxes=boxes)
        return out, out, None
    out, colour, alpha = model.generate_layers(pose, prev, boxes=boxes)
    shown = out
    if background is not None:
        shown = swap_background(out, alpha, model.plate, background).clamp_(-1.0, 1.0)
    uint8_layers = (to_uint8_tensor(colour), alpha.mul(255.0).round_().to(torch.uint8)) if layers else None
    return out, shown, uint8_layers


# ------------------------------------------------------------------------------------------------
# The pipeline


def _check_paths(source: Path, output: Path, side_by_side: Path | None, overwrite: bool) -> None:
    """Outputs must differ from the source and from each other, and be writable (or replaceable)."""
    def same(a: Path, b: Path) -> bool:
        return a.resolve() == b.resolve()

    for out in (output, side_by_side):
        if out is None:
            continue
        if same(out, source):
            raise UserError(f"{out} is the source video; choose another output file (inputs are never overwritten).")
        check_not_input(out, [source])  # the same file under another name (a hard link)
        check_video_suffix(out)
        check_output_path(out, overwrite)
    if side_by_side is not None and same(output, side_by_side):
        raise UserError(f"the output and the side-by-side video are both {output}; give two different files.")


def check_alpha_path(alpha: str | os.PathLike | None, source: Path, outputs: list[Path | None],
                     overwrite: bool) -> Path | None:
    """The ``--alpha`` output: a video file (by its suffix) or a folder for PNGs; refused when it
    is the source or another output, or exists without ``overwrite``."""
    if alpha is None:
        return None
    path = Path(alpha)
    for other in [source, *outputs]:
        if other is not None and path.resolve() == Path(other).resolve():
            raise UserError(f"--alpha {path} is also {'the source' if other == source else 'another output'}; "
                            "give it its own file or folder.")
    if path.is_dir() or not path.suffix:
        check_output_path(path, overwrite, folder=True)
        return path
    if path.suffix.lower() not in WRITER_SUFFIXES:
        raise UserError(f"--alpha {path}: give a video file ({', '.join(WRITER_SUFFIXES)}) for a matte video, or a "
                        "folder name without a suffix for PNGs with transparency.")
    check_output_path(path, overwrite)
    return path


def open_alpha_sink(path: Path, fps, opts: TransferOptions):
    """The writer of the ``--alpha`` output: a matte video, or a folder of RGBA PNGs."""
    from ..media import MediaSink
    from ..video import VideoWriter

    if path.suffix and not path.is_dir():
        return VideoWriter(path, fps, quality=opts.quality, preset=opts.encoder_preset, overwrite=opts.overwrite)
    return MediaSink(path, "folder", overwrite=opts.overwrite)


def write_alpha(sink: Any, colour: np.ndarray, alpha: np.ndarray) -> None:
    """One frame of the matte: grey (H, W, 3) into a video, RGBA (the colour with the matte as its
    transparency) into a PNG folder. ``colour`` (H, W, 3), ``alpha`` (H, W), both uint8."""
    from ..video import VideoWriter

    if isinstance(sink, VideoWriter):
        sink.write(np.repeat(alpha[..., None], 3, axis=-1))
    else:
        sink.write(np.dstack([colour, alpha]))


def load_model(model: Any, device: str | None = "auto", runs_dir: str | os.PathLike | None = None):
    """A :class:`~vid2vid_app.dance.model.DanceModel` from a model object (returned as
    is), a name in ``runs_dir``, a run folder or a model file."""
    from ..runs import resolve_model_path
    from .model import DanceModel

    if isinstance(model, DanceModel):
        return model
    return DanceModel.load(resolve_model_path(model, runs_dir, "dance"), device=device)


def transfer(source: str | os.PathLike, model: Any, output: str | os.PathLike,
             options: TransferOptions | None = None, runs_dir: str | os.PathLike | None = None) -> TransferReport:
    """Make the model's target person perform the moves of the person in ``source``.

    source: the source video. model: a loaded DanceModel, a model name (looked up in
    ``runs_dir``), a run folder or a model file. output: the video to write (.mp4/.mov/.mkv).
    Returns a :class:`TransferReport`; raises :class:`UserError` for bad input (missing or
    unreadable source, no person, unknown model, existing output without ``overwrite``, an
    output that is one of the inputs: source, model file, keypoints file), in which case nothing
    is left at the output paths. One writer per output: while another process writes one of
    them this raises :class:`~vid2vid_app.fileio.Busy`.
    """
    from ..fileio import output_locks

    opts = options or TransferOptions()
    sbs_path = Path(opts.side_by_side) if opts.side_by_side is not None else None
    with output_locks(output, sbs_path, opts.alpha):
        return _transfer(Path(source), model, Path(output), sbs_path, opts, runs_dir)


def _transfer(source: Path, model: Any, output: Path, sbs_path: Path | None, opts: TransferOptions,
              runs_dir: str | os.PathLike | None) -> TransferReport:
    """:func:`transfer` with its outputs locked: the numbered steps of the module docstring."""
    from ..video import probe

    t0 = time.perf_counter()
    info = probe(source)
    _check_paths(source, output, sbs_path, opts.overwrite)
    alpha_path = check_alpha_path(opts.alpha, source, [output, sbs_path], opts.overwrite)
    open_background(opts.background)  # a bad --background file fails before the slow work
    start, end = frame_range(info.frame_count, float(info.fps), opts.start, opts.end, source)
    region = check_crop(opts.crop, info.width, info.height, source)
    # 1a. The source's poses from a keypoints file (checked before the model is loaded).
    poses = _poses_from_file(opts, source, info, start, end) if opts.poses is not None else None
    net = load_model(model, opts.device, runs_dir)
    _check_outputs_are_not_inputs(opts, source, net, output, sbs_path, alpha_path)
    paths = (source, output, sbs_path, alpha_path)
    if poses is None and not opts.whole_clip:
        return _transfer_streamed(t0, paths, info, start, end, region, net, opts)
    if poses is None:
        # 1b. Detect and smooth the source's poses with the landmarks the model was trained on
        #     (over worker processes that decode their own frames).
        poses = detect_source_poses(source, start, end, crop=opts.crop, smooth_method=opts.smooth_method,
                                    max_gap=opts.max_gap, quiet=opts.quiet, landmarks=net.landmarks,
                                    workers=opts.workers)
    # 2. Into the target's frame, normalised onto the target's body statistics.
    keypoints = to_target_poses(poses, net.target_size, net.target_stats, opts.normalize, source)
    # What stands behind the dancer (person-layer models only; None for full-frame models).
    backdrop = make_backdrop(opts.background, net, source, start, start + len(keypoints), opts.crop, opts.quiet)
    pose_seconds = time.perf_counter() - t0
    # 3-5. Render, generate with feedback, encode with the source's audio.
    frames_written, generate_seconds, has_audio = _render_generate_encode(
        net, keypoints, source, info, start, end, region, output, sbs_path, opts, backdrop=backdrop,
        alpha_path=alpha_path)
    poses_file = poses_path(opts.poses) if isinstance(opts.poses, (str, os.PathLike)) else None
    return _report(t0, paths, info, start, end, region, net, opts, backdrop, frames=frames_written,
                   frames_detected=poses.detected, frames_interpolated=poses.interpolated, frames_held=poses.held,
                   audio=has_audio, poses_file=poses_file, pose_seconds=pose_seconds,
                   generate_seconds=generate_seconds, notes=pose_notes(poses, net))


def _transfer_streamed(t0: float, paths: tuple, info: Any, start: int, end: int, region: tuple[int, int, int, int],
                       net: Any, opts: TransferOptions) -> TransferReport:
    """Steps 1-5 with the source's poses streaming into generation while they are detected
    (see :mod:`.stream`); ``paths`` = (source, output, side-by-side, alpha)."""
    from .stream import SourceStream

    source, output, sbs_path, alpha_path = paths
    # 1. The detection starts in the background, then (2.) a first look gives the statistics.
    stream = SourceStream(source, info, start, end, region, crop=opts.crop, landmarks=net.landmarks,
                          workers=opts.workers, target_size=net.target_size, normalize=opts.normalize,
                          smooth_method=opts.smooth_method, max_gap=opts.max_gap, max_side=DETECT_MAX_SIDE,
                          lookahead=opts.smooth_lookahead)
    try:
        notes = _first_look(stream, net, source, start, end, region, opts)
        backdrop = make_backdrop(opts.background, net, source, start, end, opts.crop, opts.quiet)
        # 3-5. Render, generate and encode each frame soon after it is detected.
        frames_written, generate_seconds, has_audio = _render_generate_encode(
            net, stream, source, info, start, end, region, output, sbs_path, opts, backdrop=backdrop,
            alpha_path=alpha_path, cpu_threads=_generator_threads(stream, net))
    finally:
        stream.close()
    counts = stream.cleaner
    return _report(t0, paths, info, start, end, region, net, opts, backdrop, frames=frames_written,
                   frames_detected=counts.detected, frames_interpolated=counts.interpolated, frames_held=counts.held,
                   audio=has_audio, poses_file=None, pose_seconds=(stream.ended or time.perf_counter()) - t0,
                   generate_seconds=generate_seconds, notes=[stream.truncated] * bool(stream.truncated) + notes,
                   streamed=True)


def _first_look(stream: Any, net: Any, source: Path, start: int, end: int, region: tuple[int, int, int, int],
                opts: TransferOptions) -> list[str]:
    """Step 2's statistics for a streamed transfer, from a first look at a sample of the source's
    frames (while the detection runs); the note on them for the summary."""
    from .stream import first_look_stats

    if not opts.normalize:
        return []
    stats, looked = first_look_stats(source, start, end, opts.crop, region, net.target_size, stream.fps,
                                     DETECT_MAX_SIDE)
    stream.use_stats(stats, net.target_stats)
    if stats is not None:
        return [f"normalised with body statistics from a first look at {looked} frames spread over the source "
                "(--whole-clip: from every frame)"]
    return [f"the first look at {looked} frames of the source found too few showing nose and both ankles; "
            "normalised with statistics of every frame, so generation waited for the whole detection"]


def _generator_threads(stream: Any, net: Any) -> Callable[[], int] | None:
    """On a CPU, the generator's threads for the next frame: while the source is detected beside
    it, the cores the detectors leave (at least one), then all of them again (None elsewhere).
    On two cores, letting the generator keep both threads beside the detector made the bundled
    clip's transfer (tiny model, holistic) 16.4 instead of 19.3 frames/s end to end."""
    if net.device.type != "cpu":
        return None
    full = torch.get_num_threads()
    return lambda: max(1, full - stream.detect_processes) if stream.detecting else full


def _report(t0: float, paths: tuple, info: Any, start: int, end: int, region: tuple[int, int, int, int], net: Any,
            opts: TransferOptions, backdrop: Backdrop | None, notes: list[str], **fields) -> TransferReport:
    """The :class:`TransferReport` of a finished transfer (``fields``: what differs between the
    whole-clip and the streamed pipeline)."""
    source, output, sbs_path, alpha_path = paths
    return TransferReport(
        output=output, side_by_side=sbs_path, source=source, model=getattr(net, "path", None), start=start,
        end=end, fps=float(info.fps), size=(net.letterbox.content_w, net.letterbox.content_h),
        normalized=opts.normalize, device=str(net.device), crop=None if opts.crop is None else region,
        total_seconds=time.perf_counter() - t0, notes=notes + (backdrop.notes if backdrop else []),
        background=backdrop.description if backdrop else None, alpha=alpha_path, **fields)


def _poses_from_file(opts: TransferOptions, source: Path, info: Any, start: int, end: int) -> SourcePoses:
    """Step 1 from ``opts.poses`` (a keypoints file or a PoseSequence) for the frames ``[start, end)``
    of the source described by ``info`` (a VideoInfo); ``--crop`` cannot go with it."""
    if opts.crop is not None:
        raise UserError("--crop chooses the person to detect and cannot be combined with --poses, whose "
                        "keypoints already follow one person; leave out one of the two.")
    return read_source_poses(opts.poses, source, info.frame_count, (info.width, info.height), start, end)


def _check_outputs_are_not_inputs(opts: TransferOptions, source: Path, net: Any, output: Path,
                                  sbs_path: Path | None, alpha_path: Path | None = None) -> None:
    """:class:`UserError` when an output is the source, the model file, the keypoints file or the
    background file, under any name; and for ``--alpha`` or ``--background`` with a full-frame model."""
    inputs = [source, getattr(net, "path", None)]
    if isinstance(opts.poses, (str, os.PathLike)):
        inputs.append(poses_path(opts.poses))
    if opts.background is not None and str(opts.background) not in BACKGROUND_WORDS:
        inputs.append(Path(opts.background))
    for out in (output, sbs_path, alpha_path):
        if out is not None:
            check_not_input(out, inputs)
    # Only a person layer has a matte and a background to swap (checked before the slow work).
    if alpha_path is not None:
        check_layered(net, "--alpha")
    if opts.background is not None and str(opts.background) != "plate":
        check_layered(net, f"--background {opts.background}")


def _source_panels(source: Path, info: Any, start: int, end: int, region: tuple[int, int, int, int],
                   height: int) -> Iterator[np.ndarray]:
    """The left panel of the side-by-side video: the source frames ``[start, end)`` (only
    ``region`` (x, y, w, h)), decoded in a background thread at the scale that makes the region
    ``height`` pixels tall, as uint8 (height, W, 3)."""
    from ..video import ThreadedReader, VideoReader

    scale = height / region[3]
    size = (max(2, round(info.width * scale)), max(2, round(info.height * scale)))
    panels = _cropped(VideoReader(source, start=start, end=end, size=size), region,
                      size[0] / info.width, size[1] / info.height)
    return iter(ThreadedReader(panels, maxsize=8))


def _render_generate_encode(net: Any, keypoints: np.ndarray, source: Path, info: Any, start: int, end: int,
                            region: tuple[int, int, int, int], output: Path, sbs_path: Path | None,
                            opts: TransferOptions, backdrop: Backdrop | None = None,
                            alpha_path: Path | None = None,
                            cpu_threads: Callable[[], int] | None = None) -> tuple[int, float, bool]:
    """Steps 3-5 for (T, K, 3) ``keypoints`` in target-video pixels: the generated video at
    ``output`` (the canvas's content part, the source's fps and audio from frame ``start`` on) and,
    with ``sbs_path``, source | stick figure | generated beside it; a person layer over
    ``backdrop`` (None: its plate) and its matte at ``alpha_path``. ``keypoints`` may be a
    stream and ``cpu_threads`` limit the generator's threads (see :func:`run_generation`).
    Returns the frames written, the seconds of the generation pass and whether the output has
    audio."""
    from ..video import VideoWriter

    box = net.letterbox
    sbs_h = max(box.content_h, SIDE_BY_SIDE_MIN_HEIGHT)
    sbs_h += sbs_h % 2
    encoding = {"quality": opts.quality, "preset": opts.encoder_preset, "audio_from": source,
                "audio_offset": start / float(info.fps), "overwrite": opts.overwrite}
    frames_written = 0
    with VideoWriter(output, info.fps, **encoding) as writer:
        sbs_writer = sbs_frames = alpha_sink = None
        try:
            if alpha_path is not None:
                alpha_sink = open_alpha_sink(alpha_path, info.fps, opts)
            if sbs_path is not None:
                sbs_writer = VideoWriter(sbs_path, info.fps, **encoding)
                sbs_frames = _source_panels(source, info, start, end, region, sbs_h)

            last_src = np.zeros((sbs_h, 2, 3), np.uint8)

            def write(generated: np.ndarray, pose_image: np.ndarray) -> None:
                nonlocal frames_written, last_src
                frame = content_crop(generated, box)
                writer.write(frame)
                if sbs_writer is not None:
                    # A source that decodes fewer frames than before: repeat its last panel.
                    last_src = next(sbs_frames, last_src)
                    sbs_writer.write(hstack([last_src, content_crop(pose_image, box), frame], height=sbs_h))
                frames_written += 1

            def write_layers(colour: np.ndarray, alpha: np.ndarray) -> None:
                write_alpha(alpha_sink, content_crop(colour, box), content_crop(alpha, box))

            generate_seconds = run_generation(
                net, keypoints, write, quiet=opts.quiet,
                backgrounds=None if backdrop is None or backdrop.is_plate else backdrop.frames(len(keypoints)),
                write_layers=write_layers if alpha_sink is not None else None, cpu_threads=cpu_threads)
            if sbs_writer is not None:
                sbs_writer.close()
            if alpha_sink is not None:
                alpha_sink.close()
        except BaseException:
            for sink in (sbs_writer, alpha_sink):
                if sink is not None:
                    sink.abort()
            raise
        finally:
            if sbs_frames is not None:
                sbs_frames.close()
        has_audio = writer.has_audio
    return frames_written, generate_seconds, has_audio

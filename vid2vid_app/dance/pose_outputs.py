"""Pose extraction for a whole input (what `dance pose` runs): detect, clean up, save, draw.

Input: a video, an image, or a folder of images (:func:`vid2vid_app.media.open_media`).
Outputs in ``out_dir``:

* ``keypoints.npz``: the :class:`PoseSequence` (x, y in pixels of the ORIGINAL input, even when
  detection ran on downscaled frames; ``fps`` = 1.0 for images and folders).
* ``openpose/``: one OpenPose BODY_25 JSON file per frame.
* video input: ``pose.mp4`` (stick figures on black at the input's size, same frame count and
  fps) and ``overlay.mp4`` (stick figures over the frames, with the input's audio; a preview, so
  its longer side is at most ``preview_max_side`` (960) or ``max_side`` if smaller).
* image input: ``pose.png`` and ``overlay.png``; folder input: ``pose/<name>.png`` and
  ``overlay/<name>.png``, one per image.

Videos are tracked (one person followed through the clip), gaps are filled and the keypoints
smoothed. Images and the images of a folder are treated as unrelated photos: each is detected
on its own, with no gap filling or smoothing (encode a frame sequence as a video to get those).
All images of a folder must have the same size (one ``size`` per keypoint file).

Other files in ``out_dir`` are never touched, and one process at a time writes into it.
Everything is written into a hidden staging folder inside ``out_dir`` first and moved to the
final names only when all of it is complete; on any error the staging folder is removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import (
    TEMP_MARK,
    check_not_input,
    check_writable,
    os_error_message,
    output_lock,
    remove_stale_temps,
)
from ..imaging import resize_max_side, write_image
from ..media import MediaSource, open_media
from ..pose.detector import DetectionStats, detect_sequence
from ..pose.keypoints import PoseSequence
from ..pose.render import RenderStyle, render_overlay, render_pose
from ..pose.smoothing import SMOOTHING_METHODS, fill_gaps, smooth
from ..progress import progress
from ..video import ThreadedReader, VideoWriter

OUTPUTS = {
    "video": ("keypoints.npz", "openpose", "pose.mp4", "overlay.mp4"),
    "image": ("keypoints.npz", "openpose", "pose.png", "overlay.png"),
    "folder": ("keypoints.npz", "openpose", "pose", "overlay"),
}


@dataclass
class PoseOptions:
    """Settings of :func:`extract_poses`.

    max_side: detect on frames downscaled to this longer side (faster; coordinates stay in
        original pixels). None = full resolution.
    smooth, smooth_method: temporal smoothing of video keypoints (see :func:`smooth`).
    max_gap: longest run of missed video frames bridged by interpolation (None = 0.25 s).
    overlay: also write the overlay preview; preview_max_side caps its longer side.
    preset: x264 preset of the written videos ("veryfast": several times faster than "medium"
        at 1080p for about the same size on stick figures).
    landmarks: "holistic" (body, face-70 and both hands: MediaPipe Holistic) or "body" (the 33
        body landmarks of MediaPipe Pose, about 2.5 times faster).
    workers: processes that detect a video's chunks in parallel (None: every core; videos under
        a few seconds per worker stay in one process).
    """

    max_side: int | None = None
    smooth: bool = True
    smooth_method: str = "one_euro"
    max_gap: int | None = None
    overlay: bool = True
    preview_max_side: int = 960
    preset: str = "veryfast"
    model_complexity: int = 1
    min_confidence: float = 0.5
    style: RenderStyle = field(default_factory=RenderStyle)
    landmarks: str = "holistic"
    workers: int | None = None


@dataclass
class PoseReport:
    """What :func:`extract_poses` did (for the command's summary)."""

    input: Path
    kind: str
    frames: int
    detected: int
    filled: int
    missing: int
    missing_runs: list[tuple[int, int]]
    truncated: bool
    warnings: list[str]
    detect_seconds: float
    total_seconds: float
    outputs: list[Path]
    stats: DetectionStats | None = None

    def summary_lines(self) -> list[str]:
        pct = 100.0 * self.detected / max(self.frames, 1)
        lines = [f"{self.input}: {self.frames} frame(s), a person in {self.detected} ({pct:.0f}%)"]
        if self.kind == "video":
            gaps = f"gaps: {self.filled} frame(s) filled by interpolation, {self.missing} left without a pose"
            if self.missing_runs:
                runs = ", ".join(f"{s}-{e - 1}" if e - s > 1 else str(s) for s, e in self.missing_runs[:6])
                gaps += f" (frames {runs}{' ...' if len(self.missing_runs) > 6 else ''})"
            lines.append(gaps)
        if self.stats is not None and self.stats.landmarks == "holistic":
            lines.append(f"found: {self.stats.part_rates()}")
        rate = self.frames / self.detect_seconds if self.detect_seconds > 0 else float("nan")
        workers = f", {self.stats.workers} processes" if self.stats is not None and self.stats.workers > 1 else ""
        lines.append(f"time: {self.total_seconds:.1f} s (detection {rate:.1f} frames/s{workers})")
        lines.append("wrote: " + ", ".join(p.name + ("/" if p.is_dir() else "") for p in self.outputs)
                     + f" in {self.outputs[0].parent if self.outputs else ''}")
        return lines


def _prepare_out_dir(out_dir: Path, names: tuple[str, ...], input_path: Path, overwrite: bool) -> bool:
    """Check the output folder can take our outputs; create it. Returns True if it was created."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file; the output of dance pose must be a folder.")
    targets = [out_dir / n for n in names]
    resolved_input = input_path.resolve()
    for target in targets:
        if target.resolve() == resolved_input or resolved_input.is_relative_to(target.resolve()):
            raise UserError(f"the input {input_path} would be replaced by the output {target}; "
                            "choose another output folder.")
        check_not_input(target, [input_path])  # hard links; outputs inside an input folder
    existing = [t.name for t in targets if t.exists()]
    if existing and not overwrite:
        raise UserError(f"{out_dir} already holds {', '.join(existing)}; pass --overwrite to replace them.")
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}.") from None
    check_writable(out_dir)  # a read-only or full location fails here, before the detection
    remove_stale_temps(out_dir)  # staging folders of killed runs
    return created


def _put_in_place(staging: Path, out_dir: Path, names: tuple[str, ...]) -> None:
    """Move the staged outputs to their final names in ``out_dir``. An old output of the same
    name is first moved into the staging folder (and removed with it), so a failed move can put
    it back; the folder's other files are never touched."""
    for name in names:
        new, dst = staging / name, out_dir / name
        if not new.exists():
            continue
        old = staging / f".old-{name}"
        if dst.exists() or dst.is_symlink():
            os.replace(dst, old)
        try:
            os.replace(new, dst)
        except OSError:
            if old.exists() or old.is_symlink():
                os.replace(old, dst)
            raise


def _detection_frames(src: MediaSource, max_side: int | None, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Frames for the detector: videos come downscaled from the decoder already; images are
    downscaled here. Images of a folder must all have the first one's size."""
    for i, frame in enumerate(src):
        if src.kind == "folder" and (frame.shape[1], frame.shape[0]) != size:
            raise UserError(f"{src.files[i]} is {frame.shape[1]}x{frame.shape[0]} but {src.files[0]} is "
                            f"{size[0]}x{size[1]}; all images of a folder must have the same size.")
        yield frame if src.kind == "video" else resize_max_side(frame, max_side)


def extract_poses(input_path: str | os.PathLike, out_dir: str | os.PathLike,
                  options: PoseOptions | None = None, overwrite: bool = False,
                  quiet: bool = False) -> PoseReport:
    """Detect, clean up, save and draw the poses of a video, an image or a folder of images.

    Raises :class:`UserError` for unreadable input, outputs that exist (without ``overwrite``),
    an unwritable ``out_dir``, or when no person is found in any frame.
    """
    opt = options or PoseOptions()
    if opt.smooth_method not in SMOOTHING_METHODS:
        raise UserError(f"unknown smoothing method {opt.smooth_method!r}; choose from {', '.join(SMOOTHING_METHODS)}.")
    if opt.max_side is not None and opt.max_side < 16:
        raise UserError(f"--max-side must be at least 16 pixels, got {opt.max_side}.")
    start = time.perf_counter()
    input_path = Path(input_path)
    out_dir = Path(out_dir)

    src = open_media(input_path)
    if src.kind == "video" and opt.max_side:
        src = open_media(input_path, max_side=opt.max_side)  # the decoder downscales cheaply
    size = (src.info.width, src.info.height) if src.kind == "video" else src.size
    names = OUTPUTS[src.kind]
    with output_lock(out_dir):  # one writer per output folder
        return _extract_into(src, input_path, out_dir, names, size, opt, overwrite, quiet, start)


def _extract_into(src: MediaSource, input_path: Path, out_dir: Path, names: tuple[str, ...],
                  size: tuple[int, int], opt: PoseOptions, overwrite: bool, quiet: bool,
                  start: float) -> PoseReport:
    """:func:`extract_poses` with ``out_dir`` locked: check it, stage, detect and draw, put in place."""
    created = _prepare_out_dir(out_dir, names, input_path, overwrite)
    # The pid in the staging folder's name lets a later run remove it if this process is killed.
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".pose.{os.getpid()}-", suffix=TEMP_MARK, dir=out_dir))
    except OSError as exc:
        raise UserError(os_error_message(exc, out_dir, "write into")) from None
    try:
        report = _run(src, input_path, size, opt, staging, quiet, start)
        try:
            _put_in_place(staging, out_dir, names)
        except OSError as exc:
            raise UserError(os_error_message(exc, out_dir, "move the outputs into")) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            try:
                out_dir.rmdir()  # only succeeds while empty
            except OSError:
                pass
        raise
    shutil.rmtree(staging, ignore_errors=True)
    report.outputs = [out_dir / n for n in names if (out_dir / n).exists()]
    report.total_seconds = time.perf_counter() - start
    return report


def _run(src: MediaSource, input_path: Path, size: tuple[int, int], opt: PoseOptions, staging: Path,
         quiet: bool, start: float) -> PoseReport:
    warnings: list[str] = []
    video = src.kind == "video"
    fps = float(src.fps) if video else 1.0

    # 1. Detection: a video over worker processes that decode their own chunks; images here
    #    (decoding in a background thread, overlapping the detector).
    stats = DetectionStats()
    truncated = False
    if video:
        seq = _detect_video(input_path, src.frame_count, fps, size, opt, quiet, stats)
        truncated = len(seq) < src.frame_count
        if truncated:
            warnings.append(f"{input_path} is damaged or cut short (only {len(seq)} of the {src.frame_count} "
                            f"frames in its header could be decoded); poses were extracted from the {len(seq)} "
                            "readable frames.")
    else:
        frames = ThreadedReader(_detection_frames(src, opt.max_side, size), maxsize=8)
        seq = detect_sequence(frames, fps, size, static=True, quiet=quiet, total=src.frame_count,
                              model_complexity=opt.model_complexity, min_confidence=opt.min_confidence,
                              stats=stats, landmarks=opt.landmarks)
    if not seq.valid.any():
        raise UserError(f"no person was detected in any of the {len(seq)} frame(s) of {input_path}.")

    # 2. Clean-up (videos only): bridge short gaps, then smooth.
    seq, gaps = fill_gaps(seq, opt.max_gap if video else 0)
    if video and opt.smooth:
        seq = smooth(seq, opt.smooth_method)

    # 3. Keypoints.
    seq.save(staging / "keypoints.npz")
    if video:
        seq.to_openpose_json(staging / "openpose", stem=input_path.stem)
    else:
        seq.to_openpose_json(staging / "openpose", names=src.names)

    # 4. Drawings.
    if video:
        _draw_video(input_path, src.fps, seq, opt, staging, quiet, warnings)
    else:
        _draw_images(src, seq, opt, staging, quiet)

    return PoseReport(input=input_path, kind=src.kind, frames=len(seq), detected=gaps.detected_frames,
                      filled=gaps.filled_frames, missing=gaps.missing_frames, missing_runs=gaps.missing_runs,
                      truncated=truncated, warnings=warnings, detect_seconds=stats.seconds,
                      total_seconds=time.perf_counter() - start, outputs=[], stats=stats)


def _detect_video(input_path: Path, frame_count: int, fps: float, size: tuple[int, int], opt: PoseOptions,
                  quiet: bool, stats: DetectionStats) -> PoseSequence:
    """The video's poses, detected over ``opt.workers`` processes (each decoding its own chunk at
    ``opt.max_side``); :class:`UserError` when not one frame decodes."""
    from ..pose.parallel import detect_chunked
    from ..video import FrameRange

    try:
        return detect_chunked(FrameRange(input_path, max_side=opt.max_side), frame_count, fps, size,
                              workers=opt.workers, landmarks=opt.landmarks, model_complexity=opt.model_complexity,
                              min_confidence=opt.min_confidence, quiet=quiet, stats=stats)
    except UserError:
        raise UserError(f"{input_path} has no decodable video frames.") from None


def _draw_video(input_path: Path, fps: Fraction, seq: PoseSequence, opt: PoseOptions, staging: Path,
                quiet: bool, warnings: list[str]) -> None:
    """pose.mp4 at the input size and overlay.mp4 at preview size, both encoded in background
    threads while the frames are decoded again in another."""
    width, height = seq.size
    points = seq.packed()  # body, and face and hands when holistic
    preview_points = points
    pose_writer = VideoWriter(staging / "pose.mp4", fps, preset=opt.preset,
                              threaded=True, overwrite=True)
    overlay_writer = None
    frames: Iterator[np.ndarray] = iter(())
    if opt.overlay:
        preview_side = min(opt.max_side or opt.preview_max_side, opt.preview_max_side)
        preview_src = open_media(input_path, max_side=preview_side)
        preview_points = seq.resized_to(preview_src.size).packed()  # keypoints in the preview's pixels
        overlay_writer = VideoWriter(staging / "overlay.mp4", fps, audio_from=input_path,
                                     preset=opt.preset, threaded=True, overwrite=True)
        frames = iter(ThreadedReader(preview_src, maxsize=8))
    written = 0
    try:
        for t in progress(range(len(seq)), total=len(seq), desc="render", unit="frame", quiet=quiet):
            pose_writer.write(render_pose(points[t], width, height, opt.style))
            if overlay_writer is not None:
                frame = next(frames, None)
                if frame is not None:
                    overlay_writer.write(render_overlay(frame, preview_points[t], opt.style))
                    written += 1
        pose_writer.close()
        if overlay_writer is not None:
            overlay_writer.close()
    except BaseException:
        pose_writer.abort()
        if overlay_writer is not None:
            overlay_writer.abort()
        raise
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    if overlay_writer is not None and written < len(seq):
        warnings.append(f"the overlay preview has {written} of {len(seq)} frames "
                        "(the second decoding pass ended early).")


def _draw_images(src: MediaSource, seq: PoseSequence, opt: PoseOptions, staging: Path, quiet: bool) -> None:
    """pose.png / overlay.png for one image; pose/ and overlay/ folders for a folder."""
    width, height = seq.size
    points = seq.packed()
    if src.kind == "folder":
        (staging / "pose").mkdir()
        if opt.overlay:
            (staging / "overlay").mkdir()
    frames = src if opt.overlay else iter(())
    frame_iter = iter(frames)
    for t in progress(range(len(seq)), total=len(seq), desc="render", unit="image", quiet=quiet):
        kp = points[t]
        if src.kind == "image":
            pose_path, overlay_path = staging / "pose.png", staging / "overlay.png"
        else:
            pose_path = staging / "pose" / f"{src.names[t]}.png"
            overlay_path = staging / "overlay" / f"{src.names[t]}.png"
        write_image(pose_path, render_pose(kp, width, height, opt.style))
        if opt.overlay:
            frame = next(frame_iter)
            write_image(overlay_path, render_overlay(frame, kp, opt.style))

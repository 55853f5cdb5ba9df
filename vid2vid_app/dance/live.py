"""Live motion transfer: the trained target person copies whoever is in front of a camera, in a
stream or in a video file, frame by frame as the frames arrive.

:func:`run_live` runs three threads joined by one-item hand-over slots (:class:`LatestSlot`):

1. **capture**: frames from the source (:mod:`.live_sources`), stamped with the moment they
   became available;
2. **pose**: MediaPipe in tracking mode on the newest frame, the pose fitted into the target's
   frame and normalised online (:class:`OnlineNormalizer`), the stick figure rendered;
3. **generate**: the generator on the newest stick figure with its previous output fed back, the
   side-by-side view composed, then handed to the outputs: the window (main thread), the
   recording (a background encoder) and the MJPEG server (:mod:`.live_server`).

Each stage always takes the newest item: a frame that a newer one replaces before the next stage
took it is dropped and counted, so no queue ever grows and the latency stays that of one frame
per stage. A video file without ``realtime`` is the exception: there every frame is processed
(the stages wait for each other instead of dropping), as fast as they go.

**Online normalisation.** The offline normalisation describes the whole source video; live, the
first ``calibrate`` seconds after a person appears serve as the source's sample. Until then the
pose is only fitted into the target's frame, and the status bar asks the person to step back into
full view. Then the body statistics are computed from that window and frozen (re-calibration: `c`
in the window or the page's button); a window in which the feet and face were not visible often
enough is extended until they were. Each frame is then normalised like a frame of the offline
pipeline, against the anchor of the calibration window; a frame without visible ankles keeps the
scale and shift of the last frame that had them.

**Statistics.** ``frames_in`` frames were captured, ``frames_out`` results produced and
``frames_dropped`` replaced before the next stage took them (frames_in = frames_out +
frames_dropped). Latency is from the moment a frame was captured to the moment its view was
ready; fps is results per second from the first captured frame to the last result;
``cpu_ms_per_frame_out`` the CPU time of the whole process (every thread) per result over the same
span, a figure that other programs busy on the same cores change much less than fps and latency.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from ..errors import UserError

T = TypeVar("T")
CALIBRATION_MAX_FRAMES = 900  # the calibration sample keeps at most this many recent frames
CALIBRATED_NOTICE_S = 2.0  # how long the status bar says "calibrated" afterwards


@dataclass
class LiveOptions:
    """Settings of :func:`run_live`.

    source: camera number, /dev/videoN, stream URL or video file (see :mod:`.live_sources`).
    window, output, serve: the outputs (at least one): an OpenCV window, a recording (.mp4/.mkv/
        .mov/.m4v) of the view with wall-clock timing, an MJPEG server on ``host``:``serve``
        (0: a free port).
    realtime: pace a file at its frame rate (dropping frames the pipeline cannot keep up with);
        loop: start a file again at its end.
    calibrate: seconds of the calibration window; normalize: False fits the pose into the
        target's frame without normalising (for a source filmed like the target).
    duration: stop after this many seconds (None: at the end of the source, q, Esc or Ctrl-C).
    stats_json: write the statistics there at the end.
    record_fps: frame rate of the recording (None: the source's).
    quality, encoder_preset: x264 CRF and speed preset of the recording.
    open_timeout: seconds allowed for opening a camera or stream and for each of its frames.
    """

    source: str | int = "0"
    window: bool = False
    output: Path | None = None
    serve: int | None = None
    host: str = "127.0.0.1"
    realtime: bool = False
    loop: bool = False
    calibrate: float = 3.0
    normalize: bool = True
    duration: float | None = None
    stats_json: Path | None = None
    record_fps: float | None = None
    quality: int = 23
    encoder_preset: str = "veryfast"
    device: str | None = "auto"
    open_timeout: float = 5.0
    overwrite: bool = False


# ------------------------------------------------------------------------------------------------
# Hand-over between threads


class LatestSlot(Generic[T]):
    """Hands items from one thread to the next, holding at most one.

    Lossy (``lossless=False``): :meth:`put` replaces an item not yet taken, which counts as
    dropped (``on_drop(1)``). Lossless: :meth:`put` waits until the previous item was taken.
    :meth:`close` means no more items (a waiting :meth:`get` still receives the last one);
    :meth:`stop` ends at once and drops the item held (and any later put).
    """

    def __init__(self, lossless: bool = False, on_drop: Callable[[int], None] | None = None) -> None:
        self.lossless = lossless
        self._on_drop = on_drop or (lambda n: None)
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = self._stopped = False

    def put(self, item: T) -> None:
        with self._cond:
            if self.lossless:
                self._cond.wait_for(lambda: self._item is None or self._stopped)
            if self._stopped:
                self._on_drop(1)
                return
            if self._item is not None:
                self._on_drop(1)
            self._item = item
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """The item (taken out of the slot), or None when the slot ended or ``timeout`` passed."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed or self._stopped, timeout)
            if self._stopped or self._item is None:
                return None
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    @property
    def finished(self) -> bool:
        """True once nothing more will come out of the slot."""
        with self._cond:
            return self._stopped or (self._closed and self._item is None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            if not self._stopped and self._item is not None:
                self._on_drop(1)
            self._item, self._stopped = None, True
            self._cond.notify_all()


# ------------------------------------------------------------------------------------------------
# Statistics


class LiveStats:
    """Counts and latencies of a session (thread-safe); see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames_in = self.frames_out = self.frames_dropped = self.frames_without_person = 0
        self.latencies_ms: list[float] = []
        self.t_first_in: float | None = None
        self.t_last_out: float | None = None
        # Process CPU time at the first frame and at the latest result: what the session itself
        # cost per result, which other processes on the machine do not change (much).
        self._cpu_first: float | None = None
        self._cpu_last = 0.0
        self._recent_out: collections.deque[float] = collections.deque(maxlen=30)
        self._recent_ms: collections.deque[float] = collections.deque(maxlen=30)

    def captured(self, t: float) -> None:
        with self._lock:
            self.frames_in += 1
            if self.t_first_in is None:
                self.t_first_in, self._cpu_first = t, time.process_time()

    def dropped(self, n: int = 1) -> None:
        with self._lock:
            self.frames_dropped += n

    def output(self, t_capture: float, t_ready: float, person: bool) -> None:
        with self._lock:
            self.frames_out += 1
            self.frames_without_person += not person
            ms = 1000.0 * (t_ready - t_capture)
            self.latencies_ms.append(ms)
            self._recent_ms.append(ms)
            self._recent_out.append(t_ready)
            self.t_last_out, self._cpu_last = t_ready, time.process_time()

    def recent(self) -> tuple[float, float]:
        """(frames/s, median latency in ms) over the last 30 results, for the status bar."""
        with self._lock:
            times, ms = list(self._recent_out), list(self._recent_ms)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        return fps, float(np.median(ms)) if ms else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The ``--stats-json`` contents; fps and latencies are None before the first result.
        ``cpu_ms_per_frame_out``: CPU time of the whole process (all threads) per result."""
        with self._lock:
            ms = np.asarray(self.latencies_ms, dtype=np.float64)
            span = (self.t_last_out - self.t_first_in) if self.frames_out and self.t_first_in is not None else 0.0
            cpu = (self._cpu_last - self._cpu_first) if self.frames_out and self._cpu_first is not None else 0.0
            return {
                "frames_in": self.frames_in,
                "frames_out": self.frames_out,
                "frames_dropped": self.frames_dropped,
                "fps": round(self.frames_out / span, 3) if span > 0 else None,
                "latency_ms_p50": round(float(np.percentile(ms, 50)), 2) if ms.size else None,
                "latency_ms_p95": round(float(np.percentile(ms, 95)), 2) if ms.size else None,
                "frames_without_person": self.frames_without_person,
                "seconds": round(span, 3),
                "cpu_ms_per_frame_out": round(1000 * cpu / self.frames_out, 2) if self.frames_out > 1 else None,
            }


# ------------------------------------------------------------------------------------------------
# Online normalisation


def has_ankles(keypoints: np.ndarray, size: tuple[int, int]) -> bool:
    """True when a pose (K, 3) (33 body points, or 145 packed holistic points) shows both
    ankles clearly enough for normalisation."""
    from ..pose.keypoints import PoseSequence
    from ..pose.normalize import frame_measures

    ankle_y, _ = frame_measures(PoseSequence.from_packed(keypoints[None], size, 1.0))
    return bool(np.isfinite(ankle_y[0]))


class OnlineNormalizer:
    """Global pose normalisation on a live stream (see the module docstring).

    ``target_stats`` / ``target_size`` (w, h) describe the target video; poses come in already
    fitted into a frame of ``target_size``. :meth:`update` is called from one thread;
    :meth:`recalibrate` from any.
    """

    def __init__(self, target_stats: Any, target_size: tuple[int, int], seconds: float = 3.0,
                 enabled: bool = True) -> None:
        self.target_stats = target_stats
        self.size = (int(target_size[0]), int(target_size[1]))
        self.seconds = float(seconds)
        self.enabled = enabled
        self._reset = threading.Event()
        self.calibrations = 0
        self._start_over()

    def _start_over(self) -> None:
        self.stats = None
        self.anchor: tuple[float, float] | None = None
        self._sample: collections.deque[np.ndarray] = collections.deque(maxlen=CALIBRATION_MAX_FRAMES)
        self._t_start: float | None = None
        self._last_grounded: np.ndarray | None = None
        self._calibrated_at = 0.0

    @property
    def calibrated(self) -> bool:
        return self.stats is not None

    def recalibrate(self) -> None:
        """Start a new calibration window at the next frame."""
        self._reset.set()

    def update(self, keypoints: np.ndarray | None, t: float) -> tuple[np.ndarray | None, str]:
        """(K, 3) keypoints in target-frame pixels (None: nobody) at time ``t`` (seconds) ->
        (the keypoints to draw, or None; a status line, "" when there is nothing to say)."""
        if not self.enabled:
            return keypoints, ""
        if self._reset.is_set():
            self._reset.clear()
            self._start_over()
        if self.stats is None:
            return self._calibrate(keypoints, t)
        recent = t - self._calibrated_at < CALIBRATED_NOTICE_S
        notice = "calibrated: poses normalised onto the target" if recent else ""
        if keypoints is None:
            return None, notice
        return self._normalize(keypoints), notice

    def _calibrate(self, keypoints: np.ndarray | None, t: float) -> tuple[np.ndarray | None, str]:
        from ..pose.keypoints import PoseSequence
        from ..pose.normalize import compute_stats

        if keypoints is None:
            return None, "calibrating: step into view, whole body from head to feet"
        if self._t_start is None:
            self._t_start = t
        self._sample.append(keypoints)
        left = self.seconds - (t - self._t_start)
        if left > 0:
            return keypoints, f"calibrating: step back so your whole body is in view ({left:.1f} s)"
        sample = PoseSequence.from_packed(np.stack(self._sample), self.size, 1.0)
        try:
            stats = compute_stats(sample)
        except UserError:
            found = sum(has_ankles(kp, self.size) for kp in self._sample)
            return keypoints, f"calibrating: show your feet and face ({found} frames with both feet so far)"
        from ..pose import skeleton as sk

        grounded = [kp for kp in self._sample if has_ankles(kp, self.size)]
        # The anchor as offline: the image centre and the lower ankle of the first grounded frame.
        ankle_y = float(max(grounded[0][sk.L_ANKLE, 1], grounded[0][sk.R_ANKLE, 1]))
        self.stats, self.anchor = stats, (self.size[0] / 2, ankle_y)
        self._last_grounded, self._calibrated_at = grounded[-1], t
        self.calibrations += 1
        return self._normalize(keypoints), "calibrated: poses normalised onto the target"

    def _normalize(self, keypoints: np.ndarray) -> np.ndarray:
        from ..pose.keypoints import PoseSequence
        from ..pose.normalize import normalize

        # Two frames: the last one with both ankles first, so that a frame without them takes
        # its scale and shift (normalize holds them forward), exactly as offline.
        pair = PoseSequence.from_packed(np.stack([self._last_grounded, keypoints]), self.size, 1.0)
        out = normalize(pair, self.stats, self.target_stats, anchor=self.anchor).packed()[-1]
        if has_ankles(keypoints, self.size):
            self._last_grounded = keypoints
        return out


# ------------------------------------------------------------------------------------------------
# The stages


@dataclass
class Captured:
    """A frame as captured: uint8 (H, W, 3) RGB ``image``, ``t_capture`` (time.perf_counter()
    when it became available) and ``t_media`` (seconds on the source's own clock)."""

    image: np.ndarray
    t_capture: float
    t_media: float


@dataclass
class Posed:
    """A frame after the pose stage. ``keypoints`` (K, 3) in target-video pixels (None: nobody in
    view), ``stick`` the uint8 stick figure on the model's canvas (black without a person),
    ``pose_input`` the generator's pose input (1, 3, H, W) float32 in [-1, 1] (None without a
    person), ``face_box`` (4,) or None, ``status`` a line for the status bar."""

    frame: Captured
    keypoints: np.ndarray | None
    stick: np.ndarray
    pose_input: np.ndarray | None
    face_box: np.ndarray | None
    status: str


@dataclass
class View:
    """What goes to the outputs: the side-by-side ``image`` and the ``result`` panel (uint8 RGB),
    and ``t_show``, the moment it stands for in the recording (seconds)."""

    image: np.ndarray
    result: np.ndarray
    t_show: float


class PoseStage:
    """The pose thread's work on one frame: detect (tracking mode), fit the pose into the target's
    frame, normalise it online, draw the stick figure. Numpy only (no torch op competes with the
    generator's threads)."""

    def __init__(self, model: Any, detector: Any, normalizer: OnlineNormalizer,
                 source_size: tuple[int, int]) -> None:
        self.model, self.detector, self.normalizer = model, detector, normalizer
        from ..imaging import letterbox_geometry

        self._fit = letterbox_geometry(*source_size, *model.target_size)
        w, h = model.resolution
        self._blank = np.zeros((h, w, 3), np.uint8)
        self._last_box: np.ndarray | None = None

    def __call__(self, frame: Captured) -> Posed:
        from ..imaging import keypoints_to_canvas, to_float_array

        raw = self.detector.detect(frame.image)
        person = bool(np.isfinite(raw[:, :2]).all(axis=1).any())
        # The source frame fitted into the target's frame as a letterbox would (as offline).
        fitted = keypoints_to_canvas(raw, self._fit) if person else None
        keypoints, status = self.normalizer.update(fitted, frame.t_media)
        if keypoints is None:
            prompt = status if status.startswith("calibrating") else "nobody in view"
            return Posed(frame, None, self._blank, None, None, prompt)
        stick = self.model.render(keypoints)
        if self.model.face_generator is not None:
            box = self.model.face_box(keypoints)
            # A frame where the face cannot be placed keeps the previous face box (as offline).
            if box is not None and np.isfinite(box).all():
                self._last_box = np.asarray(box, np.float32)
        return Posed(frame, keypoints, stick, to_float_array(stick), self._last_box, status)


class GenerateStage:
    """The generator thread's work on one posed frame: generate with the previous output fed back
    (or hold the last result, or the waiting screen, when nobody is in view), compose the view."""

    def __init__(self, model: Any, layout: Any, stats: LiveStats, hint: str = "") -> None:
        from .live_view import waiting_screen

        self.model, self.layout, self.stats, self.hint = model, layout, stats, hint
        box = model.letterbox
        self.waiting = waiting_screen(box.content_w, box.content_h)
        self.prev = None
        self.last_result: np.ndarray | None = None

    def __call__(self, posed: Posed) -> tuple[np.ndarray, np.ndarray, float]:
        """(view, result panel, time it was ready)."""
        import torch

        from ..imaging import to_uint8
        from .live_view import compose
        from .transfer import content_crop

        box = self.model.letterbox
        if posed.pose_input is not None:
            boxes = None if posed.face_box is None else posed.face_box[None]
            out = self.model.generate(torch.from_numpy(posed.pose_input), self.prev, boxes=boxes)
            self.prev = out
            self.last_result = content_crop(to_uint8(out)[0], box)
        result = self.last_result if self.last_result is not None else self.waiting
        fps, ms = self.stats.recent()
        lines = [f"{fps:4.1f} frames/s   latency {ms:3.0f} ms   dropped {self.stats.frames_dropped}",
                 posed.status or self.hint]
        view = compose(self.layout, posed.frame.image, content_crop(posed.stick, box), result, lines)
        t_ready = time.perf_counter()
        self.stats.output(posed.frame.t_capture, t_ready, posed.pose_input is not None)
        return view, result, t_ready


# ------------------------------------------------------------------------------------------------
# The session: threads, outputs, shutdown


class _Session:
    """The three stage threads and the main thread's loop (window or waiting) of one run."""

    def __init__(self, opts: LiveOptions, source: Any, pose: PoseStage, generate: GenerateStage,
                 stats: LiveStats, recorder: Any, server: Any, window: Any) -> None:
        self.opts, self.source, self.pose, self.generate, self.stats = opts, source, pose, generate, stats
        self.recorder, self.server, self.window = recorder, server, window
        lossless = not source.live
        self.frames: LatestSlot[Captured] = LatestSlot(lossless, stats.dropped)
        self.posed: LatestSlot[Posed] = LatestSlot(lossless, stats.dropped)
        # Views the window has not shown yet are replaced, but they were output (recorded, served).
        self.display: LatestSlot[View] = LatestSlot(False)
        self.errors: list[BaseException] = []
        self.t_end: float | None = None

    # --- threads -------------------------------------------------------------------------------
    def _guard(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises
                self.errors.append(exc)
                self.stop()

        return run

    def _capture(self) -> None:
        try:
            for t_media, image in self.source.frames():
                t = time.perf_counter()
                self.stats.captured(t)
                self.frames.put(Captured(image, t, t_media))
        finally:
            self.frames.close()

    def _pose(self) -> None:
        try:
            while (frame := self.frames.get()) is not None:
                self.posed.put(self.pose(frame))
        finally:
            self.posed.close()

    def _generate(self) -> None:
        try:
            while (posed := self.posed.get()) is not None:
                image, result, t_ready = self.generate(posed)
                view = View(image, result, t_ready if self.source.live else posed.frame.t_media)
                self._publish(view)
        finally:
            self.display.close()

    def _publish(self, view: View) -> None:
        if self.window is not None:
            self.display.put(view)
        if self.recorder is not None:
            self.recorder.add(view.image, view.t_show)
        if self.server is not None:
            self.server.publish("stream", view.image)
            self.server.publish("result", view.result)
        self.t_end = view.t_show

    def stop(self) -> None:
        """End every stage now: frames in flight are dropped (and counted)."""
        self.source.close()
        for slot in (self.frames, self.posed, self.display):
            slot.stop()

    # --- main thread -------------------------------------------------------------------------
    def _step(self, generator: threading.Thread, t_start: float) -> str | None:
        """One turn of the main loop: show the newest view and read the keys (window) or wait a
        little; returns why the session ends, or None to go on."""
        if self.window is not None:
            view = self.display.get(timeout=0.01)
            if view is not None:
                self.window.show(view.image)
            action = self.window.poll()
            if action == "quit":
                return "quit"
            if action == "recalibrate":
                self.pose.normalizer.recalibrate()
        else:
            generator.join(0.1)
        if self.errors:
            return "error"
        if not generator.is_alive():
            return "end"
        if self.opts.duration is not None and time.perf_counter() - t_start >= self.opts.duration:
            return "duration"
        return None

    def run(self) -> str:
        """Run until the source ends, the user quits or ``duration`` passes; returns which:
        "end", "quit", "interrupted", "duration" or "error" (:attr:`errors` holds the error)."""
        stages = [threading.Thread(target=self._guard(body), name=f"live-{name}", daemon=True)
                  for name, body in (("capture", self._capture), ("pose", self._pose),
                                     ("generate", self._generate))]
        for thread in stages:
            thread.start()
        t_start, reason = time.perf_counter(), None
        try:
            while reason is None:
                reason = self._step(stages[-1], t_start)
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            self.stop()
            # The generator finishes its frame (its result is output); a camera read may take up
            # to the open timeout. Threads still running after that are daemons and left behind.
            for thread in reversed(stages):
                thread.join(timeout=self.opts.open_timeout + 5.0)
        if self.t_end is not None and self.source.live:
            self.t_end = max(self.t_end, time.perf_counter())
        return reason


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (e.g. from a service manager) ends the session like Ctrl-C: outputs finalised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------------------------
# Entry point


@dataclass
class LiveReport:
    """What :func:`run_live` did: ``stats`` as :meth:`LiveStats.as_dict`, why it ``ended``
    ("end", "quit", "interrupted", "duration"), the recording and the server's URL."""

    source: str
    stats: dict[str, Any]
    ended: str
    device: str
    calibrated: bool
    recording: Path | None = None
    recorded_frames: int = 0
    served: str | None = None
    stats_json: Path | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = self.stats
        how = {"end": "the source ended", "quit": "quit", "interrupted": "interrupted",
               "duration": "the --duration passed"}.get(self.ended, self.ended)
        fps = "-" if s["fps"] is None else f"{s['fps']:.1f}"
        lines = [f"{self.source}: {s['frames_in']} frames in, {s['frames_out']} out ({fps} frames/s), "
                 f"{s['frames_dropped']} dropped; stopped because {how}"]
        if s["latency_ms_p50"] is not None:
            cpu = "" if s["cpu_ms_per_frame_out"] is None else f", {s['cpu_ms_per_frame_out']:.0f} ms CPU per result"
            lines.append(f"latency {s['latency_ms_p50']:.0f} ms median, {s['latency_ms_p95']:.0f} ms at the 95th "
                         f"percentile{cpu}; nobody in view in {s['frames_without_person']} frames; device {self.device}")
        if not self.calibrated and s["frames_out"]:
            lines.append("the poses were not normalised: calibration did not finish (the whole body, feet "
                         "included, must be in view for the --calibrate window) or --no-normalize was given")
        if self.recording is not None:
            lines.append(f"wrote {self.recording} ({self.recorded_frames} frames)")
        if self.stats_json is not None:
            lines.append(f"wrote {self.stats_json}")
        lines.extend(self.notes)
        return "\n".join(lines)


def check_options(opts: LiveOptions) -> None:
    """Refuse impossible settings before anything starts (:class:`UserError`)."""
    from ..fileio import check_not_input, check_output_path
    from ..video.writer import check_video_suffix

    if not (opts.window or opts.output is not None or opts.serve is not None):
        raise UserError("dance live needs at least one output: --window, -o OUT.mp4 or --serve PORT.")
    if opts.calibrate <= 0:
        raise UserError(f"--calibrate {opts.calibrate:g}: the calibration window must be longer than 0 s "
                        "(use --no-normalize to skip normalisation).")
    if opts.duration is not None and opts.duration <= 0:
        raise UserError(f"--duration {opts.duration:g} must be longer than 0 s.")
    if opts.serve is not None and not 0 <= opts.serve <= 65535:
        raise UserError(f"--serve {opts.serve} is not a port number (1-65535, or 0 for any free port).")
    source = Path(str(opts.source))
    for path in (opts.output, opts.stats_json):
        if path is not None:
            check_not_input(path, [source] if source.is_file() else [])
            check_output_path(path, opts.overwrite)
    if opts.output is not None:
        check_video_suffix(Path(opts.output))
    if opts.stats_json is not None and opts.output is not None and Path(opts.output).resolve() == Path(
            opts.stats_json).resolve():
        raise UserError("-o and --stats-json name the same file; give two different files.")
    if opts.window:
        from .live_view import check_display

        check_display()


def _warm_up(model: Any) -> None:
    """Run the generator twice on blank input so that the first real frame does not pay for
    memory allocation and kernel selection."""
    import torch

    if model.device.type == "cuda":
        # Every frame has the same size: cuDNN may time its kernels once and keep the fastest.
        torch.backends.cudnn.benchmark = True
    w, h = model.resolution
    blank = torch.zeros(1, 3, h, w)
    model.generate(blank, model.generate(blank))


def _finish_recording(recorder: Any, t_end: float | None, failed: bool) -> tuple[Path | None, str | None]:
    """Close (or, after an error, abort) the recording; (its path or None, a note or None)."""
    if recorder is None:
        return None, None
    if failed:
        recorder.abort()
        return None, None
    path = recorder.close(t_end)
    return path, None if path is not None else f"nothing was recorded to {recorder.path} (no frame was shown)."


def run_live(model: Any, options: LiveOptions | None = None, runs_dir: str | os.PathLike | None = None,
             announce: Callable[[str], None] | None = None) -> LiveReport:
    """Live motion transfer (see the module docstring) until the source ends, the user quits
    (q, Esc, Ctrl-C) or ``options.duration`` passes.

    model: a DanceModel, a model name in ``runs_dir``, a run folder or a model file.
    announce: called with a line the user needs while the session runs (the server's URL).
    Returns a :class:`LiveReport`; raises :class:`UserError` for bad input (no output chosen, a
    source that cannot be opened, a port in use, an existing output without ``overwrite``).
    """
    from ..pose.detector import PoseDetector
    from .live_server import FrameServer
    from .live_sources import open_source
    from .live_view import Recorder, Window, panel_layout
    from .transfer import load_model

    opts = options or LiveOptions()
    check_options(opts)
    stats = LiveStats()
    normalizers: list[OnlineNormalizer] = []  # the server's re-calibrate button reaches it here
    with contextlib.ExitStack() as stack:
        server = None
        if opts.serve is not None:  # bound first: a port in use fails before any slow start-up
            server = FrameServer(opts.serve, opts.host, stats=stats.as_dict,
                                 recalibrate=lambda: [n.recalibrate() for n in normalizers])
            stack.callback(server.close)
        source = open_source(opts.source, realtime=opts.realtime, loop=opts.loop, timeout=opts.open_timeout)
        stack.callback(source.close)
        net = load_model(model, opts.device, runs_dir)
        # The landmarks the model's stick figures were drawn from (holistic: also face and hands).
        detector = stack.enter_context(PoseDetector(static_image_mode=False,
                                                    landmarks=getattr(net, "landmarks", "body")))
        normalizers.append(OnlineNormalizer(net.target_stats, net.target_size, opts.calibrate, opts.normalize))
        _warm_up(net)
        box = net.letterbox
        layout = panel_layout(source.size, (box.content_w, box.content_h))
        recorder = None
        if opts.output is not None:
            recorder = Recorder(opts.output, opts.record_fps or source.fps, quality=opts.quality,
                                preset=opts.encoder_preset, overwrite=opts.overwrite)
            stack.callback(recorder.abort)  # no-op once closed; removes the temp file after an error
        window = None
        if opts.window:
            window = Window()
            stack.callback(window.close)
        hint = "q or Esc quits, c re-calibrates" if window is not None else source.name
        session = _Session(opts, source, PoseStage(net, detector, normalizers[0], source.size),
                           GenerateStage(net, layout, stats, hint), stats, recorder, server, window)
        if server is not None:
            server.start()
            if announce is not None:
                announce(f"serving {server.url} (stream: {server.url}stream.mjpg)")
        with _sigterm_as_interrupt():
            ended = session.run()
        recording, note = _finish_recording(recorder, session.t_end, ended == "error")
        if ended == "error":
            raise session.errors[0]
    notes = [n for n in (source.end_note if ended == "end" else None, note) if n]
    report = LiveReport(source=source.name, stats=stats.as_dict(), ended=ended, device=str(net.device),
                        calibrated=normalizers[0].calibrations > 0, recording=recording,
                        recorded_frames=recorder.frames_written if recording is not None else 0,
                        served=server.url if server is not None else None, stats_json=opts.stats_json,
                        notes=notes)
    if opts.stats_json is not None:
        from ..fileio import write_json_atomic

        write_json_atomic(opts.stats_json, {**report.stats, "ended": ended, "source": source.name},
                          replace=opts.overwrite)
    return report

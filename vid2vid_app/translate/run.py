"""Frame-wise translation of a video, an image or a folder of images with one generator.

:func:`translate_media` is the whole pipeline in one call:

1. open the input (:func:`vid2vid_app.media.open_media`) and decode it in a background thread;
2. group frames into batches of equal size, optionally resize them (``size``), reflect-pad them to
   the generator's stride;
3. run the generator (``torch.inference_mode``, bf16/fp16 autocast and channels_last on GPU) and crop
   the padding back off;
4. optionally reduce flicker (:mod:`.flicker`) and place input | output side by side;
5. encode in a background thread into an output of the same kind (video: same fps, frame count and
   the input's audio; folder: same file names), written to a temp path and renamed when complete.

Decoding, post-processing and encoding overlap with generation, so end to end runs close to the
generator's own speed. :class:`FrameTranslator` (steps 2-3) is usable on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..device import autocast, autocast_dtype, resolve_device, reuse_freed_memory
from ..errors import UserError
from ..imaging import crop_to, hstack, pad_to_multiple, to_tensor, to_uint8
from .flicker import FlickerConfig, FlickerSmoother


def parse_size(text: str | None) -> tuple[int, int] | int | None:
    """``--size``: "WxH" (exact size) or "N" (longer side N, aspect kept) or None."""
    if text in (None, ""):
        return None
    text = str(text).lower().strip()
    try:
        if "x" in text:
            w, h = (int(v) for v in text.split("x", 1))
            if w < 1 or h < 1:
                raise ValueError
            return (w, h)
        n = int(text)
        if n < 1:
            raise ValueError
        return n
    except ValueError:
        raise UserError(f"size {text!r} is not WIDTHxHEIGHT or a positive number of pixels.") from None


def target_size(width: int, height: int, size: tuple[int, int] | int | None) -> tuple[int, int]:
    """(w, h) a ``width`` x ``height`` frame is processed at for a ``size`` from :func:`parse_size`."""
    if size is None:
        return width, height
    if isinstance(size, tuple):
        return size
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class FrameTranslator:
    """One generator applied to batches of uint8 HWC RGB frames of one size.

    Frames are optionally resized (``size``), converted to [-1, 1], reflect-padded to the generator's
    stride, generated and cropped back; returns uint8 frames of the processed size.
    """

    def __init__(self, generator: nn.Module, device: torch.device | str = "cpu",
                 size: tuple[int, int] | int | None = None, amp: bool = True):
        self.device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
        self.generator = generator.to(self.device).eval()
        self.stride = int(getattr(generator, "stride", 1))
        self.size = size
        self.dtype = autocast_dtype(self.device) if amp else None
        if self.device.type == "cuda":
            self.generator = self.generator.to(memory_format=torch.channels_last)
        else:
            # Every batch allocates the same large activation buffers: keep freed memory for reuse
            # instead of paying the kernel to map and zero it again (see device.reuse_freed_memory).
            reuse_freed_memory()

    def processed_size(self, width: int, height: int) -> tuple[int, int]:
        return target_size(width, height, self.size)

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """``frames``: uint8 (H, W, 3), all of one size -> generated uint8 (h, w, 3) at the processed
        size."""
        h, w = frames[0].shape[:2]
        pw, ph = self.processed_size(w, h)
        if (pw, ph) != (w, h):
            interp = cv2.INTER_AREA if pw * ph < w * h else cv2.INTER_CUBIC
            frames = [cv2.resize(f, (pw, ph), interpolation=interp) for f in frames]
        batch = to_tensor(np.stack(frames))
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
            batch = batch.contiguous(memory_format=torch.channels_last)
        padded, original = pad_to_multiple(batch, self.stride)
        with torch.inference_mode(), autocast(self.device, self.dtype):
            out = self.generator(padded)
        return list(to_uint8(crop_to(out.float(), original)))


def batches(frames: Iterable[np.ndarray], batch_size: int) -> Iterator[list[np.ndarray]]:
    """Group frames into lists of at most ``batch_size`` frames of the same size (a folder of mixed
    sizes starts a new batch whenever the size changes)."""
    current: list[np.ndarray] = []
    for frame in frames:
        if current and (len(current) >= batch_size or frame.shape != current[0].shape):
            yield current
            current = []
        current.append(frame)
    if current:
        yield current


@dataclass
class TranslateOptions:
    """Options of :func:`translate_media` (see the CLI for the user-facing descriptions)."""

    batch_size: int = 4
    size: tuple[int, int] | int | None = None
    device: str = "auto"
    amp: bool = True
    side_by_side: bool = False
    reduce_flicker: bool = False
    flicker_config: FlickerConfig = field(default_factory=FlickerConfig)
    quality: int = 18
    encoder_preset: str = "medium"  # x264 speed preset of video outputs
    keep_audio: bool = True
    overwrite: bool = False
    quiet: bool = False
    prefetch: int = 8


@dataclass
class TranslateReport:
    """What :func:`translate_media` did."""

    output: Path
    kind: str
    frames: int
    size: tuple[int, int]  # (w, h) of the output frames
    seconds: float
    has_audio: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def translate_media(input_path: str | Path, output_path: str | Path, generator: nn.Module,
                    options: TranslateOptions | None = None) -> TranslateReport:
    """Translate every frame of ``input_path`` (video, image or folder) into ``output_path``.

    The output has the input's kind and frame count (videos also its fps and audio). It is written
    to a temporary path and moved into place only when complete; an existing output is refused
    unless ``options.overwrite`` (a folder output then keeps its other files); the output may never
    be the input itself nor lie inside an input folder. One writer per output: while another
    process writes ``output_path`` this raises :class:`~vid2vid_app.fileio.Busy`.
    """
    from ..fileio import check_not_input, output_lock

    check_not_input(output_path, [input_path])
    with output_lock(output_path):
        return _translate_media(Path(input_path), Path(output_path), generator, options or TranslateOptions())


def _translate_media(input_path: Path, output_path: Path, generator: nn.Module,
                     opts: TranslateOptions) -> TranslateReport:
    """:func:`translate_media` with its output locked."""
    from ..media import open_media, open_sink
    from ..progress import progress
    from ..video import ThreadedConsumer, ThreadedReader, probe

    if opts.batch_size < 1:
        raise UserError(f"batch size {opts.batch_size} must be at least 1.")

    # 1. Input, decoded in a background thread.
    source = open_media(input_path)
    translator = FrameTranslator(generator, resolve_device(opts.device), size=opts.size, amp=opts.amp)
    smoother = FlickerSmoother(opts.flicker_config) if opts.reduce_flicker else None
    start = time.perf_counter()
    frames_done = 0
    out_size: tuple[int, int] | None = None

    with open_sink(output_path, like=source, overwrite=opts.overwrite, keep_audio=opts.keep_audio,
                   quality=opts.quality, preset=opts.encoder_preset) as sink:

        # 4-5. Post-processing and encoding run in their own thread, in frame order.
        def finish(pair: object) -> None:
            frame_in, frame_out = pair  # type: ignore[misc]
            if smoother is not None:
                if frame_in.shape[:2] != frame_out.shape[:2]:
                    frame_in = cv2.resize(frame_in, (frame_out.shape[1], frame_out.shape[0]),
                                          interpolation=cv2.INTER_AREA)
                frame_out = smoother(frame_in, frame_out)
            if opts.side_by_side:
                frame_out = hstack([frame_in, frame_out], height=frame_out.shape[0])
            sink.write(frame_out)

        writer = ThreadedConsumer(finish, maxsize=max(2, opts.batch_size * 2), name="translate-encode")
        reader = ThreadedReader(source, maxsize=opts.prefetch)
        bar = progress(total=source.frame_count or None, desc="translate", unit="frame", quiet=opts.quiet)
        try:
            # 2-3. Batches through the generator.
            for batch in batches(reader, opts.batch_size):
                outputs = translator(batch)
                for frame_in, frame_out in zip(batch, outputs, strict=True):
                    writer.put((frame_in, frame_out))
                out_size = (outputs[0].shape[1], outputs[0].shape[0])
                frames_done += len(batch)
                bar.update(len(batch))
            writer.close()
        except BaseException:
            _close_quietly(reader)
            try:
                writer.close()
            except BaseException:  # noqa: BLE001 - the first error is the one to report
                pass
            raise
        finally:
            bar.close()
    warnings = []
    if source.truncated:
        warnings.append(f"{input_path} is damaged or cut short ({source.error}); the {frames_done} readable "
                        "frames were translated.")
    if frames_done == 0:
        raise UserError(f"{input_path} has no frames to translate.")
    seconds = time.perf_counter() - start
    assert out_size is not None
    if opts.side_by_side:
        out_size = (out_size[0] * 2, out_size[1])
    return TranslateReport(output=output_path, kind=source.kind, frames=frames_done, size=out_size,
                           seconds=seconds, has_audio=source.kind == "video" and probe(output_path).has_audio,
                           warnings=warnings)


def _close_quietly(obj: object) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001
            pass

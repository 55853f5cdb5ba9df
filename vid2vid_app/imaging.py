"""The one place for image conversions.

Outside models, images are uint8 HWC RGB numpy arrays. Inside models they are float NCHW tensors
in [-1, 1]. Sizes that are not a multiple of a network's stride are reflect-padded and cropped
back, never resized out of aspect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB (H, W, 3) or (N, H, W, 3) in [0, 255] -> float32 (N, 3, H, W) in [-1, 1]."""
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"expected (H, W, C) or (N, H, W, C), got shape {images.shape}")
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return t.div_(127.5).sub_(1.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) or (C, H, W) in [-1, 1] -> uint8 (N, H, W, C) or (H, W, C), clipped."""
    squeeze = tensor.ndim == 3
    if squeeze:
        tensor = tensor[None]
    out = to_uint8_tensor(tensor).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return out[0] if squeeze else out


def to_uint8_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """float (..., C, H, W) in [-1, 1] -> uint8 tensor of the same shape on the same device,
    rounded half to even and clipped. On a GPU this only queues kernels: the caller's ``.cpu()``
    (e.g. in an encoder thread) is where it waits."""
    return tensor.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def to_float_array(images: np.ndarray) -> np.ndarray:
    """:func:`to_tensor` in numpy: uint8 (H, W, 3) or (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1].

    For background threads feeding a network: numpy work there does not compete with PyTorch's
    own intra-op threads (a torch op in a second thread starts a second thread team, and on a
    small CPU the two teams slow each other down). ``torch.from_numpy`` then wraps it for free.
    """
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"expected (H, W, C) or (N, H, W, C), got shape {images.shape}")
    out = images.transpose(0, 3, 1, 2).astype(np.float32)
    out /= np.float32(127.5)
    out -= np.float32(1.0)
    return out


def float_array_to_uint8(array: np.ndarray) -> np.ndarray:
    """:func:`to_uint8` in numpy: float (N, C, H, W) or (C, H, W) in [-1, 1] -> uint8 (N, H, W, C)
    or (H, W, C), rounded half to even and clipped exactly like :func:`to_uint8`."""
    squeeze = array.ndim == 3
    if squeeze:
        array = array[None]
    a = (array.astype(np.float32) + np.float32(1.0)) * np.float32(127.5)
    out = np.clip(np.rint(a), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    out = np.ascontiguousarray(out)
    return out[0] if squeeze else out


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (N, C, H, W) on the bottom/right so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`crop_to`. Falls back to
    replicate padding where the image is too small for reflection.
    """
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop (N, C, H, W) back to the (H, W) returned by :func:`pad_to_multiple`."""
    return x[..., : size[0], : size[1]]


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into a fixed canvas: scale, then offset (x0, y0) of the content."""

    scale: float
    x0: int
    y0: int
    content_w: int
    content_h: int


def letterbox_geometry(src_w: int, src_h: int, width: int, height: int) -> Letterbox:
    """The :class:`Letterbox` that :func:`letterbox` uses to fit a (src_h, src_w) image into a
    (height, width) canvas, computed without any image (e.g. to map keypoints)."""
    scale = min(width / src_w, height / src_h)
    cw, ch = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    return Letterbox(scale, (width - cw) // 2, (height - ch) // 2, cw, ch)


def letterbox(image: np.ndarray, width: int, height: int, fill: int = 0) -> tuple[np.ndarray, Letterbox]:
    """Fit uint8 HWC ``image`` into a (height, width) canvas keeping its aspect, centred, padded
    with ``fill``. Returns the canvas and the transform (to map keypoints the same way)."""
    h, w = image.shape[:2]
    box = letterbox_geometry(w, h, width, height)
    scale, x0, y0, cw, ch = box.scale, box.x0, box.y0, box.content_w, box.content_h
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (cw, ch), interpolation=interp) if (cw, ch) != (w, h) else image
    canvas = np.full((height, width) + image.shape[2:], fill, dtype=image.dtype)
    canvas[y0 : y0 + ch, x0 : x0 + cw] = resized
    return canvas, box


def keypoints_to_canvas(keypoints: np.ndarray, box: Letterbox) -> np.ndarray:
    """Map keypoints (..., K, 3) (x, y, confidence) in pixels of an image into the canvas that
    :func:`letterbox` fits that image into with ``box``: ``x' = x * scale + x0`` (same for y).

    Returns a float32 copy; confidences unchanged, NaN coordinates stay NaN. For a frame of
    another size, ``box = letterbox_geometry(src_w, src_h, width, height)``.
    """
    out = np.array(keypoints, dtype=np.float32, copy=True)
    out[..., 0] = out[..., 0] * box.scale + box.x0
    out[..., 1] = out[..., 1] * box.scale + box.y0
    return out


def resize_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale uint8 HWC so its longer side is at most ``max_side`` (aspect kept)."""
    if not max_side:
        return image
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def hstack(images: list[np.ndarray], height: int | None = None) -> np.ndarray:
    """Place uint8 HWC RGB images side by side, each resized to a common ``height`` (default:
    the first image's) with its aspect kept. Grayscale inputs are expanded to RGB."""
    height = height or images[0].shape[0]
    row = []
    for img in images:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        h, w = img.shape[:2]
        if h != height:
            img = cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
        row.append(img)
    return np.concatenate(row, axis=1)


def grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """A grid of uint8 HWC images (each row via :func:`hstack`, rows padded to a common width)."""
    lines = [hstack(r) for r in rows]
    width = max(line.shape[1] for line in lines)
    padded = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines]
    return np.concatenate(padded, axis=0)


def read_image(path) -> np.ndarray:
    """Read an image file as uint8 HWC RGB; raises ValueError when it is not a readable image."""
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ValueError(f"{path} is not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """uint8 HWC RGB (or RGBA, for formats with transparency such as PNG) -> the bytes of an image
    file of ``suffix`` (".png", ".jpg", ...)."""
    suffix = suffix.lower() or ".png"
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"unknown image suffix {suffix!r}: use one of {', '.join(IMAGE_SUFFIXES)}")
    rgba = image.ndim == 3 and image.shape[2] == 4
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if rgba else cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode image as {suffix}")
    return buf.tobytes()


def write_image(path, image: np.ndarray, *, replace: bool = True) -> None:
    """Write uint8 HWC RGB to ``path`` atomically (format from the suffix; ``replace=False``
    refuses a file that appeared meanwhile, see :func:`vid2vid_app.fileio.atomic_path`)."""
    from .fileio import write_bytes_atomic

    try:
        data = encode_image(image, Path(path).suffix)
    except ValueError as exc:
        raise ValueError(f"cannot write an image to {path}: {exc}") from None
    write_bytes_atomic(path, data, replace=replace)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

"""Image and video quality metrics: PSNR, SSIM, LPIPS, pose distance and temporal flicker.

Frames are uint8 RGB numpy arrays: one frame (H, W, 3) (or grayscale (H, W)), a stack
(T, H, W, 3), or a list of frames. For several frames PSNR, SSIM and LPIPS are the mean of the
per-frame values.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import UserError, load_failure
from .imaging import to_tensor
from .models.vgg import (
    HUB_FILENAMES,
    STAGE_CHANNELS,
    STAGE_ENDS,
    StagedFeatures,
    find_backbone_weights,
    hub_checkpoint_dir,
    weights_dirs,
)
from .pose.skeleton import L_ANKLE, NOSE, R_ANKLE

Frames = np.ndarray | Sequence[np.ndarray]

DATA_RANGE = 255.0


def _frame_list(frames: Frames, name: str) -> list[np.ndarray]:
    """One frame or several -> a list of uint8 frames (H, W[, C])."""
    if isinstance(frames, np.ndarray):
        if frames.ndim in (2, 3):
            frames = [frames]
        elif frames.ndim != 4:
            raise ValueError(
                f"{name}: expected a frame (H, W[, C]) or frames (T, H, W, C), got shape {frames.shape}"
            )
    frames = list(frames)
    if not frames:
        raise ValueError(f"{name}: no frames")
    for f in frames:
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8:
            raise ValueError(f"{name}: frames must be uint8 numpy arrays")
    return frames


def _frame_pairs(a: Frames, b: Frames) -> list[tuple[np.ndarray, np.ndarray]]:
    fa, fb = _frame_list(a, "first input"), _frame_list(b, "second input")
    if len(fa) != len(fb):
        raise ValueError(f"cannot compare {len(fa)} frames with {len(fb)} frames")
    for x, y in zip(fa, fb, strict=True):
        if x.shape != y.shape:
            raise ValueError(f"frame shapes differ: {x.shape} vs {y.shape}")
    return list(zip(fa, fb, strict=True))


# ----------------------------------------------------------------------------- PSNR / SSIM


def _psnr_frame(x: np.ndarray, y: np.ndarray) -> float:
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    if mse == 0:
        return math.inf
    return float(10.0 * math.log10(DATA_RANGE**2 / mse))


def psnr(a: Frames, b: Frames) -> float:
    """Peak signal-to-noise ratio in dB for data range 255: 10 log10(255^2 / MSE) over all pixels
    and channels of a frame; the mean over frames for several. Identical frames give ``inf``
    (and then so does the mean). A uniform difference of one gray level gives 48.13 dB."""
    return float(np.mean([_psnr_frame(x, y) for x, y in _frame_pairs(a, b)]))


SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two float64 (H, W) images over the windows that lie fully inside them."""
    kernel = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_64F)
    r = SSIM_WINDOW // 2

    def local_mean(z: np.ndarray) -> np.ndarray:
        # Gaussian-weighted local mean; the border is cropped, so only full windows remain and the
        # border mode never matters.
        return cv2.sepFilter2D(z, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)[r:-r, r:-r]

    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    mx, my = local_mean(x), local_mean(y)
    vx = local_mean(x * x) - mx * mx
    vy = local_mean(y * y) - my * my
    cxy = local_mean(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim_map.mean())


def _ssim_frame(x: np.ndarray, y: np.ndarray) -> float:
    if min(x.shape[:2]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {x.shape[:2]}"
        )
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    if x.ndim == 2:
        return _ssim_channel(x, y)
    return float(np.mean([_ssim_channel(x[..., c], y[..., c]) for c in range(x.shape[2])]))


def ssim(a: Frames, b: Frames) -> float:
    """Structural similarity (Wang et al. 2004) in [-1, 1], 1 for identical frames.

    Gaussian window 11x11 with sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255, population
    (not sample) variances; the SSIM map is averaged over the windows that fit fully inside the
    frame, and over the RGB channels (each channel computed separately). This equals
    scikit-image's ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``. Several frames: the mean.
    """
    return float(np.mean([_ssim_frame(x, y) for x, y in _frame_pairs(a, b)]))


# ----------------------------------------------------------------------------- LPIPS

LPIPS_NETS = ("vgg16", "alexnet")
# Per-channel shift and scale LPIPS applies to [-1, 1] inputs before its backbone.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_LIN_FILENAMES = {"vgg16": "vgg16_lpips_lin_v0.1.pth", "alexnet": "alexnet_lpips_lin_v0.1.pth"}
# The same heads as shipped inside the `lpips` package, if it happens to be installed.
_LPIPS_PACKAGE_FILENAMES = {"vgg16": "vgg.pth", "alexnet": "alex.pth"}


def _lpips_lin_candidates(net: str, weights_dir: Path | None) -> list[Path]:
    dirs = [weights_dir] if weights_dir is not None else weights_dirs()
    paths = [d / LPIPS_LIN_FILENAMES[net] for d in dirs]
    if weights_dir is None:
        spec = importlib.util.find_spec("lpips")
        if spec is not None and spec.origin:
            paths.append(Path(spec.origin).parent / "weights" / "v0.1" / _LPIPS_PACKAGE_FILENAMES[net])
    return paths


class LPIPSNetwork(torch.nn.Module):
    """LPIPS v0.1 distance (Zhang et al. 2018) as a module.

    ``forward(x, y)``: float (N, 3, H, W) RGB in [-1, 1] -> (N,) distances (0 for identical images).
    Steps: shift/scale the inputs per channel; take the five backbone stages (VGG16 relu1_2 ...
    relu5_3 or AlexNet relu1 ... relu5); unit-normalise each feature vector along channels;
    square the difference; weight the channels with the learned linear heads; average over space;
    sum over the five layers.
    """

    def __init__(self, net: str, features_path: str | Path, lin_path: str | Path):
        super().__init__()
        self.features = StagedFeatures(net, STAGE_ENDS[(net, "lpips")], features_path)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        heads = self._load_heads(Path(lin_path), STAGE_CHANNELS[(net, "lpips")])
        for k, w in enumerate(heads):
            self.register_buffer(f"lin{k}", w.view(1, -1, 1, 1), persistent=False)

    @staticmethod
    def _load_heads(path: Path, channels: Sequence[int]) -> list[torch.Tensor]:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(
                f"{path} is not a readable LPIPS weight file ({load_failure(exc)})."
            ) from None
        heads = []
        for k, c in enumerate(channels):
            w = state.get(f"lin{k}.model.1.weight") if isinstance(state, dict) else None
            if w is None or tuple(w.shape) != (1, c, 1, 1):
                raise UserError(
                    f"{path} does not hold LPIPS heads for this network (lin{k} of shape (1, {c}, 1, 1))."
                )
            heads.append(w.float())
        return heads

    @staticmethod
    def _unit_normalise(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        return f / (f.square().sum(dim=1, keepdim=True).sqrt() + eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.features((x - self.shift) / self.scale)
        fy = self.features((y - self.shift) / self.scale)
        total = torch.zeros(x.shape[0], device=x.device)
        for k, (a, b) in enumerate(zip(fx, fy, strict=True)):
            diff = (self._unit_normalise(a.float()) - self._unit_normalise(b.float())).square()
            total = total + (diff * getattr(self, f"lin{k}")).sum(dim=1).mean(dim=(1, 2))
        return total


class LPIPS:
    """Learned perceptual image distance on uint8 frames (lower = more similar, 0 = identical).

    ``net``: "vgg16" or "alexnet". Weights are read from ``weights_dir`` when given
    (``<net>_features_imagenet.pth`` and ``<net>_lpips_lin_v0.1.pth``, as in the project's
    shared/weights folder); otherwise from ``$VID2VID_WEIGHTS_DIR``, the ``shared/weights`` folder
    beside a source checkout, the torch hub cache (backbone) and an installed ``lpips`` package
    (heads). Nothing is downloaded; missing files raise :class:`UserError`.

    ``lpips(a, b)``: frames as in this module (at least 32x32 pixels) -> float, the mean over
    frames. :meth:`distance` works on tensors.
    """

    def __init__(
        self,
        net: str = "vgg16",
        weights_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
    ):
        if net not in LPIPS_NETS:
            raise ValueError(f"unknown LPIPS network {net!r}; choose one of {', '.join(LPIPS_NETS)}")
        wdir = Path(weights_dir).expanduser() if weights_dir is not None else None
        if wdir is not None and not wdir.is_dir():
            raise UserError(f"LPIPS weights folder {wdir} does not exist.")
        if wdir is not None:
            features = find_backbone_weights(net, wdir / f"{net}_features_imagenet.pth")
            if features is None:
                features = find_backbone_weights(net, hub_checkpoint_dir() / HUB_FILENAMES[net])
        else:
            features = find_backbone_weights(net)
        if features is None:
            where = f"{wdir}" if wdir is not None else ", ".join(str(d) for d in weights_dirs())
            raise UserError(
                f"no {net} ImageNet weights for LPIPS: {net}_features_imagenet.pth is not in {where} "
                f"nor {HUB_FILENAMES[net]} in {hub_checkpoint_dir()}; pass the weights folder."
            )
        lin_candidates = _lpips_lin_candidates(net, wdir)
        lin = next((p for p in lin_candidates if p.is_file()), None)
        if lin is None:
            raise UserError(
                f"no LPIPS heads for {net}: looked for {', '.join(str(p) for p in lin_candidates)}; "
                "pass the weights folder."
            )
        self.net = net
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.network = LPIPSNetwork(net, features, lin).to(self.device)

    @torch.inference_mode()
    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y float (N, 3, H, W) in [-1, 1] -> (N,) distances on this metric's device."""
        return self.network(x.to(self.device), y.to(self.device))

    def __call__(self, a: Frames, b: Frames) -> float:
        pairs = _frame_pairs(a, b)
        h, w = pairs[0][0].shape[:2]
        if pairs[0][0].ndim != 3 or pairs[0][0].shape[2] != 3:
            raise ValueError("LPIPS needs RGB frames (H, W, 3)")
        if min(h, w) < 32:
            raise ValueError(f"LPIPS needs frames of at least 32x32 pixels, got {h}x{w}")
        values = []
        for i in range(0, len(pairs), self.batch_size):
            chunk = pairs[i : i + self.batch_size]
            x = to_tensor(np.stack([p[0] for p in chunk]))
            y = to_tensor(np.stack([p[1] for p in chunk]))
            values.append(self.distance(x, y).cpu())
        return float(torch.cat(values).mean())


# ----------------------------------------------------------------------------- pose distance


def pose_distance(kp_a: np.ndarray, kp_b: np.ndarray, min_conf: float = 0.5) -> float:
    """Mean keypoint distance between two pose sequences, in units of body height.

    ``kp_a``, ``kp_b``: (T, K, 3) arrays of (x, y, confidence) in the same units (pixels of the
    same frame size), MediaPipe landmark order; ``kp_a`` is the reference (e.g. the input poses),
    ``kp_b`` the poses re-detected on generated frames. For each frame, the body height is the
    distance from ``kp_a``'s nose to the midpoint of its ankles; frames where those three are not
    confident (>= ``min_conf``) or the height is zero are skipped. Every landmark confident in
    both sequences contributes its Euclidean distance divided by its frame's height; the result is
    the mean over all those (frame, landmark) pairs, or NaN when there are none.
    """
    kp_a = np.asarray(kp_a, dtype=np.float64)
    kp_b = np.asarray(kp_b, dtype=np.float64)
    if kp_a.ndim != 3 or kp_a.shape[-1] < 3 or kp_a.shape != kp_b.shape:
        raise ValueError(
            f"expected two (T, K, 3) keypoint arrays of one shape, got {kp_a.shape} and {kp_b.shape}"
        )
    xy_a, conf_a = kp_a[..., :2], kp_a[..., 2]
    xy_b, conf_b = kp_b[..., :2], kp_b[..., 2]
    # NaN coordinates (undetected landmarks) count as not confident.
    ok_a = (conf_a >= min_conf) & np.isfinite(xy_a).all(axis=-1)
    ok_b = (conf_b >= min_conf) & np.isfinite(xy_b).all(axis=-1)

    ankle_mid = 0.5 * (xy_a[:, L_ANKLE] + xy_a[:, R_ANKLE])
    height = np.linalg.norm(xy_a[:, NOSE] - ankle_mid, axis=-1)
    frame_ok = ok_a[:, NOSE] & ok_a[:, L_ANKLE] & ok_a[:, R_ANKLE] & (height > 0)

    use = ok_a & ok_b & frame_ok[:, None]
    if not use.any():
        return math.nan
    dist = np.linalg.norm(xy_a - xy_b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = dist / height[:, None]
    return float(normalised[use].mean())


# ----------------------------------------------------------------------------- flicker


def temporal_flicker(frames: Frames) -> float:
    """Mean absolute difference between consecutive frames, in gray levels (0-255), over all
    pixels and channels; NaN for fewer than two frames."""
    fl = _frame_list(frames, "frames")
    if len(fl) < 2:
        return math.nan
    total = 0.0
    for prev, cur in zip(fl[:-1], fl[1:], strict=True):
        if prev.shape != cur.shape:
            raise ValueError(f"frame shapes differ: {prev.shape} vs {cur.shape}")
        total += float(np.abs(cur.astype(np.int16) - prev.astype(np.int16)).mean())
    return total / (len(fl) - 1)


def flicker(generated: Frames, real: Frames) -> float:
    """Temporal flicker of a generated video relative to the real one:
    temporal_flicker(generated) / temporal_flicker(real). 1.0 means as temporally stable as the
    real footage, above 1 more flicker. A static real video gives 1.0 when the generated one is
    static too and ``inf`` otherwise; NaN when either has fewer than two frames."""
    g = temporal_flicker(generated)
    r = temporal_flicker(real)
    if math.isnan(g) or math.isnan(r):
        return math.nan
    if r == 0:
        return 1.0 if g == 0 else math.inf
    return g / r


def background_flicker(generated: Frames, real: Frames, background: np.ndarray) -> float:
    """Flicker outside the person: the mean absolute frame-to-frame change (gray levels, all
    channels) over the pixels that are background in both frames of a step, generated / real.

    ``background`` (T, H, W) bool, True away from the person (of the real frames). 1.0 means a
    background as steady as the real one; ``inf`` when the real background never changes but the
    generated one does; NaN for fewer than two frames or no such pixel.
    """
    gen, ref = _frame_list(generated, "generated"), _frame_list(real, "real")
    background = np.asarray(background, dtype=bool)
    if not (len(gen) == len(ref) == len(background)):
        raise ValueError(f"need as many frames and masks: {len(gen)} generated, {len(ref)} real, "
                         f"{len(background)} masks")
    totals = np.zeros(2)
    count = 0
    for t in range(1, len(gen)):
        both = background[t] & background[t - 1]
        if not both.any():
            continue
        for i, frames in enumerate((gen, ref)):
            step = np.abs(frames[t].astype(np.int16) - frames[t - 1].astype(np.int16))
            totals[i] += float(step[both].sum())
        count += int(both.sum()) * 3
    if count == 0:
        return math.nan
    g, r = totals / count
    if r == 0:
        return 1.0 if g == 0 else math.inf
    return float(g / r)

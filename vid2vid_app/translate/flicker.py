"""Flicker reduction for frame-wise translation (``translate-video --temporal``).

A frame-wise generator sees each frame alone, so textures and colours jitter from frame to frame
even where the input is still. :class:`FlickerSmoother` keeps the previous (already smoothed)
output and, for each new frame:

1. estimates dense optical flow from the current INPUT frame to the previous input frame
   (OpenCV Farneback, on a downscaled grey image for speed): ``prev_in(p + flow(p)) ~ cur_in(p)``;
2. warps the previous input and the previous output to the current frame with that flow;
3. where the warped previous input matches the current input, the scene there only moved (or did not
   change at all), so the output should not change either: the per-pixel weight is
   ``w = strength * exp(-(d / sigma)^2)`` with ``d`` the mean absolute RGB difference (0-255) between
   the current and the warped previous input; where the input changed (occlusions, new content,
   failed flow) ``w`` falls to 0 and the generator's fresh output is kept;
4. returns ``w * warped_prev_out + (1 - w) * cur_out``, which becomes the next "previous output".

The recursion makes it an exponential moving average along motion trajectories: with ``strength``
0.8 static regions average over about 1 / (1 - 0.8) = 5 frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FlickerConfig:
    """``strength`` in [0, 1): the largest weight of the warped previous output; ``sigma``: the
    input difference (grey levels 0-255) at which the weight drops to strength / e; ``flow_max_side``:
    the flow is estimated on frames downscaled to this longer side (pixels)."""

    strength: float = 0.8
    sigma: float = 10.0
    flow_max_side: int = 480


class FlickerSmoother:
    """Stateful per-video smoother: call it on (input frame, generated frame) pairs in order.

    Frames are uint8 HWC RGB; input and output frames must have the same height and width.
    """

    def __init__(self, config: FlickerConfig | None = None):
        self.config = config or FlickerConfig()
        if not 0 <= self.config.strength < 1:
            raise ValueError("strength must be in [0, 1)")
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (call between videos)."""
        self._prev_in: np.ndarray | None = None
        self._prev_grey: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None

    def __call__(self, frame_in: np.ndarray, frame_out: np.ndarray) -> np.ndarray:
        if frame_in.shape[:2] != frame_out.shape[:2]:
            raise ValueError(f"input {frame_in.shape[:2]} and output {frame_out.shape[:2]} sizes differ")
        grey = self._grey(frame_in)
        if self._prev_in is None or self._prev_in.shape != frame_in.shape:
            result = frame_out
        else:
            weight, warped_out = self.blend_weight(frame_in, grey)
            blended = weight[..., None] * warped_out + (1.0 - weight[..., None]) * frame_out.astype(np.float32)
            result = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        self._prev_in, self._prev_grey, self._prev_out = frame_in, grey, result
        return result

    def blend_weight(self, frame_in: np.ndarray, grey: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(weight (H, W) float32 in [0, strength], previous output warped to this frame (H, W, 3)
        float32) for the current input frame; needs a previous frame."""
        assert self._prev_in is not None and self._prev_out is not None and self._prev_grey is not None
        cfg = self.config
        grey = self._grey(frame_in) if grey is None else grey
        h, w = frame_in.shape[:2]
        flow = cv2.calcOpticalFlowFarneback(grey, self._prev_grey, None, pyr_scale=0.5, levels=3,
                                            winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
        # Flow was estimated on the downscaled grey frames: bring it to full resolution.
        fh, fw = flow.shape[:2]
        if (fw, fh) != (w, h):
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= w / fw
            flow[..., 1] *= h / fh
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
        warped_in = cv2.remap(self._prev_in, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped_out = cv2.remap(self._prev_out, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = np.abs(frame_in.astype(np.float32) - warped_in.astype(np.float32)).mean(axis=2)
        # A little blur so single noisy pixels neither switch the blend on nor off.
        diff = cv2.GaussianBlur(diff, (5, 5), 0)
        weight = cfg.strength * np.exp(-np.square(diff / cfg.sigma))
        # Pixels whose flow leads outside the previous frame have no history.
        outside = (map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)
        weight[outside] = 0.0
        return weight.astype(np.float32), warped_out.astype(np.float32)

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        scale = self.config.flow_max_side / max(h, w)
        if scale < 1:
            grey = cv2.resize(grey, (max(8, round(w * scale)), max(8, round(h * scale))),
                              interpolation=cv2.INTER_AREA)
        return grey

"""Export a generator to ONNX with dynamic batch, height and width, checked with onnxruntime.

onnx and onnxruntime are the optional extra ``pip install vid2vid_app[onnx]``; they are imported only
here, and their absence is a clear error. Input ``image``: float32 (N, C, H, W) in [-1, 1], H and W
multiples of the generator's stride; output ``output`` the same shape in [-1, 1].
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..fileio import atomic_path, check_output_path, output_lock


@dataclass(frozen=True)
class OnnxReport:
    """The written file and how far onnxruntime's output is from PyTorch's on the check input."""

    path: Path
    check_shape: tuple[int, ...]
    max_abs_diff: float


def _require_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise UserError("ONNX export needs the optional packages onnx and onnxruntime: "
                        "pip install 'vid2vid_app[onnx]'.") from None
    return onnx, onnxruntime


def export_onnx(generator: nn.Module, path: str | Path, *, opset: int = 17, overwrite: bool = False,
                check_size: tuple[int, int] | None = None, seed: int = 0) -> OnnxReport:
    """Write ``generator`` as ONNX to ``path`` (atomically) and compare onnxruntime with PyTorch.

    The export traces at one size and marks batch, height and width dynamic; the check runs a
    random input at a DIFFERENT size (``check_size`` (w, h), default 2 x stride by 3 x stride, at
    least 64 x 96) so a size baked into the graph would show up as an error.
    """
    onnx, ort = _require_onnx()
    path = check_output_path(path, overwrite)
    stride = int(getattr(generator, "stride", 1))
    generator = generator.cpu().eval()
    in_channels = _in_channels(generator)
    side = stride * max(1, -(-64 // stride))  # the smallest multiple of the stride >= 64
    dummy = torch.zeros(1, in_channels, side, side)
    # One writer per output; without overwrite a file that appeared meanwhile is not replaced.
    with output_lock(path), atomic_path(path, replace=overwrite) as tmp, warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of torch.export (which needs the extra
        # package onnxscript); it still handles these plain conv nets with dynamic axes.
        warnings.simplefilter("ignore")
        torch.onnx.export(generator, (dummy,), str(tmp), dynamo=False, opset_version=opset,
                          input_names=["image"], output_names=["output"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "output": {0: "batch", 2: "height", 3: "width"}})
        onnx.checker.check_model(str(tmp))
    if check_size is None:
        check_size = (max(96, 3 * stride), max(64, 2 * stride))
    w, h = check_size
    w, h = -(-w // stride) * stride, -(-h // stride) * stride
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(2, in_channels, h, w, generator=gen) * 2 - 1
    with torch.inference_mode():
        expected = generator(x).numpy()
    # The check runs on as many threads as PyTorch (--threads), and onnxruntime's idle threads sleep
    # instead of spinning, as PyTorch's do under the CLI (see vid2vid_app.cli).
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"image": x.numpy()})[0]
    if got.shape != expected.shape:
        raise UserError(f"{path}: onnxruntime returned shape {got.shape}, PyTorch {expected.shape}.")
    return OnnxReport(path=path, check_shape=tuple(x.shape), max_abs_diff=float(np.abs(got - expected).max()))


def _in_channels(module: nn.Module) -> int:
    config = getattr(module, "config", None)
    if isinstance(config, dict) and "in_channels" in config:
        return int(config["in_channels"])
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise UserError("cannot tell the generator's number of input channels.")

"""vid2vid_app: pose-conditioned video generation and frame-wise video translation.

Library layout (each module has one job):
    video       PyAV probe / decode / encode with audio passthrough
    imaging     uint8 HWC RGB <-> float NCHW [-1, 1] conversions, padding, grids
    pose/       detection (MediaPipe), keypoint sequences, smoothing, normalisation, rendering
    models/     generators, discriminators, losses, reference-checkpoint import
    training/   objectives, the one training loop, checkpoints, AMP, distributed, run logs
    runs        the runs folder: names -> model files, listing, open / resume / overwrite, lock
    metrics     PSNR, SSIM, LPIPS, pose distance, flicker
    dance/      motion transfer only: config, data preparation, dataset, training stages, model file,
                transfer, evaluation, the `dance pose` output writer
    translate/  frame-wise translation only: config, data, training, model file, running over
                media, flicker reduction, ONNX export
    cli/        the `dance` and `translate-video` commands (parsing only)

Imports point down only: cli -> dance | translate -> runs | metrics | media -> training ->
pose | video | models -> small helpers (checked by import-linter, `make lint`).
"""

__version__ = "0.1.0"

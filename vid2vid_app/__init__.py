"""vid2vid_app: pose-conditioned video generation and frame-wise video translation.

Library layout (each module has one job):
    video       PyAV probe / decode / encode with audio passthrough
    imaging     uint8 HWC RGB <-> float NCHW [-1, 1] conversions, padding, grids
    pose/       detection (MediaPipe), keypoint sequences, smoothing, normalisation, rendering
    models/     generators, discriminators, losses, reference-checkpoint import
    data/       frame / pose caches and datasets
    training/   objectives, the training loop, checkpoints
    inference/  motion-transfer and frame-wise translation pipelines
    metrics     PSNR, SSIM, LPIPS, pose distance, flicker
    cli/        the `dance` and `translate-video` commands (parsing only)
"""

__version__ = "0.1.0"

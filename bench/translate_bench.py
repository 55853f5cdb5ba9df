"""translate-video speed: end to end (file -> file) vs the generator alone, in frames per second.

    python bench/translate_bench.py                   # 16 frames per measurement, both archs, both sizes
    python bench/translate_bench.py --quick           # 8 frames, 1 round
    python bench/translate_bench.py --threads 1 --archs resnet_9blocks --sizes 256x256
    python bench/translate_bench.py --device cuda --input samples/target_cam01.mp4 --width 0 --frames 100

Input: the first frames of the real sample clip ../shared/samples/pose2sim_singleperson_cam01.mp4
(or ``--input``; without ../shared the bundled samples/target_cam01.mp4, 360x640),
downscaled to ``--width`` 270 (270x480: a quarter of the 1080x1920 original; full resolution takes
minutes per frame on a CPU; ``--width 0`` keeps the clip's own size) and re-encoded with a sine
audio track, so the pipeline also copies audio. "Own size" means translating at those frames
(padded to the network's stride and cropped back); "256x256" uses --size 256x256.

``--device``: cpu, cuda, or a comma list; by default cpu, and cuda too when a GPU is present.
On CUDA every generator-only timing is bracketed by torch.cuda.synchronize() (end to end returns
only once every frame is encoded), and a second table shows the generator-only variants that
matter on a GPU: fp32 (NCHW), fp32 channels_last, bf16 autocast channels_last (what
translate-video runs), and that with cuDNN autotuning (torch.backends.cudnn.benchmark, which
translate-video leaves off).

For resnet_9blocks and unet_256 (ngf 64, the papers' settings, random weights: speed does not
depend on them) at each size:

  generator only   the generator on frames already in memory as padded [-1, 1] tensors, batched
                   as the pipeline batches them, under inference_mode (and autocast on GPU);
  end to end       vid2vid_app.translate.run.translate_media: decode (background thread),
                   resize, pad, generate, crop, encode with audio (background thread), file to file.

and prints end to end / generator only (the pipeline overlaps decode and encode with generation,
so this should be at least 80% on a CPU; on a GPU the generator is so fast that decoding, resizing
and encoding on the CPU set the end-to-end rate). The two are measured alternately ``--rounds`` times (default 3)
and the medians are reported, so load changes on a shared machine affect both alike. The model is built before timing; the generator-only run starts
with one untimed warm-up batch, and the end-to-end run follows it (so both run warm). Runs on CPU,
and on CUDA too when a GPU is present.

``--flicker-model MODEL`` (a trained model.pt) also measures temporal flicker on the same real clip:
translate it frame-wise and with ``--temporal``, then print ``metrics.flicker(generated, real)``
(mean absolute frame-to-frame change of the output divided by that of the input clip; 1.0 = as
stable as the real footage) and the raw ``metrics.temporal_flicker`` of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vid2vid_app.device import autocast, autocast_dtype, resolve_device, reuse_freed_memory  # noqa: E402
from vid2vid_app.imaging import pad_to_multiple, to_tensor  # noqa: E402
from vid2vid_app.models import build_generator  # noqa: E402
from vid2vid_app.translate.run import TranslateOptions, target_size, translate_media  # noqa: E402

SAMPLE = Path(os.environ.get("VID2VID_SHARED", ROOT.parent / "shared")) / "samples" / "pose2sim_singleperson_cam01.mp4"
BUNDLED = ROOT / "samples" / "target_cam01.mp4"


def make_input(path: Path, frames: int, width: int, sample: Path = SAMPLE) -> tuple[Path, list[np.ndarray]]:
    """A derived clip: the sample's first ``frames`` frames at ``width`` wide (0: its own size),
    60 fps, with audio."""
    images = []
    with av.open(str(sample)) as src:
        for frame in src.decode(video=0):
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            if width and width != w:
                img = cv2.resize(img, (width, round(h * width / w) // 2 * 2), interpolation=cv2.INTER_AREA)
            elif w % 2 or h % 2:  # yuv420p needs even sizes
                img = np.ascontiguousarray(img[: h // 2 * 2, : w // 2 * 2])
            images.append(img)
            if len(images) == frames:
                break
    rate = 44100
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=60)
        video.width, video.height, video.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        audio = out.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for i, img in enumerate(images):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 60)
            for p in video.encode(vf):
                out.mux(p)
        for p in video.encode(None):
            out.mux(p)
        total = round(len(images) / 60 * rate)
        fmt = audio.codec_context.format.name
        for start in range(0, total, 1024):
            t = np.arange(start, min(start + 1024, total)) / rate
            wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(wave if fmt.startswith("flt") else (wave * 32767).astype(np.int16),
                                            format=fmt, layout="mono")
            af.sample_rate, af.pts = rate, start
            for p in audio.encode(af):
                out.mux(p)
        for p in audio.encode(None):
            out.mux(p)
    return path, images


def generator_only(g, frames: list[np.ndarray], size, batch: int, device: torch.device, *,
                   amp: bool = True, channels_last: bool | None = None, cudnn_benchmark: bool = False) -> float:
    """Frames per second of the generator alone on pre-converted, pre-padded batches.

    Defaults: as translate-video runs it (autocast and channels_last on CUDA only, no cuDNN
    autotuning); the keywords select the GPU variants."""
    cuda = device.type == "cuda"
    channels_last = cuda if channels_last is None else channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = g.to(memory_format=fmt)
    w, h = target_size(frames[0].shape[1], frames[0].shape[0], size)
    ready = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) if (w, h) != f.shape[1::-1] else f for f in frames]
    batches = []
    for i in range(0, len(ready), batch):
        x, _ = pad_to_multiple(to_tensor(np.stack(ready[i : i + batch])), g.stride)
        batches.append(x.to(device).contiguous(memory_format=fmt))
    dtype = autocast_dtype(device) if amp else None
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = cudnn_benchmark
    try:
        with torch.inference_mode(), autocast(device, dtype):
            for _ in range(3 if cudnn_benchmark else 1):
                g(batches[0])  # warm-up (autotuning tries kernels on the first calls)
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for x in batches:
                g(x)
            if cuda:
                torch.cuda.synchronize(device)
        return len(frames) / (time.perf_counter() - t0)
    finally:
        torch.backends.cudnn.benchmark = previous


GPU_VARIANTS = {  # name: generator_only keywords
    "fp32 NCHW": dict(amp=False, channels_last=False),
    "fp32 channels_last": dict(amp=False, channels_last=True),
    "bf16 channels_last (library)": dict(amp=True, channels_last=True),
    "bf16 channels_last + cudnn.benchmark": dict(amp=True, channels_last=True, cudnn_benchmark=True),
}


def end_to_end(g, clip: Path, size, batch: int, device: torch.device, workdir: Path,
               encoder_preset: str = "medium") -> float:
    out = workdir / f"out_{time.monotonic_ns()}.mp4"
    options = TranslateOptions(batch_size=batch, size=size, device=str(device), quiet=True, overwrite=True,
                               encoder_preset=encoder_preset)
    report = translate_media(clip, out, g, options)
    assert report.has_audio, "the benchmark input has audio; the output must keep it"
    return report.fps


def flicker_report(model_path: Path, clip: Path, workdir: Path, batch: int, frames: int) -> None:
    from vid2vid_app.media import open_media
    from vid2vid_app.metrics import flicker, temporal_flicker
    from vid2vid_app.translate.model import load_model

    g = load_model(model_path).generator()
    real = list(open_media(clip))
    print(f"flicker on {frames} real frames, model {model_path} ({g.config['arch']}):")
    print(f"  input clip: temporal_flicker {temporal_flicker(real):.3f}")
    for temporal in (False, True):
        out = workdir / f"flicker_{temporal}.mp4"
        options = TranslateOptions(batch_size=batch, quiet=True, overwrite=True, reduce_flicker=temporal, quality=0)
        report = translate_media(clip, out, g, options)
        generated = list(open_media(out))
        label = "--temporal" if temporal else "frame-wise"
        print(f"  {label:10}: flicker {flicker(generated, real):.3f}, temporal_flicker "
              f"{temporal_flicker(generated):.3f}, {report.fps:.2f} frames/s end to end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="8 frames per measurement")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--archs", default="resnet_9blocks,unet_256")
    parser.add_argument("--sizes", default="256x256,own", help="comma list of WxH and/or 'own'")
    parser.add_argument("--width", type=int, default=270, help="width of the derived input clip (0: the clip's own)")
    parser.add_argument("--input", type=Path, default=None,
                        help=f"the clip to derive the input from [{SAMPLE.name} in ../shared/samples, else {BUNDLED.name}]")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, or a comma list [cpu, plus cuda when a GPU is present]")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--flicker-model", type=Path, default=None,
                        help="a trained model.pt: also measure flicker with and without --temporal")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed table")
    parser.add_argument("--encoder-preset", default="medium", help="x264 speed preset of the outputs")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements per row (median)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reuse_freed_memory()  # as the pipeline does on CPU, so generator-only runs with the same allocator
    frames = 8 if args.quick else args.frames
    if args.quick:
        args.rounds = 1
    if args.device:
        devices = [resolve_device(d.strip()) for d in args.device.split(",")]
    else:
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    sample = args.input or (SAMPLE if SAMPLE.is_file() else BUNDLED)

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f} (the CPU may be shared with other work)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        clip, images = make_input(workdir / "input.mp4", frames, args.width, sample)
        print(f"input: {len(images)} frames {images[0].shape[1]}x{images[0].shape[0]} at 60 fps with audio "
              f"(from {sample.name}); batch {args.batch_size}; x264 preset {args.encoder_preset}")
        for device in devices:
            if device.type == "cuda":
                print(f"GPU: {torch.cuda.get_device_name(device)}, autocast dtype {autocast_dtype(device)}, "
                      f"torch {torch.__version__}")
        if args.flicker_model is not None:
            flicker_report(args.flicker_model, clip, workdir, args.batch_size, len(images))
        if args.no_speed:
            return
        print(f"{'device':6} {'arch':15} {'size':>9} {'padded':>9} {'gen-only f/s':>12} {'end-to-end f/s':>14} {'ratio':>6}")
        gpu_rows = []
        for device in devices:
            for arch in args.archs.split(","):
                g = build_generator(arch).to(device).eval()
                if device.type == "cuda":
                    g = g.to(memory_format=torch.channels_last)
                for size_text in args.sizes.split(","):
                    size = None if size_text == "own" else tuple(int(v) for v in size_text.split("x"))
                    w, h = target_size(images[0].shape[1], images[0].shape[0], size)
                    padded = f"{-(-w // g.stride) * g.stride}x{-(-h // g.stride) * g.stride}"
                    # Alternate the two measurements so that load changes on a shared machine hit both.
                    gens, e2es = [], []
                    for _ in range(args.rounds):
                        gens.append(generator_only(g, images, size, args.batch_size, device))
                        e2es.append(end_to_end(g, clip, size, args.batch_size, device, workdir, args.encoder_preset))
                    gen, e2e = statistics.median(gens), statistics.median(e2es)
                    print(f"{device.type:6} {arch:15} {f'{w}x{h}':>9} {padded:>9} {gen:12.3f} {e2e:14.3f} "
                          f"{e2e / gen:6.0%}", flush=True)
                    if device.type == "cuda":
                        variants = {name: statistics.median(
                            [generator_only(g, images, size, args.batch_size, device, **kw) for _ in range(args.rounds)])
                            for name, kw in GPU_VARIANTS.items()}
                        gpu_rows.append((arch, f"{w}x{h}", variants))
        if gpu_rows:
            names = list(GPU_VARIANTS)
            print(f"\nGPU generator-only variants, frames/s (batch {args.batch_size}, median of {args.rounds}; "
                  "speed-up against fp32 NCHW):")
            print(f"{'arch':15} {'size':>9} " + " ".join(f"{n:>38}" for n in names))
            for arch, size_text, variants in gpu_rows:
                base = variants[names[0]]
                cells = " ".join(f"{f'{variants[n]:.1f} ({variants[n] / base:.2f}x)':>38}" for n in names)
                print(f"{arch:15} {size_text:>9} {cells}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

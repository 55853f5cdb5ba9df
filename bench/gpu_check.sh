#!/usr/bin/env bash
# One-shot check on a GPU machine: CUDA tests, a CPU test subset under that machine's torch/numpy,
# and the transfer / training / translation benchmarks on the GPU. Logs go to $OUT (7 files, flat),
# key figures are printed at the end (and kept in $OUT/summary.log).
#
# Run from the repository root, with a PyAV wheel for the GPU machine's Python in .whl/ (ignored by
# git; for a machine without internet, fetch it beforehand, e.g.
#     pip download --no-deps --only-binary=:all: --python-version 3.12 \
#         --platform manylinux_2_28_x86_64 -d .whl av==18.1.0
# ), then:
#     bash bench/gpu_check.sh
# The machine needs python3 with torch, torchvision, numpy, opencv(-headless), click, tqdm and
# pytest(-xdist); neither MediaPipe nor ../shared is needed (the transfer benchmark reads the
# precomputed poses in bench/data/). Everything is bounded: about 4-5 minutes, at most
# GPU_CHECK_BUDGET seconds (default 380) plus start-up.
#
# Dry run on a machine without a GPU (tiny settings; the CUDA tests only skip):
#     OUT=/tmp/gpuout GPU_CHECK_DEVICE=cpu bash bench/gpu_check.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.." || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PWD:/tmp/site \
    || { echo "WARNING: installing .whl/*.whl failed (was .whl carried?); video steps will fail"; export PYTHONPATH=$PWD; }

OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
DEVICE=${GPU_CHECK_DEVICE:-cuda}
BUDGET=${GPU_CHECK_BUDGET:-380}
START=$(date +%s)
STATUS=()

# run_step NAME MAX_SECONDS CMD...: run CMD with a time limit (capped by what is left of the
# budget), output to the terminal and $OUT/NAME.log; a failure is recorded and the script goes on.
run_step() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET - ($(date +%s) - START)))
    if ((left < 20)); then
        echo "=== $name: skipped, budget of ${BUDGET}s spent" | tee "$OUT/$name.log"
        STATUS+=("$name: skipped (budget spent)")
        return
    fi
    ((limit > left)) && limit=$left
    echo "=== $name (limit ${limit}s): $*" | tee "$OUT/$name.log"
    local t0=$(date +%s)
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    local took=$(($(date +%s) - t0))
    local verdict="ok"
    ((rc == 124 || rc == 137)) && verdict="TIMED OUT"
    ((rc != 0 && rc != 124 && rc != 137)) && verdict="FAILED rc=$rc"
    echo "=== $name: $verdict in ${took}s" | tee -a "$OUT/$name.log"
    STATUS+=("$name: $verdict in ${took}s")
}

{
    echo "date: $(date -u +%FT%TZ); device under test: $DEVICE; budget ${BUDGET}s"
    nvidia-smi -L 2>&1 || echo "(no nvidia-smi)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
    nproc
    python3 - <<'EOF'
import platform
import torch
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN "
      f"{torch.backends.cudnn.version()}), cuda available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"device: {torch.cuda.get_device_name()}, capability {torch.cuda.get_device_capability()}, "
          f"bf16 {torch.cuda.is_bf16_supported()}, memory {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
for name in ("numpy", "torchvision", "cv2", "av", "click", "tqdm", "PIL", "onnx", "onnxruntime", "mediapipe"):
    try:
        module = __import__(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except ImportError as exc:
        print(f"{name}: not importable ({exc})")
EOF
} 2>&1 | tee "$OUT/env.log"

POSES=bench/data/source_pose/keypoints.npz
TARGET_POSES=bench/data/target_pose/keypoints.npz
if [[ $DEVICE == cuda* ]]; then
    TRAIN_ARGS=(--device "$DEVICE")
    TRANSLATE_ARGS=(--device "$DEVICE" --input samples/target_cam01.mp4 --width 0 --frames 100 --rounds 3)
    TRANSFER_ARGS=(--device "$DEVICE" --configs standard --repeats 3)
    XDIST=(-n 8)
else  # a dry run: the same code paths at toy sizes
    TRAIN_ARGS=(--device "$DEVICE" --quick --ngf 4 --models pix2pix --steps 1 --gpu-variants --threads 2)
    TRANSLATE_ARGS=(--device "$DEVICE" --input samples/target_cam01.mp4 --width 0 --quick --archs unet_256 --sizes 256x256)
    TRANSFER_ARGS=(--device "$DEVICE" --configs tiny --frames 12 --repeats 1)
    XDIST=(-n 2)
fi

run_step test_cuda 150 python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider --durations=8
run_step transfer_bench 120 python3 bench/transfer_bench.py "${TRANSFER_ARGS[@]}" \
    --poses "$POSES" --target-poses "$TARGET_POSES" --target-fps 30
run_step train_bench 180 python3 bench/train_bench.py "${TRAIN_ARGS[@]}"
run_step translate_bench 120 python3 bench/translate_bench.py "${TRANSLATE_ARGS[@]}"
run_step test_cpu_subset 90 python3 -m pytest -q -x "${XDIST[@]}" -p no:cacheprovider \
    tests/test_models.py tests/test_losses.py tests/test_training_loop.py tests/test_training_amp.py \
    tests/test_dance_transfer.py::test_poses_file_replaces_detection_without_importing_mediapipe \
    tests/test_dance_transfer.py::test_poses_that_do_not_belong_to_the_source_are_refused

# Key figures from the logs.
python3 - "$OUT" "${STATUS[@]}" <<'EOF' 2>&1 | tee "$OUT/summary.log"
import re
import sys
from pathlib import Path

out, status = Path(sys.argv[1]), sys.argv[2:]


def lines(name):
    path = out / f"{name}.log"
    return path.read_text(errors="replace").splitlines() if path.exists() else []


print("\n================ SUMMARY ================")
for line in lines("env"):
    if line.startswith(("GPU ", "python ", "device:", "numpy ")):
        print(line)
print("steps:")
for s in status:
    print(f"  {s}")
for name in ("test_cuda", "test_cpu_subset"):
    results = [l for l in lines(name) if re.search(r"\d+ (passed|failed|error|skipped)", l)]
    failures = [l for l in lines(name) if l.startswith(("FAILED", "ERROR"))]
    print(f"{name}: {results[-1].strip('= ') if results else 'no result line'}")
    for l in failures[:15]:
        print(f"  {l[:300]}")

print("\ntransfer (frames/s; standard = global ngf 64 at 256x512):")
t = lines("transfer_bench")
for l in t:
    if l.startswith(("device:", "poses:")):
        print("  " + l)
for i, l in enumerate(t):
    if l.startswith("config "):
        for row in t[i:]:
            if not row.strip():
                break
            print("  " + row)
for l in t:
    if l.startswith("target >="):
        print("  " + l)

print("\ntraining / inference (ms; median; speed-up vs the first variant):")
block = None
for l in lines("train_bench"):
    if re.match(r"^(inference |pix2pix |cyclegan |hd )", l):
        block = l.split(" (")[0].replace(" batch 1", "").replace(" training step", " train").replace(" (eval mode)", "")
        continue
    m = re.match(r"^  (plain eager|no_grad|library|inference_mode \+ channels_last \+ bf16|\+ bf16 \+ ch_last)\s+([\d.]+)\s+([\d.]+x)", l)
    if block and m:
        print(f"  {block:<44} {m.group(1):<40} {m.group(2):>9} {m.group(3):>7}")
    if l.startswith("total "):
        print("  " + l)

print("\ntranslate (frames/s):")
for l in lines("translate_bench"):
    if l.startswith(("device ", "cuda ", "cpu ", "GPU", "arch ", "input:")) or re.match(r"^(unet_256|resnet_9blocks)\s", l):
        print("  " + l)
EOF
echo "total $(($(date +%s) - START)) s; logs in $OUT: $(ls "$OUT" | tr '\n' ' ')"

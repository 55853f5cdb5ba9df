#!/usr/bin/env bash
# Motion-transfer demo on the bundled sample clips (run by `make demo`).
#
#   1. train the tiny preset on one man filmed by two cameras (samples/target_cam01/02.mp4);
#   2. make him perform the moves of the woman in samples/source_two_people.mp4, keeping its audio,
#      and write a side-by-side video (source | stick figure | generated);
#   3. evaluate the model on the held-out end of its training frames (PSNR, SSIM, LPIPS, ...);
#   4. save one side-by-side frame as docs/demo_frame.png (the README's picture).
#
# Outputs go to $DEMO_OUT (default demo_out/). Running it again reuses the trained model
# (`dance train --resume` skips finished stages); delete demo_out/ to train from scratch.
# $DEMO_TRAIN_ARGS adds options to `dance train` (e.g. "--steps 20" for a quick smoke run).
# The tiny preset is a CPU demo: expect blurry images, not the quality of the standard preset.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${DEMO_OUT:-demo_out}"
RUNS="$OUT/runs"
mkdir -p "$OUT" docs
started=$(date +%s)

echo "== 1/4 dance train (tiny preset)"
dance train samples/target_cam01.mp4 samples/target_cam02.mp4 --name demo --preset tiny \
    --runs-dir "$RUNS" --resume ${DEMO_TRAIN_ARGS:-}

echo "== 2/4 dance transfer"
dance transfer samples/source_two_people.mp4 --model demo --runs-dir "$RUNS" \
    -o "$OUT/transfer.mp4" --side-by-side "$OUT/side_by_side.mp4" --overwrite

echo "== 3/4 dance evaluate (held-out frames)"
dance evaluate --model demo --runs-dir "$RUNS" --json "$OUT/evaluation.json" --overwrite

echo "== 4/4 README frame"
python - "$OUT/side_by_side.mp4" docs/demo_frame.png <<'PY'
import sys

from vid2vid_app.imaging import write_image
from vid2vid_app.video import iter_frames, probe

video, png = sys.argv[1], sys.argv[2]
middle = probe(video).frame_count // 2
write_image(png, next(iter_frames(video, start=middle, end=middle + 1)))
print(f"wrote {png} (frame {middle} of {video})")
PY

echo "demo finished in $(( $(date +%s) - started )) s; outputs in $OUT/:"
echo "  transfer.mp4 (the result, with the source's audio), side_by_side.mp4, evaluation.json"

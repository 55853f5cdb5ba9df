"""Quality of the tiny translate presets on real photos (../shared/samples/daynight).

pix2pix: day-photo crops A and a fixed known tone change of them B; after training, the generator's
L1 on held-out pairs must beat the identity baseline (output = input). CycleGAN: dusk crops vs day
crops; training runs end to end and its cycle losses fall.

Both runs use the tiny preset with fewer steps than the preset's own (150 of 300 for pix2pix, 100 of
200 for CycleGAN) to keep the suite fast; the properties hold well before the end of the preset.
"""

from __future__ import annotations

import json

import pytest
from translate_utils import DAY, DUSK, first_and_last_mean, make_domain_folder, make_paired_folders

from vid2vid_app.translate.config import DataSpec, make_config
from vid2vid_app.translate.model import load_model
from vid2vid_app.translate.train import train_translation

pytestmark = pytest.mark.slow  # each test trains for 100-150 steps


def test_pix2pix_tiny_beats_identity_on_held_out_pairs(tmp_path, shared_samples):
    dir_a, dir_b = make_paired_folders(tmp_path / "data", shared_samples, per_photo=12, size=80)
    cfg = make_config("pix2pix", "tiny", data=DataSpec(paired=(str(dir_a), str(dir_b))), steps=150,
                      decay_steps=50, train={"checkpoint_every": 150, "sample_every": 150})
    result = train_translation(cfg, tmp_path / "run", quiet=True)
    val = result.val
    print(f"held-out L1 {val['val_l1']:.4f} vs identity {val['val_identity_l1']:.4f}; "
          f"PSNR {val['val_psnr']:.2f} dB vs identity {val['val_identity_psnr']:.2f} dB")
    # 36 pairs, 10% held out -> 4 validation pairs, the last by name (all from the third photo).
    assert result.notes == [] and val["val_identity_l1"] > 0.15
    assert val["val_l1"] < 0.7 * val["val_identity_l1"]
    assert val["val_psnr"] > val["val_identity_psnr"]
    # The validation record also went to stats.jsonl, and model.pt holds the trained generator.
    records = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert any("val" in r and r["step"] == 150 for r in records)
    model = load_model(result.model_path)
    assert model.mode == "pix2pix" and set(model.generators) == {"AtoB"} and model.train_size == 64


def test_cyclegan_tiny_cycle_loss_falls(tmp_path, shared_samples):
    dusk = make_domain_folder(tmp_path / "dusk", shared_samples, DUSK, per_photo=8)
    day = make_domain_folder(tmp_path / "day", shared_samples, DAY, per_photo=8, seed=1)
    cfg = make_config("cyclegan", "tiny", data=DataSpec(domain_a=(str(dusk),), domain_b=(str(day),)),
                      steps=100, decay_steps=30, train={"log_every": 5, "checkpoint_every": 100, "sample_every": 50})
    result = train_translation(cfg, tmp_path / "run", quiet=True)
    stats = tmp_path / "run" / "stats.jsonl"
    # 20 records (one per 5 steps); single records are noisy at batch 2, so compare means of 4.
    first_a, last_a = first_and_last_mean(stats, "cycle_A", window=4)
    first_b, last_b = first_and_last_mean(stats, "cycle_B", window=4)
    first, last = first_a + first_b, last_a + last_b
    print(f"cycle loss (A + B): mean of the first 4 records {first:.3f}, of the last 4 {last:.3f}")
    assert last < 0.9 * first
    model = load_model(result.model_path)
    assert model.mode == "cyclegan" and set(model.generators) == {"AtoB", "BtoA"}
    assert (tmp_path / "run" / "samples").is_dir()

"""The translate model file, --model resolution, presets and settings checks (no training)."""

from __future__ import annotations

import pytest
import torch

from vid2vid_app.config import from_dict, to_dict
from vid2vid_app.errors import UserError
from vid2vid_app.models import build_generator
from vid2vid_app.training.checkpoint import export_generator, save_checkpoint
from vid2vid_app.translate.config import DataSpec, TranslateConfig, make_config
from vid2vid_app.translate.model import list_models, load_model, resolve_model_path, save_model
from vid2vid_app.translate.train import build_networks


def tiny_g(**kw):
    return build_generator("resnet_6blocks", ngf=4, n_blocks=1, **kw)


def test_cyclegan_model_round_trip_keeps_both_directions(tmp_path):
    g_a, g_b = tiny_g(), tiny_g()
    path = save_model(tmp_path / "m" / "model.pt", "cyclegan", {"AtoB": g_a, "BtoA": g_b}, "BtoA", 64,
                      {"mode": "cyclegan"})
    model = load_model(path)
    assert model.mode == "cyclegan" and model.direction == "BtoA" and model.train_size == 64
    x = torch.rand(1, 3, 16, 20) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(model.generator("AtoB")(x), g_a.eval()(x))
        assert torch.equal(model.generator("BtoA")(x), g_b.eval()(x))
        assert torch.equal(model.generator()(x), g_b(x))  # the default direction


def test_pix2pix_model_runs_only_its_trained_direction(tmp_path):
    path = save_model(tmp_path / "model.pt", "pix2pix", {"BtoA": tiny_g()}, "BtoA", 32, {})
    model = load_model(path)
    assert model.generator() is model.generator("BtoA")
    with pytest.raises(UserError, match="pix2pix model, which translates one way only"):
        model.generator("AtoB")


def test_resolve_names_paths_and_unfinished_runs(tmp_path):
    runs = tmp_path / "runs"
    save_model(runs / "night2day" / "model.pt", "cyclegan", {"AtoB": tiny_g(), "BtoA": tiny_g()}, "AtoB", 64, {})
    (runs / "halfway" / "checkpoints").mkdir(parents=True)
    assert resolve_model_path("night2day", runs) == runs / "night2day" / "model.pt"
    assert resolve_model_path(runs / "night2day", tmp_path) == runs / "night2day" / "model.pt"
    assert resolve_model_path(runs / "night2day" / "model.pt", tmp_path) == runs / "night2day" / "model.pt"
    with pytest.raises(UserError, match="has no model.pt yet.*--resume"):
        resolve_model_path("halfway", runs)
    with pytest.raises(UserError, match=r"models in .*: night2day\)"):
        resolve_model_path("day2night", runs)
    assert [(r.name, r.details["mode"], r.details["directions"]) for r in list_models(runs)] == [
        ("night2day", "cyclegan", ("AtoB", "BtoA"))]


def test_a_plain_generator_export_loads_as_a_one_way_model(tmp_path):
    """A G-only export of the training loop (RGB in)."""
    export_generator(tmp_path / "g.pt", tiny_g(), {"note": "plain export"})
    assert set(load_model(tmp_path / "g.pt").generators) == {"AtoB"}


@pytest.mark.parametrize(("write", "message"), [
    # A pose-conditioned generator (6 input channels) is not an image translator.
    (lambda p: export_generator(p, tiny_g(in_channels=6)), "takes 6 input channels"),
    (lambda p: save_checkpoint(p, {"kind": "checkpoint", "step": 1}), "training checkpoint"),
    (lambda p: p.write_bytes(b"not a torch file"), "not a readable model"),
], ids=["pose-generator", "training-checkpoint", "not-a-torch-file"])
def test_other_files_are_not_translation_models(tmp_path, write, message):
    write(tmp_path / "model.pt")
    with pytest.raises(UserError, match=message):
        load_model(tmp_path / "model.pt")


def test_presets_and_step_counts():
    standard = make_config("pix2pix", "standard")
    assert (standard.arch, standard.ngf, standard.norm, standard.dropout, standard.gan_mode) == (
        "unet_256", 64, "batch", True, "vanilla")
    assert (standard.load_size, standard.crop_size, standard.train.lr, standard.lambda_l1) == (286, 256, 2e-4, 100)
    assert standard.total_steps(400) == (200 * 400, 100 * 400)  # 100 + 100 epochs at batch 1
    cyc = make_config("cyclegan", "standard")
    assert (cyc.arch, cyc.norm, cyc.gan_mode, cyc.lambda_cycle, cyc.lambda_identity, cyc.pool_size) == (
        "resnet_9blocks", "instance", "lsgan", 10, 0.5, 50)
    assert make_config("pix2pix", "tiny").total_steps(10) == (300, 100)  # fixed, whatever the data size
    # New steps without a decay length keep the papers' half-and-half split.
    assert make_config("pix2pix", "tiny", steps=90).total_steps(10) == (90, 45)
    assert make_config("pix2pix", "standard", steps=1000).total_steps(5) == (1000, 500)
    assert make_config("pix2pix", "tiny", steps=90, decay_steps=10).total_steps(10) == (90, 10)
    # Epochs replace the tiny preset's fixed count: 3 + 2 epochs of 10 items at its batch size 4.
    tiny = make_config("pix2pix", "tiny")
    per_epoch = -(-10 // tiny.train.batch_size)
    assert make_config("pix2pix", "tiny", epochs=3, epochs_decay=2).total_steps(10) == (5 * per_epoch, 2 * per_epoch)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: make_config("pix2pix", "standard", load_size=64), "load size 64 is smaller than the crop size 256"),
    (lambda: build_networks(make_config("pix2pix", "tiny", crop_size=80, load_size=90)), "not a multiple of 64"),
    (lambda: DataSpec(aligned="x", domain_a=("y",)).kind(), "one kind of training data"),
], ids=["load-below-crop", "crop-not-multiple-of-stride", "two-kinds-of-data"])
def test_settings_errors(build, message):
    with pytest.raises(UserError, match=message):
        build()


def test_config_round_trip():
    cfg = make_config("cyclegan", "tiny", data=DataSpec(domain_a=("a", "b.mp4"), domain_b=("c",), frame_step=3))
    again = from_dict(TranslateConfig, to_dict(cfg))
    assert again == cfg and again.data.domain_a == ("a", "b.mp4")
    # Old files without newer fields still load with defaults.
    assert from_dict(TranslateConfig, {"mode": "pix2pix"}).crop_size == 256


def test_onnx_export_without_the_optional_packages_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    from vid2vid_app.translate.export_onnx import export_onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the [onnx] extra were not installed
    with pytest.raises(UserError, match=r"pip install 'vid2vid_app\[onnx\]'"):
        export_onnx(tiny_g(), tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_choosing_another_arch_drops_the_presets_depth_override():
    assert make_config("pix2pix", "tiny").n_downs == 6
    assert make_config("pix2pix", "tiny", arch="unet_128").n_downs is None  # unet_128's own 7 levels
    assert make_config("pix2pix", "tiny", arch="unet_128", n_downs=5).n_downs == 5

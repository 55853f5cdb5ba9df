"""Checkpoint files: round trips, atomic writes, weights_only loading, clear errors, G-only export."""

from __future__ import annotations

import pytest
import torch

from vid2vid_app.errors import UserError
from vid2vid_app.models import build_generator
from vid2vid_app.training import (
    FORMAT_VERSION,
    export_generator,
    load_checkpoint,
    load_generator_export,
    save_checkpoint,
)
from vid2vid_app.training.checkpoint import find_checkpoint, previous_path, save_rotating


def sample_state():
    return {"step": 7, "networks": {"G": {"w": torch.arange(6.0).reshape(2, 3)}},
            "rng": [{"torch": torch.get_rng_state()}], "names": ["a", "b"], "lr": 2e-4, "none": None}


def test_round_trip_and_markers(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", sample_state())
    data = load_checkpoint(path)
    assert data["format_version"] == FORMAT_VERSION and data["kind"] == "checkpoint"
    assert data["step"] == 7 and data["names"] == ["a", "b"] and data["none"] is None
    assert torch.equal(data["networks"]["G"]["w"], torch.arange(6.0).reshape(2, 3))
    assert torch.equal(data["rng"][0]["torch"], sample_state()["rng"][0]["torch"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp file left


def test_failed_save_leaves_previous_file_and_no_temp(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", sample_state())
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - pickling a lambda fails with an implementation-defined type
        save_checkpoint(path, {"fn": lambda: 0})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


CALLED = []


def _side_effect():
    CALLED.append(True)


class Payload:
    """Unpickling this would call _side_effect (what a malicious file would do with os.system)."""

    def __reduce__(self):
        return (_side_effect, ())


def test_loading_refuses_code(tmp_path):
    """A file whose unpickling would call a function is refused and the function never runs."""
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "obj": Payload()}, path)
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(path)
    assert CALLED == []


@pytest.mark.parametrize("content,message", [
    (None, "does not exist"),
    (b"not a torch file at all", "not a readable checkpoint"),
    ("truncated", "not a readable checkpoint"),
    ("foreign", "not a vid2vid_app checkpoint"),
    ("future", "newer than this version"),
])
def test_clear_errors(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "truncated":
        save_checkpoint(path, sample_state())
        path.write_bytes(path.read_bytes()[:200])
    elif content == "foreign":
        torch.save({"model.0.weight": torch.zeros(1)}, path)  # a bare state dict of another project
    elif content == "future":
        save_checkpoint(path, {"format_version": FORMAT_VERSION + 1})
    with pytest.raises(UserError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_rotation_keeps_previous(tmp_path):
    path = tmp_path / "main_latest.pt"
    save_rotating(path, {"step": 1})
    save_rotating(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2
    assert load_checkpoint(previous_path(path))["step"] == 1
    path.unlink()  # e.g. lost in a crash between the renames
    assert find_checkpoint(path) == previous_path(path)


def test_generator_export_round_trip(tmp_path):
    """The export rebuilds the generator from its config alone and gives identical outputs."""
    torch.manual_seed(0)
    G_A = build_generator("resnet_6blocks", ngf=4, n_blocks=1)
    G_B = build_generator("unet_256", n_downs=5, ngf=4)
    meta = {"mode": "cyclegan", "size": [32, 32], "stats": {"psnr": 20.5}}
    path = export_generator(tmp_path / "model.pt", G_A, meta, extra_generators={"G_B": G_B})

    loaded, loaded_meta = load_generator_export(path)
    assert loaded_meta == meta and not loaded.training
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), G_A.eval()(x))
        other, _ = load_generator_export(path, name="G_B")
        assert torch.equal(other(x), G_B.eval()(x))
    assert loaded.config == G_A.config
    with pytest.raises(UserError, match="no generator named 'G_C'.*G_B"):
        load_generator_export(path, name="G_C")


def test_export_loader_refuses_training_checkpoints(tmp_path):
    path = save_checkpoint(tmp_path / "main_latest.pt", {"step": 3, "networks": {}})
    with pytest.raises(UserError, match="not a generator export"):
        load_generator_export(path)


def test_export_with_mismatched_weights_is_a_clear_error(tmp_path):
    G = build_generator("resnet_6blocks", ngf=4, n_blocks=1)
    path = export_generator(tmp_path / "model.pt", G, {})
    data = load_checkpoint(path)
    data["generator_config"]["ngf"] = 8  # config no longer matches the stored weights
    save_checkpoint(path, data)
    with pytest.raises(UserError, match="does not match its generator config"):
        load_generator_export(path)

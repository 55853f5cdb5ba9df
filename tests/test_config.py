"""Dataclass configs: the JSON round trip, the nested run settings and old flat files.

``tests/fixtures/configs`` holds a ``dance_config.json`` and a ``translate.json`` written before the
run settings (lr, seed, device, ...) were nested under ``train``, with non-default values for several
of them, so that a migration which drops or misplaces a key shows here.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vid2vid_app.config import (
    TrainSettings,
    changed_fields,
    from_dict,
    load_json,
    nest_fields,
    replace_given,
    save_json,
    to_dict,
)
from vid2vid_app.dance.config import DanceConfig
from vid2vid_app.dance.config import make_config as dance_config
from vid2vid_app.translate.config import DataSpec, TranslateConfig
from vid2vid_app.translate.config import make_config as translate_config

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
RUN_SETTINGS = {f for f in TrainSettings.__dataclass_fields__}


def test_nest_fields_moves_only_the_named_dataclass_fields():
    old = {"ngf": 16, "lr": 1e-3, "seed": 7, "steps": {"global": 5}}
    assert nest_fields(old, "train", TrainSettings) == {"ngf": 16, "steps": {"global": 5},
                                                         "train": {"lr": 1e-3, "seed": 7}}
    assert old == {"ngf": 16, "lr": 1e-3, "seed": 7, "steps": {"global": 5}}  # the input is not changed
    # Already nested: unchanged; a stray flat key never overrides the nested value.
    new = {"ngf": 16, "train": {"lr": 1e-3}}
    assert nest_fields(new, "train", TrainSettings) == new
    assert nest_fields({"lr": 5.0, "train": {"lr": 1e-3}}, "train", TrainSettings) == {"train": {"lr": 1e-3}}


@dataclass
class _Job:
    name: str = "job"
    train: TrainSettings = field(default_factory=lambda: TrainSettings(log_every=50))


def test_missing_nested_keys_take_the_fields_own_default():
    """A nested dict without log_every gets the job's 50, not TrainSettings' generic 10."""
    job = from_dict(_Job, {"train": {"lr": 1e-3}})
    assert job.train.lr == 1e-3 and job.train.log_every == 50
    assert from_dict(_Job, {}).train.log_every == 50


def test_changed_fields_names_nested_fields_with_dots():
    a = dance_config("tiny")
    b = dance_config("tiny", ngf=12, train={"lr": 5e-4, "device": "cpu"})
    assert changed_fields(a, b) == ["ngf", "train.lr", "train.device"]
    assert changed_fields(a, dance_config("tiny")) == []


def test_replace_given_keeps_none_and_refuses_unknown_names():
    settings = TrainSettings(lr=1e-3)
    assert replace_given(settings, {"lr": None, "seed": 4}) == TrainSettings(lr=1e-3, seed=4)
    assert settings.seed == 0  # a copy
    with pytest.raises(TypeError, match="'learning_rate'"):
        replace_given(settings, {"learning_rate": 1.0})


def test_flat_dance_config_json_loads_into_the_nested_layout(tmp_path):
    """dance_config.json of the flat layout (``make_config("tiny")`` with some run settings changed)
    loads with every value in place, and is written back nested."""
    flat = json.loads((FIXTURES / "dance_config_flat.json").read_text())
    assert "train" not in flat and RUN_SETTINGS & set(flat)
    shutil.copy(FIXTURES / "dance_config_flat.json", tmp_path / "dance_config.json")
    cfg = load_json(DanceConfig, tmp_path / "dance_config.json")
    # A file from before the per-machine CPU precision: its run trained, and resumes, in fp32.
    expected = dance_config("tiny", train={"seed": 7, "num_workers": 2, "tensorboard": True, "lr": 3e-4,
                                           "cpu_bf16": False})
    assert cfg.train == expected.train
    # Every key of the old file is in place (fields added since then take their defaults).
    for key in RUN_SETTINGS & set(flat):
        assert getattr(cfg.train, key) == flat[key], key
    for key in set(flat) - RUN_SETTINGS:
        assert to_dict(cfg)[key] == flat[key], key

    save_json(cfg, tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text())
    assert not RUN_SETTINGS & set(again) and again["train"]["seed"] == 7
    assert load_json(DanceConfig, tmp_path / "again.json") == cfg


def test_flat_translate_json_loads_into_the_nested_layout(tmp_path):
    """translate.json of the flat layout (tiny pix2pix with some run settings changed) loads through
    the run-folder reader that --resume uses."""
    from vid2vid_app.translate.train import SETTINGS_FILE, load_settings

    flat = json.loads((FIXTURES / "translate_flat.json").read_text())
    assert "train" not in flat
    shutil.copy(FIXTURES / "translate_flat.json", tmp_path / SETTINGS_FILE)
    cfg = load_settings(tmp_path)
    expected = translate_config("pix2pix", "tiny", train={"seed": 5, "num_workers": 1, "amp": False, "beta1": 0.4,
                                                          "checkpoint_every": 50, "cpu_bf16": False})
    assert cfg.train == expected.train and cfg.data == DataSpec(paired=("/data/A", "/data/B"))
    for key in RUN_SETTINGS & set(flat):
        assert getattr(cfg.train, key) == flat[key], key
    for key in set(flat) - RUN_SETTINGS:
        assert to_dict(cfg)[key] == flat[key], key
    assert cfg.total_steps(10) == (300, 100)  # the job's own step counts stay at the top level
    assert from_dict(TranslateConfig, to_dict(cfg)) == cfg


def test_old_dance_model_file_config_loads_nested():
    """The config inside a model file written by version 0.1 (flat) comes back nested."""
    import torch

    from vid2vid_app.dance.model import DanceModel

    path = Path(__file__).parent / "fixtures" / "model_files" / "dance_model_v1.pt"
    stored = torch.load(path, weights_only=True)["config"]
    assert "train" not in stored
    model = DanceModel.load(path)
    assert model.config["train"]["seed"] == stored["seed"]
    assert model.config["train"]["batch_size"] == stored["batch_size"]
    assert not RUN_SETTINGS & set(model.config)

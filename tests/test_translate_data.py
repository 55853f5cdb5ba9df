"""Training data for translate-video: pairing, preprocessing, mixed sizes, domains, validation split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from translate_utils import DAY, known_transform, make_paired_folders, photo
from video_utils import make_test_clip, smooth_frames

from vid2vid_app.errors import UserError
from vid2vid_app.imaging import to_uint8, write_image
from vid2vid_app.translate.data import (
    PairedDataset,
    Preprocess,
    UnpairedDataset,
    aligned_folder,
    domain_frames,
    image_folder,
    pair_folders,
    paired_videos,
    split_validation,
    video_frames,
)

PREP = Preprocess("resize_and_crop", load_size=72, crop_size=64, flip=True)


def _write(folder, names, size=(40, 30), value=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        write_image(folder / name, np.full((size[1], size[0], 3), (value + 10 * i) % 256, np.uint8))


def test_paired_folders_list_unpaired_names(tmp_path):
    _write(tmp_path / "A", ["a.png", "b.png", "only_a.png"])
    _write(tmp_path / "B", ["a.jpg", "b.png", "only_b1.png", "only_b2.png"])
    with pytest.raises(UserError) as err:
        pair_folders(tmp_path / "A", tmp_path / "B", PREP)
    message = str(err.value)
    # Exactly the mismatches are listed, per folder (a.png pairs with a.jpg: matching is by stem).
    assert f"only in {tmp_path / 'A'}: only_a;" in message
    assert f"only in {tmp_path / 'B'}: only_b1, only_b2." in message


@pytest.mark.parametrize(("read", "folder", "message"), [
    (lambda path: image_folder(path, PREP), "empty", "contains no images"),
    (lambda path: domain_frames([path], PREP, label="domain A"), "missing", "does not exist"),
    (lambda path: domain_frames([path], PREP, label="domain B"), "empty", "contains no images"),
], ids=["image-folder-empty", "domain-missing", "domain-empty"])
def test_empty_and_missing_folders_are_clear_errors(tmp_path, read, folder, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match=message):
        read(tmp_path / folder)


def test_hidden_files_are_not_training_images(tmp_path):
    # The same listing as every other folder input (vid2vid_app.media.list_images): macOS's
    # "._name" files beside the images are neither frames of a domain nor unpaired names.
    _write(tmp_path / "A", ["1.png", "2.png", "._1.png"])
    _write(tmp_path / "B", ["1.png", "2.png", ".DS_Store.png"])
    assert image_folder(tmp_path / "A", PREP).names == ["1", "2"]
    a, b = pair_folders(tmp_path / "A", tmp_path / "B", PREP)
    assert a.names == b.names == ["1", "2"]


def test_mixed_sizes_are_resized_and_noted(tmp_path):
    _write(tmp_path / "A", ["1.png", "2.png"], size=(40, 30))
    _write(tmp_path / "A", ["3.png"], size=(90, 50))
    _write(tmp_path / "B", ["1.png", "2.png", "3.png"], size=(40, 30))
    notes: list[str] = []
    a, b = pair_folders(tmp_path / "A", tmp_path / "B", PREP, notes)
    # One note for folder A's two sizes, one for the pair whose A and B sizes differ.
    assert any("2 different sizes" in n and "90x50" in n and "72x72" in n for n in notes), notes
    assert any("different A and B sizes" in n for n in notes), notes
    # Every frame comes out at the working size whatever its file size.
    assert {a[i].shape for i in range(3)} == {(72, 72, 3)} == {b[i].shape for i in range(3)}


def test_same_crop_and_flip_for_both_images_of_a_pair(tmp_path, shared_samples):
    # B is a per-pixel function of A, so if the crop and flip match, crop(B) == f(crop(A)) up to
    # the resize's rounding (the transform is applied after the resize here).
    image = photo(shared_samples, DAY[0], width=160)[:100, :100]
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    write_image(tmp_path / "A" / "x.png", image)
    write_image(tmp_path / "B" / "x.png", known_transform(image))
    a, b = pair_folders(tmp_path / "A", tmp_path / "B", PREP)
    dataset = PairedDataset(a, b, PREP, train=True)
    torch.manual_seed(0)
    for _ in range(6):
        item = dataset[0]
        assert item["A"].shape == item["B"].shape == (3, 64, 64)
        assert item["A"].min() >= -1 and item["A"].max() <= 1
        got_b = to_uint8(item["B"]).astype(int)
        want_b = known_transform(to_uint8(item["A"])).astype(int)
        assert np.abs(got_b - want_b).mean() < 3.0


def test_validation_items_are_centred_and_deterministic(tmp_path):
    _write(tmp_path / "A", ["1.png"], size=(100, 80))
    _write(tmp_path / "B", ["1.png"], size=(100, 80))
    a, b = pair_folders(tmp_path / "A", tmp_path / "B", PREP)
    val = PairedDataset(a, b, PREP, train=False)
    torch.manual_seed(1)
    first = val[0]["A"]
    torch.manual_seed(2)
    assert torch.equal(first, val[0]["A"])


def test_aligned_folder_splits_left_and_right_halves(tmp_path):
    left = np.zeros((30, 40, 3), np.uint8)
    right = np.full((30, 40, 3), 200, np.uint8)
    (tmp_path / "AB").mkdir()
    write_image(tmp_path / "AB" / "pair.png", np.concatenate([left, right], axis=1))
    prep = Preprocess("crop", load_size=32, crop_size=16, flip=False)
    a, b = aligned_folder(tmp_path / "AB", prep)
    assert a[0].shape == b[0].shape == (30, 40, 3)
    assert a[0].max() == 0 and b[0].min() == 200


def test_scale_width_keeps_aspect_and_crop_mode_never_smaller_than_crop():
    sw = Preprocess("scale_width_and_crop", load_size=80, crop_size=32)
    assert sw.working_size(160, 100) == (80, 50)
    assert sw.working_size(400, 20) == (80, 32)  # never shorter than a crop
    crop = Preprocess("crop", load_size=80, crop_size=32)
    assert crop.working_size(100, 50) == (100, 50)
    assert crop.working_size(20, 40) == (32, 64)


def test_split_validation_holds_out_the_last_items(tmp_path):
    names = [f"{i}.png" for i in range(20)]
    _write(tmp_path / "A", names)
    _write(tmp_path / "B", names)
    a, b = pair_folders(tmp_path / "A", tmp_path / "B", PREP)
    (ta, tb), (va, vb) = split_validation(a, b, fraction=0.1, max_val=50)
    assert len(ta) == 18 and va.names == ["18", "19"] and vb.names == ["18", "19"]
    (ta, _), val = split_validation(a[:1], b[:1], fraction=0.1, max_val=50)
    assert val is None and len(ta) == 1


def test_unpaired_length_is_the_larger_domain(tmp_path):
    _write(tmp_path / "A", [f"{i}.png" for i in range(3)])
    _write(tmp_path / "B", [f"{i}.png" for i in range(7)])
    a = image_folder(tmp_path / "A", PREP)
    b = image_folder(tmp_path / "B", PREP)
    dataset = UnpairedDataset(a, b, PREP)
    assert len(dataset) == 7
    item = dataset[5]
    assert item["A"].shape == item["B"].shape == (3, 64, 64)


def test_video_frames_step_and_paired_video_count_mismatch(tmp_path):
    frames = smooth_frames(12, width=64, height=48)
    clip = make_test_clip(tmp_path / "a.mp4", frames, fps=10)
    short = make_test_clip(tmp_path / "b.mp4", frames[:9], fps=10)
    every_third = video_frames(clip, PREP, frame_step=3)
    assert len(every_third) == 4 and every_third[0].shape == (72, 72, 3)
    assert every_third.names[1].endswith("000003")
    assert len(video_frames(clip, PREP, max_frames=5)) == 5
    with pytest.raises(UserError, match="12 frames but .* 9"):
        paired_videos(clip, short, PREP)
    mixed = domain_frames([clip, tmp_path / "a.mp4"], PREP, frame_step=6, label="domain A")
    assert len(mixed) == 4


def test_paired_folders_from_real_photos(tmp_path, shared_samples):
    dir_a, dir_b = make_paired_folders(tmp_path, shared_samples, per_photo=2, size=80)
    a, b = pair_folders(dir_a, dir_b, PREP)
    assert len(a) == len(b) == 6 and a.names == b.names

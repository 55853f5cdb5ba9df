"""`dance transfer`: the motion-transfer pipeline end to end on a real source clip (real MediaPipe,
real PyAV), with tiny random-weight model files built through the model-file API."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from dance_transfer_utils import TARGET_SIZE, TARGET_STATS, cut_clip, gradient_clip, save_tiny_model
from video_utils import read_audio_duration

from vid2vid_app.cli.dance import dance
from vid2vid_app.dance.model import DanceModel
from vid2vid_app.dance.transfer import (
    frame_range,
    hold_missing,
    parse_position,
    run_generation,
    to_target_poses,
)
from vid2vid_app.errors import UserError
from vid2vid_app.imaging import to_tensor, to_uint8
from vid2vid_app.pose import compute_stats
from vid2vid_app.pose.keypoints import PoseSequence
from vid2vid_app.video import probe

SOURCE_FRAMES = 36


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder with two models: "tiny" (global generator only) and "tiny_face" (+ face stage)."""
    root = tmp_path_factory.mktemp("runs")
    save_tiny_model(root / "tiny" / "model.pt")
    save_tiny_model(root / "tiny_face" / "model.pt", face=True)
    return root


@pytest.fixture(scope="module")
def source(bundled_samples, tmp_path_factory):
    """The first 36 frames (0.6 s at 60 fps) of the two-person clip with a sine audio track."""
    return cut_clip(bundled_samples / "source_two_people.mp4", tmp_path_factory.mktemp("src") / "source.mp4",
                    SOURCE_FRAMES, with_audio=True)


def run_cli(*args):
    result = CliRunner().invoke(dance, ["transfer", *map(str, args)])
    assert "Traceback" not in result.output
    return result


# ------------------------------------------------------------------------------ end to end


def test_transfer_frame_count_fps_audio_and_side_by_side(runs, source, tmp_path):
    out = tmp_path / "out.mp4"
    result = run_cli(source, "-m", "tiny_face", "--runs-dir", runs, "-o", out, "--side-by-side")
    assert result.exit_code == 0, result.output
    src, got = probe(source), probe(out)
    # Exactly one output frame per source frame, at the source's frame rate, with its audio.
    assert got.frame_count == src.frame_count == SOURCE_FRAMES
    assert got.fps == src.fps
    assert got.has_audio
    assert read_audio_duration(out) == pytest.approx(src.duration, abs=0.1)
    # The output is the video part of the 64x128 canvas: the 360x640 target's aspect (64x114).
    assert (got.width, got.height) == (64, 114)
    sbs = out.with_name("out_sbs.mp4")
    sbs_info = probe(sbs)
    assert sbs_info.frame_count == SOURCE_FRAMES and sbs_info.height == 256
    assert sbs_info.width > 2 * 64  # three panels side by side
    assert "person detected in 36/36 frames" in result.output
    assert "normalised onto the target" in result.output


def test_start_end_in_frames_and_seconds(runs, source, tmp_path):
    out = tmp_path / "part.mp4"
    # Frames [6, 0.5 s * 60 fps = 30): 24 frames, the audio cut to the same 0.4 s.
    result = run_cli(source, "-m", runs / "tiny", "-o", out, "--start", "6", "--end", "0.5s", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output == ""  # --quiet: no summary, no bars
    info = probe(out)
    assert info.frame_count == 24
    assert read_audio_duration(out) == pytest.approx(24 / 60, abs=0.06)
    assert b"subme=7" in out.read_bytes()  # x264's default preset, medium


def test_encoder_preset_reaches_x264(runs, source, tmp_path):
    out = tmp_path / "fast.mp4"
    result = run_cli(source, "-m", runs / "tiny", "-o", out, "--end", "6", "--encoder-preset", "veryfast", "-q")
    assert result.exit_code == 0, result.output
    assert probe(out).frame_count == 6
    assert b"subme=2" in out.read_bytes()  # veryfast's sub-pixel motion search level


def test_threaded_generation_matches_a_plain_loop(runs):
    """Rendering and encoding threads must not reorder frames or break the feedback chain."""
    model = DanceModel.load(runs / "tiny_face" / "model.pt", "cpu")
    rng = np.random.default_rng(0)
    base = np.array([[180.0, 200 + 6 * k, 0.9] for k in range(33)], dtype=np.float32)
    kps = np.stack([base + rng.normal(0, 3, base.shape).astype(np.float32) * [1, 1, 0] for _ in range(6)])
    got = []
    run_generation(model, kps, lambda gen, pose: got.append(gen.copy()), quiet=True)
    prev, expected = None, []
    for kp in kps:
        box = model.face_box(kp)
        prev = model.generate(to_tensor(model.render(kp)), prev, boxes=None if box is None else box[None])
        expected.append(to_uint8(prev)[0])
    assert len(got) == len(kps)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_encoder_failure_stops_the_pipeline_without_leaking_threads(runs):
    model = DanceModel.load(runs / "tiny" / "model.pt", "cpu")
    kps = np.tile(np.array([[180.0, 300.0, 0.9]] * 33, dtype=np.float32), (40, 1, 1))
    before = set(threading.enumerate())
    seen = []

    def write(gen, pose):
        seen.append(1)
        if len(seen) == 3:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_generation(model, kps, write, quiet=True)
    assert len(seen) == 3
    # The pipeline's render and encode threads are gone (tqdm may start its own monitor thread).
    assert [t.name for t in threading.enumerate() if t not in before and t.name != "tqdm_monitor"] == []


# ------------------------------------------------------------------------------ bad input


def test_no_person_in_source_is_a_clear_error(runs, tmp_path):
    clip = gradient_clip(tmp_path / "empty.mp4")
    out = tmp_path / "out.mp4"
    result = run_cli(clip, "-m", "tiny", "--runs-dir", runs, "-o", out, "--quiet")
    assert result.exit_code == 1
    assert "no person was detected in any of the 12 frames" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == [clip]  # no temp file left behind


def test_unknown_model_lists_the_models_that_exist(runs, source, tmp_path):
    result = run_cli(source, "-m", "nobody", "--runs-dir", runs, "-o", tmp_path / "o.mp4")
    assert result.exit_code == 1
    assert "unknown model 'nobody'" in result.output
    assert "tiny, tiny_face" in result.output


def test_existing_output_is_refused_and_kept(runs, source, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    result = run_cli(source, "-m", "tiny", "--runs-dir", runs, "-o", out)
    assert result.exit_code == 1
    assert "already exists; pass --overwrite" in result.output
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("outputs", [["-o", "o.avi"], ["-o", "o.mp4", "--side-by-side", "s.webm"]],
                         ids=["output", "side-by-side"])
def test_output_that_cannot_hold_h264_fails_before_any_work(runs, source, tmp_path, monkeypatch, outputs):
    import vid2vid_app.dance.transfer as transfer_module

    def no_detection(*args, **kwargs):
        raise AssertionError("poses were detected before the output name was checked")

    monkeypatch.setattr(transfer_module, "load_model", no_detection)
    result = run_cli(source, "-m", "tiny", "--runs-dir", runs, *[tmp_path / a if "." in a else a for a in outputs])
    assert result.exit_code == 1 and "cannot write H.264 video to a" in result.output, result.output


def test_a_dance_model_given_to_translate_video_says_so(runs, source, tmp_path):
    from vid2vid_app.cli.translate import translate_video

    result = CliRunner().invoke(translate_video, ["-m", str(runs / "tiny" / "model.pt"), str(source),
                                                  "-o", str(tmp_path / "t.mp4")])
    assert result.exit_code == 1 and "use it with `dance transfer`" in result.output, result.output


def test_side_by_side_flag_without_a_value(runs, source, tmp_path):
    """`--side-by-side` followed by another option takes no value: OUT_sbs.mp4 is checked too."""
    from vid2vid_app.cli.dance_transfer import side_by_side_path

    out = tmp_path / "clip.mp4"
    assert side_by_side_path("__auto__", out) == tmp_path / "clip_sbs.mp4"
    assert side_by_side_path("x.mkv", out).name == "x.mkv" and side_by_side_path(None, out) is None
    (tmp_path / "clip_sbs.mp4").write_bytes(b"old")
    result = run_cli(source, "--side-by-side", "-o", out, "-m", "tiny", "--runs-dir", runs)
    assert result.exit_code == 1 and "clip_sbs.mp4 already exists" in result.output
    assert not out.exists()


def test_source_is_never_overwritten(runs, source):
    before = source.read_bytes()
    result = run_cli(source, "-m", "tiny", "--runs-dir", runs, "-o", source, "--overwrite")
    assert result.exit_code == 1
    assert "is the source video" in result.output
    assert source.read_bytes() == before


@pytest.mark.parametrize("content", [None, b"this is not a video"])
def test_missing_or_invalid_source(runs, tmp_path, content):
    src = tmp_path / "src.mp4"
    if content is not None:
        src.write_bytes(content)
    result = run_cli(src, "-m", "tiny", "--runs-dir", runs, "-o", tmp_path / "o.mp4")
    assert result.exit_code == 1
    assert str(src) in result.output
    assert ("does not exist" if content is None else "not a readable video") in result.output


def test_truncated_source_transfers_what_decodes_and_says_so(runs, source, tmp_path):
    data = source.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    result = run_cli(cut, "-m", "tiny", "--runs-dir", runs, "-o", out)
    assert result.exit_code == 0, result.output
    n = probe(out).frame_count
    assert 0 < n < SOURCE_FRAMES
    assert f"ended after {n} of the expected {SOURCE_FRAMES} frames" in result.output


def test_model_file_from_an_older_config_still_transfers(runs, source, tmp_path):
    """A model file written before some config fields existed (and without run data) loads and
    transfers; missing fields take their defaults."""
    payload = torch.load(runs / "tiny" / "model.pt", weights_only=True)
    for key in ("face_size", "face_box_frac", "val_max_frames", "detect_max_side", "videos"):
        payload["meta"]["config"].pop(key)
    payload["meta"].pop("data")
    old = tmp_path / "old" / "model.pt"
    old.parent.mkdir()
    torch.save(payload, old)
    out = tmp_path / "old.mp4"
    result = run_cli(source, "-m", old, "-o", out, "--end", "4", "--no-normalize", "--quiet")
    assert result.exit_code == 0, result.output
    assert probe(out).frame_count == 4


def test_crop_follows_the_person_inside_the_region(source):
    """The two-person clip: on whole frames the detector follows the woman in front; cropping to
    the upper part makes the man behind her the source (coordinates in the region's pixels)."""
    from vid2vid_app.dance.transfer import detect_source_poses

    whole = detect_source_poses(source, 0, 10, quiet=True)
    region = (0, 0, 362, 400)
    cropped = detect_source_poses(source, 0, 10, crop=region, quiet=True)
    assert cropped.sequence.size == (362, 400) and cropped.detected == 10
    nose_whole = np.nanmean(whole.sequence.keypoints[:, 0, 1])
    nose_crop = np.nanmean(cropped.sequence.keypoints[:, 0, 1]) + region[1]
    assert nose_whole > 260 and nose_crop < 220  # the woman's head is low in the frame, the man's high


@pytest.mark.parametrize(("crop", "exit_code", "message"), [
    ("300,0,100,100", 1, "must lie inside the 362x640 frames"),
    ("1,2,3", 2, "X,Y,WIDTH,HEIGHT"),  # a usage error
], ids=["outside", "three-numbers"])
def test_crop_outside_the_frame_is_refused(runs, source, tmp_path, crop, exit_code, message):
    result = run_cli(source, "-m", "tiny", "--runs-dir", runs, "-o", tmp_path / "o.mp4", "--crop", crop)
    assert result.exit_code == exit_code and message in result.output
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(("start", "end", "message"), [
    ("40", None, "has only 36 frames"),
    ("20", "10", "holds no frame"),
    ("ten", None, "neither a frame number"),
], ids=["start-past-the-end", "empty-range", "not-a-position"])
def test_bad_ranges(source, start, end, message):
    with pytest.raises(UserError, match=message):
        frame_range(36, 60.0, start, end, source)


# ------------------------------------------------------------------------------ pieces


def test_parse_position_frames_and_seconds():
    assert parse_position("120", 30.0) == 120
    assert parse_position("2.5s", 30.0) == 75
    assert parse_position("1s", 29.97) == 30
    assert parse_position(None, 30.0) is None
    assert frame_range(100, 50.0, None, "1s") == (0, 50)
    assert frame_range(100, 50.0, "10", "500") == (10, 100)  # the end is clipped to the video


def test_hold_missing_uses_the_nearest_earlier_detection():
    kp = np.arange(6, dtype=np.float32).reshape(6, 1, 1).repeat(3, axis=2)
    valid = np.array([False, True, False, False, True, False])
    held = hold_missing(kp, valid)
    # Frame 0 (before the first detection) takes frame 1; 2-3 take 1; 5 takes 4.
    assert held[:, 0, 0].tolist() == [1, 1, 1, 1, 4, 4]


def test_normalisation_puts_the_source_on_the_target_ground_and_scale(bundled_samples):
    """Real source poses (another camera, other size) mapped onto the target's statistics: their
    ankle range and body heights become the target's (within a few pixels)."""
    from vid2vid_app.dance.transfer import detect_source_poses

    src = bundled_samples / "target_cam03.mp4"  # 362x640, another view: other ground line and scale
    poses = detect_source_poses(src, 0, 60, quiet=True)
    out = to_target_poses(poses, TARGET_SIZE, TARGET_STATS, normalize=True, source=src)
    stats = compute_stats(PoseSequence(out, TARGET_SIZE, 60.0))
    # The source moves over less depth than the target, so normalize() centres its (narrower)
    # range on the target's middle ground position.
    middle = (TARGET_STATS.close_ankle_y + TARGET_STATS.far_ankle_y) / 2
    assert (stats.close_ankle_y + stats.far_ankle_y) / 2 == pytest.approx(middle, abs=6)
    assert stats.height_close == pytest.approx(TARGET_STATS.height_at(stats.close_ankle_y), rel=0.03)
    # Without normalisation the source keeps its own ground line, about 24 px lower.
    raw = to_target_poses(poses, TARGET_SIZE, TARGET_STATS, normalize=False, source=src)
    raw_stats = compute_stats(PoseSequence(raw, TARGET_SIZE, 60.0))
    assert (raw_stats.close_ankle_y + raw_stats.far_ankle_y) / 2 - middle > 15


# ------------------------------------------------------------------------------ --poses


def moving_poses(frames: int, size=(362, 640), missing=()) -> PoseSequence:
    """A standing figure drifting a little down and right over ``frames`` frames of ``size``
    (like `dance pose` would write), with no pose (NaN, confidence 0) in the ``missing`` frames."""
    from pose_utils import standing_pose

    base = standing_pose(*size)
    kp = np.stack([base + np.array([0.5 * t, 0.3 * t, 0], np.float32) for t in range(frames)])
    seq = PoseSequence(kp, size, 60.0)
    for t in missing:
        seq.keypoints[t, :, :2], seq.keypoints[t, :, 2] = np.nan, 0.0
    return seq


def test_poses_file_replaces_detection_without_importing_mediapipe(runs, source, tmp_path, monkeypatch):
    """`dance transfer --poses DIR/keypoints.npz` (as `dance pose` writes it) needs no detector:
    with mediapipe made unimportable the whole command still runs, one frame per source frame."""
    import sys

    keypoints = tmp_path / "pose" / "keypoints.npz"
    keypoints.parent.mkdir()
    moving_poses(SOURCE_FRAMES, missing=(0, 20, 21)).save(keypoints)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # any `import mediapipe` now fails
    out = tmp_path / "out.mp4"
    result = run_cli(source, "-m", "tiny_face", "--runs-dir", runs, "-o", out, "--poses", keypoints,
                     "--side-by-side")
    assert result.exit_code == 0, result.output
    assert probe(out).frame_count == SOURCE_FRAMES and probe(out.with_name("out_sbs.mp4")).frame_count == SOURCE_FRAMES
    assert f"poses read from {keypoints}: a pose in 33/36 frames; 3 held" in result.output
    assert "normalised onto the target" in result.output

    part = tmp_path / "part.mp4"  # the folder `dance pose` wrote stands for its keypoints.npz
    result = run_cli(source, "-m", "tiny", "--runs-dir", runs, "-o", part, "--poses", keypoints.parent,
                     "--start", "10", "--end", "0.5s", "--no-normalize", "--quiet")
    assert result.exit_code == 0, result.output
    assert probe(part).frame_count == 20


@pytest.mark.parametrize(("write", "given", "options", "messages"), [
    (lambda p: moving_poses(30).save(p), "p.npz", [],
     ("{poses} holds poses for 30 frames but {source} has 36 frames",)),
    (lambda p: moving_poses(SOURCE_FRAMES, size=(720, 1280)).save(p), "p.npz", [],
     ("720x1280 frames but", "is 362x640")),
    (lambda p: PoseSequence.empty(SOURCE_FRAMES, (362, 640), 60.0).save(p), "p.npz", [],
     ("has no pose in any of the 36 frames",)),
    (None, "nope.npz", [], ("nope.npz does not exist",)),
    (None, ".", [], ("is a folder without keypoints.npz",)),
    (lambda p: moving_poses(SOURCE_FRAMES).save(p), "p.npz", ["--crop", "0,0,200,300"],
     ("cannot be combined with --poses",)),
], ids=["frame-count", "frame-size", "no-pose", "missing-file", "folder-without-file", "with-crop"])
def test_poses_that_do_not_belong_to_the_source_are_refused(runs, source, tmp_path, write, given, options,
                                                            messages):
    out = tmp_path / "out.mp4"
    poses = tmp_path / given
    if write is not None:
        write(poses)
    result = run_cli(source, "-m", "tiny", "--runs-dir", runs, "-o", out, "--poses", poses, *options)
    assert result.exit_code == 1
    for message in messages:
        assert message.format(poses=poses, source=source) in result.output, result.output
    assert not out.exists()


# ------------------------------------------------------------------------------ never lose a user's files


def test_no_output_can_be_one_of_the_inputs(runs, source, tmp_path):
    """Neither -o nor --side-by-side may be the source (under any name) or the model file."""
    import os
    import shutil

    os.link(source, tmp_path / "same_source.mp4")
    model = tmp_path / "model.mp4"  # a model file may have any name
    shutil.copy(runs / "tiny" / "model.pt", model)
    kept = {source: source.read_bytes(), model: model.read_bytes()}
    for outputs, message in [
        (["-o", tmp_path / "same_source.mp4"], "is the input"),
        (["-o", tmp_path / "out.mp4", "--side-by-side", source], "is the source video"),
        (["-o", model], "is the input"),
        (["-o", tmp_path / "out.mp4", "--side-by-side", model], "is the input"),
    ]:
        result = run_cli(source, "-m", model, *outputs, "--overwrite", "--end", "2", "--quiet")
        assert result.exit_code == 1 and message in result.output, result.output
    assert all(p.read_bytes() == data for p, data in kept.items())
    assert not (tmp_path / "out.mp4").exists()


def test_a_second_writer_of_an_output_is_refused(runs, source, tmp_path):
    from fileio_utils import output_locked_by_another_process

    out, sbs = tmp_path / "out.mp4", tmp_path / "sbs.mp4"
    with output_locked_by_another_process(sbs, tmp_path) as pid:
        result = run_cli(source, "-m", "tiny", "--runs-dir", runs, "-o", out, "--side-by-side", sbs)
    assert result.exit_code == 1 and f"is in use by another process (pid {pid})" in result.output
    assert not out.exists() and not sbs.exists()


def test_unwritable_output_fails_before_any_work(runs, source, monkeypatch):
    import vid2vid_app.dance.transfer as transfer_module

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded although the output cannot be written")

    monkeypatch.setattr(transfer_module, "load_model", no_work)
    result = run_cli(source, "-m", "tiny", "--runs-dir", runs, "-o", "/proc/out.mp4")
    assert result.exit_code == 1
    assert "cannot write into /proc: this location does not take new files." in result.output


def test_disk_full_is_one_sentence_and_leaves_nothing(runs, source, tmp_path):
    from fileio_utils import full_tmpfs

    with full_tmpfs(tmp_path / "disk") as disk:
        result = run_cli(source, "-m", "tiny", "--runs-dir", runs, "-o", disk / "out.mp4", "--end", "6", "--quiet")
        assert result.exit_code == 1
        assert result.output.strip() == (f"Error: cannot write {disk / 'out.mp4'}: no space left on device "
                                         "(ENOSPC); free some space or choose another location.")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


@pytest.mark.parametrize(("preset", "target", "content"), [
    ("tiny", (360, 640), (64, 114)), ("tiny", (1920, 1080), (114, 64)), ("standard", (360, 640), (512, 910)),
])
def test_output_size_stated_in_the_readme(preset, target, content):
    """The README states the transfer output's size per preset: the target's shape inside the final
    canvas (the tiny model file of these tests has the tiny preset's 64x128 canvas and gives 64x114)."""
    from vid2vid_app.dance.config import final_canvas, make_config
    from vid2vid_app.imaging import letterbox_geometry

    box = letterbox_geometry(*target, *final_canvas(make_config(preset), target))
    assert (box.content_w, box.content_h) == content
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"{content[0]}x{content[1]}" in readme

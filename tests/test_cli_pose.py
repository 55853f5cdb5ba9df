"""`dance pose` through click's CliRunner: outputs, summary, and every bad input from the spec.

Inputs are small clips derived from the bundled sample (samples/target_cam01.mp4, a real person),
downscaled to 180x320 and cut to a dozen frames, so each run takes about a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from click.testing import CliRunner
from video_utils import make_test_clip, smooth_frames

from vid2vid_app.cli.dance import dance
from vid2vid_app.imaging import read_image, write_image
from vid2vid_app.pose import PoseSequence
from vid2vid_app.video import iter_frames, probe

W, H = 180, 320


@pytest.fixture(scope="module")
def person_frames(bundled_samples):
    """16 real frames (every 2nd of the first 32) of one man, full body, 180x320."""
    return list(iter_frames(bundled_samples / "target_cam01.mp4", size=(W, H), end=32, step=2))


@pytest.fixture(scope="module")
def clips(tmp_path_factory, person_frames):
    root = tmp_path_factory.mktemp("clips")
    gray = np.full_like(person_frames[0], 128)
    partial = person_frames[:14]
    partial = partial[:4] + [gray, gray] + partial[6:10] + [gray] * 4  # gap 4-5, missing 10-13
    paths = {
        "person": make_test_clip(root / "person.mp4", person_frames[:12], fps=30),
        "partial": make_test_clip(root / "partial.mp4", partial, fps=30),
        "noperson": make_test_clip(root / "noperson.mp4", smooth_frames(8, 96, 80), fps=30),
    }
    return paths


def run(args):
    """Invoke `dance` and check it never ends in a traceback."""
    result = CliRunner().invoke(dance, ["pose", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def frame_count(path):
    return probe(path).frame_count


def test_video_outputs_and_summary(clips, tmp_path):
    out = tmp_path / "out"
    result = run([clips["person"], "-o", out, "--max-side", 160])
    assert result.exit_code == 0, result.output
    seq = PoseSequence.load(out / "keypoints.npz")
    assert seq.keypoints.shape == (12, 33, 3) and seq.size == (W, H) and seq.fps == 30
    assert seq.valid.all()
    # Detection ran at 90x160 but the keypoints are in the input's 180x320 pixels.
    nose_to_ankle = seq.keypoints[:, 27, 1] - seq.keypoints[:, 0, 1]
    assert np.median(nose_to_ankle) > 100
    files = sorted((out / "openpose").iterdir())
    assert len(files) == 12 and files[0].name == "person_000000000000_keypoints.json"
    assert len(json.loads(files[0].read_text())["people"][0]["pose_keypoints_2d"]) == 75
    pose = probe(out / "pose.mp4")
    assert (pose.frame_count, pose.fps, pose.width, pose.height) == (12, Fraction(30), W, H)
    overlay = probe(out / "overlay.mp4")
    assert (overlay.frame_count, overlay.width, overlay.height) == (12, 90, 160)
    # Stick figures on black: some colour where the person is, black elsewhere.
    first = next(iter_frames(out / "pose.mp4"))
    assert first.max() > 200 and np.median(first) < 10
    assert "12 frame(s), a person in 12 (100%)" in result.output
    assert "time:" in result.output and "wrote:" in result.output
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no staging folder may remain"


def test_person_in_only_some_frames_is_filled_and_reported(clips, tmp_path):
    out = tmp_path / "out"
    result = run([clips["partial"], "-o", out, "--no-overlay", "--no-smooth"])
    assert result.exit_code == 0, result.output
    seq = PoseSequence.load(out / "keypoints.npz")
    assert len(seq) == 14
    assert seq.valid[:10].all() and not seq.valid[10:].any()  # 4-5 filled, 10-13 missing
    assert "2 frame(s) filled by interpolation, 4 left without a pose (frames 10-13)" in result.output
    assert frame_count(out / "pose.mp4") == 14  # missing frames are black, the count is kept
    assert not (out / "overlay.mp4").exists()


def test_no_person_anywhere_is_a_clear_error(clips, tmp_path):
    out = tmp_path / "out"
    result = run([clips["noperson"], "-o", out])
    assert result.exit_code == 1
    assert "no person was detected in any of the 8 frame(s)" in result.output
    assert not out.exists(), "nothing may be left behind"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("nope.mp4", None, "does not exist"),
    ("fake.mp4", "this is not a video\n", "fake.mp4"),
], ids=["missing", "text-file"])
def test_missing_path_and_text_file(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    result = run([tmp_path / name, "-o", tmp_path / "out"])
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "out").exists()


def test_truncated_video_decodes_what_is_readable(clips, tmp_path):
    data = clips["person"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out"
    result = run([cut, "-o", out, "--no-overlay"])
    assert result.exit_code == 0, result.output
    assert "damaged or cut short" in result.output
    seq = PoseSequence.load(out / "keypoints.npz")
    assert 0 < len(seq) < 12
    assert frame_count(out / "pose.mp4") == len(seq)


@pytest.mark.parametrize(("header_only", "messages"), [
    (True, ("zero.mp4", "no decodable video frames")),  # index kept, no picture data
    (False, ("zero.mp4",)),  # an empty file
], ids=["header-only", "empty-file"])
def test_zero_frame_video(clips, tmp_path, header_only, messages):
    data = clips["person"].read_bytes()
    video = tmp_path / "zero.mp4"
    video.write_bytes(data[: data.find(b"mdat") + 4] if header_only else b"")
    result = run([video, "-o", tmp_path / "out"])
    assert result.exit_code == 1 and all(m in result.output for m in messages), result.output
    assert not (tmp_path / "out").exists()


def test_odd_size_video_is_padded_to_even(person_frames, tmp_path):
    odd = tmp_path / "odd.mp4"
    with av.open(str(odd), "w") as container:  # 4:4:4 lets H.264 store an odd size
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W + 1, H + 1, "yuv444p"
        for i, image in enumerate(person_frames[:6]):
            frame = av.VideoFrame.from_ndarray(np.pad(image, ((0, 1), (0, 1), (0, 0)), mode="edge"), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    out = tmp_path / "out"
    result = run([odd, "-o", out])
    assert result.exit_code == 0, result.output
    assert PoseSequence.load(out / "keypoints.npz").size == (W + 1, H + 1)
    pose = probe(out / "pose.mp4")
    assert pose.frame_count == 6 and pose.width % 2 == 0 and pose.height % 2 == 0
    assert pose.width >= W + 1 and pose.height >= H + 1


def test_existing_output_refused_then_overwritten(person_frames, tmp_path):
    image = tmp_path / "man.png"
    write_image(image, person_frames[0])
    out = tmp_path / "out"
    out.mkdir()
    (out / "pose.png").write_bytes(b"old")
    result = run([image, "-o", out])
    assert result.exit_code == 1 and "already holds pose.png" in result.output and "--overwrite" in result.output
    assert (out / "pose.png").read_bytes() == b"old"
    result = run([image, "-o", out, "--overwrite"])
    assert result.exit_code == 0, result.output
    # Image input: one frame, pose.png and overlay.png at the image size, OpenPose file named after it.
    assert read_image(out / "pose.png").shape == (H, W, 3)
    assert read_image(out / "overlay.png").shape == (H, W, 3)
    assert [p.name for p in (out / "openpose").iterdir()] == ["man_keypoints.json"]
    assert len(PoseSequence.load(out / "keypoints.npz")) == 1


def test_folder_of_images(person_frames, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_image(folder / "img2.png", person_frames[2])
    write_image(folder / "img10.png", person_frames[10])
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    result = run([folder, "-o", out, "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # --quiet: no summary
    assert sorted(p.name for p in (out / "pose").iterdir()) == ["img10.png", "img2.png"]
    assert sorted(p.name for p in (out / "overlay").iterdir()) == ["img10.png", "img2.png"]
    assert PoseSequence.load(out / "keypoints.npz").valid.tolist() == [True, True]  # natural order


def test_folder_of_images_of_different_sizes_is_refused(person_frames, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_image(folder / "img2.png", person_frames[2])
    write_image(folder / "img30.png", person_frames[0][:100])
    result = run([folder, "-o", tmp_path / "out"])
    assert result.exit_code == 1 and "same size" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("below_the_file", "message"), [
    (True, "cannot create the output folder"),
    (False, "is a file"),
], ids=["under-a-file", "a-file"])
def test_unwritable_output_folder(clips, tmp_path, below_the_file, message):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    result = run([clips["person"], "-o", blocker / "out" if below_the_file else blocker])
    assert result.exit_code == 1 and message in result.output
    assert blocker.read_text() == "a file, not a folder"


def test_input_inside_the_outputs_is_never_replaced(clips, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    src = out / "pose.mp4"
    src.write_bytes(clips["person"].read_bytes())
    result = run([src, "-o", out, "--overwrite"])
    assert result.exit_code == 1 and "would be replaced" in result.output
    assert src.read_bytes() == clips["person"].read_bytes()


def test_quiet_run_leaves_stderr_empty(clips, tmp_path):
    """MediaPipe / TF Lite / absl start-up lines ("INFO: Created TensorFlow Lite XNNPACK delegate",
    "W0000 ... inference_feedback_manager ...") go straight to file descriptor 2, past click; a
    separate process shows whether any reach the terminal. --quiet prints nothing at all."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "vid2vid_app.cli.dance", "pose", str(clips["person"]), "-o",
                           str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == ""
    assert (out / "keypoints.npz").is_file()


# ------------------------------------------------------------------------------ never lose a user's files


def test_output_inside_the_input_folder_is_refused(person_frames, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_image(folder / "img1.png", person_frames[0])
    for out in (folder, folder / "poses"):
        result = run([folder, "-o", out, "--overwrite"])
        assert result.exit_code == 1 and "inside the input folder" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["img1.png"]


def test_a_second_writer_of_the_output_folder_is_refused(clips, tmp_path):
    from fileio_utils import output_locked_by_another_process

    out = tmp_path / "out"
    with output_locked_by_another_process(out, tmp_path) as pid:
        result = run([clips["person"], "-o", out])
    assert result.exit_code == 1 and f"is in use by another process (pid {pid})" in result.output
    assert not (out / "keypoints.npz").exists()


def test_unwritable_location_fails_before_detection(clips):
    result = run([clips["person"], "-o", "/proc/poses"])
    assert result.exit_code == 1 and "cannot" in result.output and "/proc" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_disk_full_is_one_sentence_and_leaves_only_the_users_files(clips, tmp_path):
    from fileio_utils import full_tmpfs

    with full_tmpfs(tmp_path / "disk") as disk:
        result = run([clips["person"], "-o", disk, "--quiet"])
        assert result.exit_code == 1, result.output
        assert "no space left on device (ENOSPC)" in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no staging folder, no half outputs


def test_staging_folder_names_the_process_and_stale_ones_are_removed(clips, tmp_path, monkeypatch):
    """A killed run leaves its staging folder; the next run into that folder removes it. The
    staging folder's name carries the pid, so only a dead process's folder is taken away."""
    import os
    import time

    from vid2vid_app.dance import pose_outputs
    from vid2vid_app.fileio import _TEMP_NAME

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".pose.{dead.pid}-abcd1234.tmp"
    (stale / "openpose").mkdir(parents=True)
    legacy = out / ".pose-q1w2e3r4.tmp"  # an older version's name (no pid), two hours old
    legacy.mkdir()
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    (out / "notes.txt").write_text("mine")
    seen = []
    real_run = pose_outputs._run

    def watching_run(src, input_path, size, opt, staging, *args):
        seen.append(staging.name)
        return real_run(src, input_path, size, opt, staging, *args)

    monkeypatch.setattr(pose_outputs, "_run", watching_run)
    result = run([clips["person"], "-o", out, "--no-overlay", "--quiet"])
    assert result.exit_code == 0, result.output
    assert seen[0].startswith(f".pose.{os.getpid()}-") and _TEMP_NAME.match(seen[0])
    assert sorted(p.name for p in out.iterdir()) == ["keypoints.npz", "notes.txt", "openpose", "pose.mp4"]


def test_help_names_the_output_folder_it_writes_to():
    result = run(["--help"])
    assert "-o, --output OUTDIR" in result.output and "write to OUTDIR" in " ".join(result.output.split())

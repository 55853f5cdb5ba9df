"""`dance live` parts and refusals: the hand-over slots, statistics, the wall-clock recorder, the
online normalisation against the offline one, source parsing, the MJPEG server (real sockets,
urllib) and the command's clear errors for bad input (real CLI through CliRunner, real OpenCV
capture). The end-to-end runs are in test_dance_live_outputs.py."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from dance_transfer_utils import TARGET_SIZE, TARGET_STATS, save_tiny_model
from live_utils import decode_jpeg, free_port, read_mjpeg_frames
from pose_utils import standing_pose

from vid2vid_app.cli.dance import dance
from vid2vid_app.dance.live import LatestSlot, LiveStats, OnlineNormalizer
from vid2vid_app.dance.live_server import FrameServer
from vid2vid_app.dance.live_sources import parse_source
from vid2vid_app.dance.live_view import Recorder, compose, panel_layout
from vid2vid_app.errors import UserError
from vid2vid_app.pose import compute_stats, normalize
from vid2vid_app.pose import skeleton as sk
from vid2vid_app.pose.keypoints import PoseSequence
from vid2vid_app.video import iter_frames, probe


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    save_tiny_model(root / "tiny" / "model.pt")
    return root


def live(runs, *args, env=None):
    result = CliRunner(env=env).invoke(dance, ["live", "-m", "tiny", "--runs-dir", str(runs), *map(str, args)])
    assert "Traceback" not in result.output, result.output
    return result


# ------------------------------------------------------------------------------ hand-over slots


def test_lossy_slot_keeps_the_newest_item_and_counts_the_replaced_ones():
    drops = []
    slot = LatestSlot(lossless=False, on_drop=drops.append)
    for item in range(5):
        slot.put(item)
    assert slot.get(timeout=0) == 4
    assert sum(drops) == 4  # items 0-3 were replaced before anyone took them
    assert slot.get(timeout=0.05) is None and not slot.finished


def test_lossless_slot_makes_the_producer_wait_for_the_consumer():
    slot = LatestSlot(lossless=True)
    got = []

    def produce():
        for item in range(20):
            slot.put(item)
        slot.close()

    thread = threading.Thread(target=produce)
    thread.start()
    while (item := slot.get(timeout=5)) is not None:
        got.append(item)
        time.sleep(0.001)
    thread.join()
    assert got == list(range(20))  # nothing skipped, in order
    assert slot.finished


def test_closed_slot_still_delivers_its_item_but_a_stopped_one_drops_it():
    closed = LatestSlot()
    closed.put("last")
    closed.close()
    assert closed.get() == "last" and closed.get() is None

    drops = []
    stopped = LatestSlot(on_drop=drops.append)
    stopped.put("pending")
    stopped.stop()
    stopped.put("late")
    assert stopped.get() is None and sum(drops) == 2


def test_stats_percentiles_fps_and_frame_balance():
    stats = LiveStats()
    for i in range(10):
        stats.captured(float(i))
    stats.dropped(4)
    for i, ms in enumerate([10, 20, 30, 40, 50, 60]):
        stats.output(float(i), i + ms / 1000, person=i != 2)
    d = stats.as_dict()
    assert (d["frames_in"], d["frames_out"], d["frames_dropped"]) == (10, 6, 4)
    assert d["frames_in"] == d["frames_out"] + d["frames_dropped"]
    assert d["latency_ms_p50"] == pytest.approx(35.0)
    assert d["latency_ms_p95"] == pytest.approx(57.5)
    assert d["fps"] == pytest.approx(6 / 5.06, rel=1e-3)  # 6 results from t=0 to the last at 5.06 s
    assert d["frames_without_person"] == 1
    assert d["cpu_ms_per_frame_out"] >= 0  # process CPU time between the first frame and the last result


def test_stats_before_any_result_are_empty_not_zero():
    d = LiveStats().as_dict()
    assert d["fps"] is None and d["latency_ms_p50"] is None and d["frames_out"] == 0


# ------------------------------------------------------------------------------ view and recording


def test_view_puts_the_three_panels_side_by_side_above_the_status_bar():
    layout = panel_layout((360, 640), (64, 114))
    src = np.full((640, 360, 3), 200, np.uint8)
    stick = np.zeros((114, 64, 3), np.uint8)
    result = np.full((114, 64, 3), 90, np.uint8)
    view = compose(layout, src, stick, result, ["12.0 frames/s", "calibrating"])
    assert view.shape == (layout.size[1], layout.size[0], 3)
    assert view.shape[0] % 2 == 0 and view.shape[1] % 2 == 0  # fits H.264 without padding
    for index, value in enumerate((200, 0, 90)):
        x0, x1 = layout.panel_x(index)
        assert np.all(view[: layout.height, x0:x1] == value)
    assert view[layout.height :].max() > 200  # the status text is drawn in the bar


def test_recording_holds_each_image_for_the_time_it_was_shown(tmp_path):
    colours = {"A": (255, 0, 0), "B": (0, 255, 0), "C": (0, 0, 255)}
    recorder = Recorder(tmp_path / "rec.mp4", 30, quality=10)
    for name, t in (("A", 10.0), ("B", 10.1), ("C", 10.25)):  # any clock: only differences count
        recorder.add(np.full((48, 64, 3), colours[name], np.uint8), t)
    assert recorder.close(t_end=10.4) == tmp_path / "rec.mp4"
    names = "".join(max(colours, key=lambda n: int(frame[24, 32] @ np.array(colours[n])))
                    for frame in iter_frames(tmp_path / "rec.mp4"))
    # At 30 fps: A for 0.1 s (3 frames), B for 0.15 s (5), C until the end at 0.4 s (4).
    assert names == "AAABBBBBCCCC"
    assert probe(tmp_path / "rec.mp4").fps == 30


def test_recording_of_nothing_leaves_no_file(tmp_path):
    recorder = Recorder(tmp_path / "empty.mp4", 30)
    assert recorder.close(t_end=5.0) is None
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ online normalisation


def moving_poses(count: int = 40, period: int = 10) -> np.ndarray:
    """(count, 33, 3) standing poses in a 360x640 frame, walking towards the camera and back
    every ``period`` frames (larger and lower when closer)."""
    base = standing_pose(360, 640)
    poses = []
    for i in range(count):
        k = i % period
        pose = base.copy()
        scale = 0.6 + 0.03 * k
        pose[:, 0] = 180 + (pose[:, 0] - 180) * scale
        pose[:, 1] = 320 + (pose[:, 1] - 320) * scale + 6 * k
        poses.append(pose)
    return np.stack(poses).astype(np.float32)


def test_after_calibration_frames_are_normalised_as_offline_with_the_window_statistics():
    poses = moving_poses()
    poses[25, [sk.L_ANKLE, sk.R_ANKLE], 2] = 0.1  # ankles hidden in one frame after the calibration
    online = OnlineNormalizer(TARGET_STATS, TARGET_SIZE, seconds=1.9)
    out, status = zip(*(online.update(kp, 0.1 * i) for i, kp in enumerate(poses)), strict=True)
    # Frames 0-18 fall inside the window: fitted only (unchanged), with the calibration prompt.
    assert all(np.array_equal(out[i], poses[i]) for i in range(19))
    assert all(s.startswith("calibrating") for s in status[:19])
    assert online.calibrated and status[19].startswith("calibrated") and status[39] == ""  # a 2 s notice
    # From frame 19 on: the offline normalisation, with the statistics of the window (frames
    # 0-19) and its anchor, holding the scale over the frame whose ankles are hidden.
    window_stats = compute_stats(PoseSequence(poses[:20], TARGET_SIZE, 10.0))
    offline = normalize(PoseSequence(poses, TARGET_SIZE, 10.0), window_stats, TARGET_STATS).keypoints
    np.testing.assert_allclose(np.stack(out[19:]), offline[19:], atol=1e-3)
    assert not np.allclose(offline[19:], poses[19:], atol=1.0)  # the normalisation did move them


def test_calibration_waits_for_a_person_and_for_visible_feet():
    online = OnlineNormalizer(TARGET_STATS, TARGET_SIZE, seconds=0.5)
    kp, status = online.update(None, 0.0)
    assert kp is None and "step into view" in status
    feetless = moving_poses(30)
    feetless[:, [sk.L_ANKLE, sk.R_ANKLE], 2] = 0.0
    for i, pose in enumerate(feetless):  # 3 s of a person whose feet never show
        kp, status = online.update(pose, 1.0 + 0.1 * i)
    assert not online.calibrated and "show your feet" in status
    for i, pose in enumerate(moving_poses(5)):
        online.update(pose, 4.0 + 0.1 * i)
    assert online.calibrated  # the window was extended until 5 frames showed both feet and the nose


def test_recalibrate_starts_a_new_window():
    online = OnlineNormalizer(TARGET_STATS, TARGET_SIZE, seconds=0.5)
    for i, pose in enumerate(moving_poses(10)):
        online.update(pose, 0.1 * i)
    assert online.calibrated
    online.recalibrate()
    pose = moving_poses(1)[0]
    kp, status = online.update(pose, 5.0)
    assert not online.calibrated and status.startswith("calibrating") and np.array_equal(kp, pose)


def test_without_normalisation_poses_pass_unchanged():
    online = OnlineNormalizer(TARGET_STATS, TARGET_SIZE, enabled=False)
    pose = moving_poses(1)[0]
    kp, status = online.update(pose, 0.0)
    assert kp is pose and status == ""


# ------------------------------------------------------------------------------ sources


@pytest.mark.parametrize("text, kind, target", [
    ("0", "camera", 0), ("12", "camera", 12), ("/dev/video3", "camera", "/dev/video3"),
    ("rtsp://cam.local:8554/live", "url", "rtsp://cam.local:8554/live"),
    ("http://127.0.0.1:8080/stream.mjpg", "url", "http://127.0.0.1:8080/stream.mjpg"),
])
def test_source_kinds(text, kind, target):
    spec = parse_source(text)
    assert (spec.kind, spec.target) == (kind, target)


def test_source_file_and_refusals(bundled_samples, tmp_path):
    clip = bundled_samples / "target_cam01.mp4"
    assert parse_source(str(clip)).kind == "file"
    with pytest.raises(UserError, match="does not exist"):
        parse_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(UserError, match="unsupported stream type 'ftp://'"):
        parse_source("ftp://host/clip.mp4")


# ------------------------------------------------------------------------------ MJPEG server


def test_server_streams_the_newest_frame_and_serves_its_page():
    calls = []
    server = FrameServer(0, stats=lambda: {"frames_out": 3}, recalibrate=lambda: calls.append(1)).start()
    try:
        image = np.zeros((64, 96, 3), np.uint8)
        image[:, :48] = (250, 20, 20)
        server.publish("stream", np.zeros_like(image))
        server.publish("stream", image)  # the newest one is what viewers get
        server.publish("result", image[:, :48].copy())
        content_type, parts = read_mjpeg_frames(server.url + "stream.mjpg", count=1)
        assert content_type.startswith("multipart/x-mixed-replace")
        frame = decode_jpeg(parts[0]).astype(int)
        assert frame.shape == (64, 96, 3)
        assert np.abs(frame - image).mean() < 6  # the same picture, up to JPEG loss
        still = decode_jpeg(urllib.request.urlopen(server.url + "result.jpg", timeout=10).read())
        assert still.shape == (64, 48, 3)
        page = urllib.request.urlopen(server.url, timeout=10).read().decode()
        assert 'src="stream.mjpg"' in page
        assert urllib.request.urlopen(server.url + "stats.json", timeout=10).read() == b'{"frames_out": 3}'
        request = urllib.request.Request(server.url + "recalibrate", method="POST")
        assert urllib.request.urlopen(request, timeout=10).status == 200 and calls == [1]
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url + "secret", timeout=10)
    finally:
        server.close()
    with pytest.raises(OSError):  # the port was released and nothing listens any more
        socket.create_connection(("127.0.0.1", server.port), timeout=2)


def test_server_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is already in use"):
            FrameServer(port)


# ------------------------------------------------------------------------------ command refusals


def test_an_output_is_required(runs):
    result = live(runs, "--source", "0")
    assert result.exit_code != 0 and "at least one output" in result.output


def test_missing_camera_is_a_clear_error_within_seconds(runs, tmp_path):
    if Path("/dev/video9").exists():
        pytest.skip("this machine has a /dev/video9")
    start = time.monotonic()
    result = live(runs, "--source", "9", "-o", tmp_path / "out.mp4")
    assert result.exit_code != 0
    assert "cannot open camera 9: /dev/video9 does not exist" in result.output
    assert time.monotonic() - start < 5
    assert not (tmp_path / "out.mp4").exists()


def test_refused_stream_url_is_a_clear_error_within_seconds(runs, tmp_path):
    port = free_port()  # nothing listens there
    start = time.monotonic()
    result = live(runs, "--source", f"http://127.0.0.1:{port}/cam.mjpg", "-o", tmp_path / "out.mp4")
    assert result.exit_code != 0 and f"127.0.0.1:{port} connection refused" in result.output
    assert time.monotonic() - start < 5


def test_silent_stream_server_times_out_instead_of_hanging(runs, tmp_path):
    """A server that accepts the connection and never answers: the open gives up after --open-timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        start = time.monotonic()
        result = live(runs, "--source", f"http://127.0.0.1:{port}/cam.mjpg", "--open-timeout", "1.5",
                      "-o", tmp_path / "out.mp4")
        elapsed = time.monotonic() - start
    assert result.exit_code != 0 and f"cannot open the stream http://127.0.0.1:{port}/cam.mjpg" in result.output
    assert elapsed < 6


def test_serve_port_in_use_is_a_clear_error(runs, bundled_samples):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = live(runs, "--source", bundled_samples / "target_cam01.mp4", "--serve", port)
    assert result.exit_code != 0 and f"port {port} on 127.0.0.1 is already in use" in result.output


@pytest.mark.parametrize("display, message", [
    (None, "--window needs a display, but DISPLAY is not set"),
    (":987", "no X server is running on DISPLAY=:987"),
], ids=["unset", "no-server"])
def test_window_without_a_display_is_a_clear_error(runs, bundled_samples, display, message):
    if Path("/tmp/.X11-unix/X987").exists():
        pytest.skip("this machine runs an X server on :987")
    env = {"DISPLAY": display, "WAYLAND_DISPLAY": None}  # None: unset for the command
    result = live(runs, "--source", bundled_samples / "target_cam01.mp4", "--window", env=env)
    assert result.exit_code != 0 and message in result.output


def test_existing_recording_and_the_source_itself_are_refused(runs, bundled_samples, tmp_path):
    existing = tmp_path / "taken.mp4"
    existing.write_bytes(b"keep")
    clip = bundled_samples / "target_cam01.mp4"
    result = live(runs, "--source", clip, "-o", existing)
    assert result.exit_code != 0 and "--overwrite" in result.output and existing.read_bytes() == b"keep"
    result = live(runs, "--source", clip, "-o", clip, "--overwrite")
    assert result.exit_code != 0 and "inputs are never overwritten" in result.output


@pytest.mark.parametrize("option, value, message", [
    ("--calibrate", "0s", "must be longer than 0 s"),
    ("--calibrate", "soon", "is not a number of seconds"),
    ("--duration", "0", "must be longer than 0 s"),
])
def test_bad_durations_are_refused(runs, option, value, message, tmp_path):
    result = live(runs, "-o", tmp_path / "o.mp4", option, value)
    assert result.exit_code != 0 and message in result.output

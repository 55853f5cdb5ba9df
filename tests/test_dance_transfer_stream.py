"""`dance transfer` streaming the source's poses into generation (the default) against the
whole-clip pass (`--whole-clip`): the same frames where nothing differs by design, keypoints
within a pixel where only the smoothing window does, first-look statistics close to the whole
clip's, and interruption handled (real MediaPipe, real PyAV, the real CLI)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from dance_transfer_utils import TARGET_SIZE, TARGET_STATS, cut_clip, save_tiny_model

from vid2vid_app.cli.dance import dance
from vid2vid_app.dance.model import DanceModel
from vid2vid_app.dance.stream import first_look_stats
from vid2vid_app.dance.transfer import TransferOptions, detect_source_poses, transfer
from vid2vid_app.imaging import keypoints_to_canvas, letterbox_geometry
from vid2vid_app.pose import compute_stats, normalize
from vid2vid_app.pose.keypoints import PoseSequence
from vid2vid_app.video import probe

SOURCE_FRAMES = 36
FRAMES = 20  # transferred by the tests that compare both pipelines: the first 20 of the clip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder with a holistic model ("tiny", the tiny preset's landmarks) and a body one."""
    root = tmp_path_factory.mktemp("runs")
    save_tiny_model(root / "tiny" / "model.pt")
    save_tiny_model(root / "body" / "model.pt", landmarks="body")
    return root


@pytest.fixture(scope="module")
def source(bundled_samples, tmp_path_factory):
    """The first 36 frames (0.6 s at 60 fps) of the two-person clip with a sine audio track."""
    return cut_clip(bundled_samples / "source_two_people.mp4", tmp_path_factory.mktemp("src") / "source.mp4",
                    SOURCE_FRAMES, with_audio=True)


@pytest.fixture
def encoded(monkeypatch) -> dict[str, list[np.ndarray]]:
    """The frames each VideoWriter is given, by output file name (x264 still encodes them)."""
    from vid2vid_app.video import VideoWriter

    written: dict[str, list[np.ndarray]] = {}
    write = VideoWriter.write

    def recorded(self, image):
        written.setdefault(self.path.name, []).append(np.array(image, copy=True))
        write(self, image)

    monkeypatch.setattr(VideoWriter, "write", recorded)
    return written


def assert_same_frames(encoded: dict, *names: str) -> None:
    """Both pipelines handed x264 the same frames for each output ``names`` ("{}" = the mode).
    (The frames as given to x264 are compared: two x264 encoders running at once do not always
    write the same bytes for the same frames, even in the whole-clip pipeline.)"""
    for name in names:
        streamed, whole = encoded[name.format("streamed")], encoded[name.format("whole")]
        assert len(streamed) == len(whole) == FRAMES
        np.testing.assert_array_equal(np.stack(streamed), np.stack(whole))


@pytest.mark.parametrize("options", [{"smooth_method": None}, {"smooth_lookahead": None}],
                         ids=["no-smoothing", "smoothing-to-the-end-of-each-run"])
def test_without_normalisation_the_stream_writes_the_whole_clip_frames(runs, source, tmp_path, encoded, options):
    """Detection, gap filling and holding are the same in both pipelines; with the statistics
    out of the way (--no-normalize) and the smoothing not cut by the look-ahead, every frame
    handed to the encoders (output and side-by-side video) is the same, bit for bit."""
    model = DanceModel.load(runs / "tiny" / "model.pt", "cpu")
    reports = {}
    for mode in ("streamed", "whole"):
        reports[mode] = transfer(source, model, tmp_path / f"{mode}.mp4", TransferOptions(
            end=FRAMES, normalize=False, whole_clip=mode == "whole", quiet=True,
            side_by_side=tmp_path / f"{mode}_sbs.mp4", **options))
    assert reports["streamed"].streamed and not reports["whole"].streamed
    assert reports["streamed"].frames == reports["whole"].frames == FRAMES
    assert reports["streamed"].frames_detected == reports["whole"].frames_detected
    assert_same_frames(encoded, "{}.mp4", "{}_sbs.mp4")
    assert probe(tmp_path / "streamed.mp4").frame_count == FRAMES


def test_a_first_look_that_finds_too_few_ankles_falls_back_to_every_frame(runs, source, tmp_path, encoded,
                                                                          monkeypatch):
    """When the sample cannot give statistics, the stream waits for the whole detection and
    normalises with every frame's: with smoothing to the end of each run that is exactly the
    whole-clip transfer, and the summary says what happened."""
    import vid2vid_app.dance.stream as stream_module

    monkeypatch.setattr(stream_module, "first_look_stats", lambda *args, **kwargs: (None, 24))
    model = DanceModel.load(runs / "tiny" / "model.pt", "cpu")
    streamed = transfer(source, model, tmp_path / "streamed.mp4",
                        TransferOptions(end=FRAMES, quiet=True, smooth_lookahead=None))
    transfer(source, model, tmp_path / "whole.mp4", TransferOptions(end=FRAMES, quiet=True, whole_clip=True))
    assert_same_frames(encoded, "{}.mp4")
    assert "found too few showing nose and both ankles" in streamed.summary()


def first_look_shift(clip, whole: PoseSequence) -> np.ndarray:
    """Per frame and body point, how far (target pixels) normalising with the first look's
    statistics puts the whole clip's keypoints from where its own statistics put them."""
    info = probe(clip)
    region = (0, 0, info.width, info.height)
    look, frames = first_look_stats(clip, 0, info.frame_count, None, region, TARGET_SIZE, float(info.fps), 640)
    assert look is not None and frames == 24
    box = letterbox_geometry(info.width, info.height, *TARGET_SIZE)
    fitted = PoseSequence(keypoints_to_canvas(whole.keypoints, box), TARGET_SIZE, whole.fps)
    exact = normalize(fitted, compute_stats(fitted), TARGET_STATS).keypoints
    got = normalize(fitted, look, TARGET_STATS).keypoints
    return np.linalg.norm(got[..., :2] - exact[..., :2], axis=-1)


def test_first_look_statistics_place_the_dancer_within_a_few_pixels_of_the_whole_clip_ones(bundled_samples):
    """24 frames of the bundled two-person clip, each detected on its own, against its 100
    detected and smoothed frames (bench/data): normalised into the 360x640 target (body about
    215 px tall) the points move 1.7 px on average, at most 4.9 px (measured; bound 3 and 8 px)."""
    whole = PoseSequence.load(bundled_samples.parent / "bench" / "data" / "source_pose" / "keypoints.npz")
    shift = first_look_shift(bundled_samples / "source_two_people.mp4", whole)
    assert np.nanmean(shift) < 3.0 and np.nanmax(shift) < 8.0


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["pose2sim_singleperson_cam01", "pose2sim_singleperson_cam02",
                                  "pose2sim_multiperson_cam01"])
def test_first_look_statistics_on_real_footage(shared_samples, clip):
    """The same on 1080x1920 footage (whole clip detected here): measured up to 3.7 px on average
    and 7.4 px at most (bench/first_look_stats.py); bound 5 and 10 px."""
    path = shared_samples / f"{clip}.mp4"
    whole = detect_source_poses(path, 0, probe(path).frame_count, quiet=True).sequence
    shift = first_look_shift(path, whole)
    assert np.nanmean(shift) < 5.0 and np.nanmax(shift) < 10.0


def test_a_body_model_streams_and_the_summaries_say_which_pipeline_ran(runs, source, tmp_path):
    """A short source gets a first look at a quarter of its frames (at least 8)."""
    args = ["transfer", str(source), "-m", "body", "--runs-dir", str(runs), "--end", str(FRAMES)]
    result = CliRunner().invoke(dance, [*args, "-o", str(tmp_path / "s.mp4")])
    assert result.exit_code == 0, result.output
    assert f"person detected in {FRAMES}/{FRAMES} frames" in result.output
    assert "overlapping" in result.output and "first look at 8 frames" in result.output
    result = CliRunner().invoke(dance, [*args, "-o", str(tmp_path / "w.mp4"), "--whole-clip"])
    assert result.exit_code == 0, result.output
    assert "overlapping" not in result.output and "first look" not in result.output
    assert probe(tmp_path / "s.mp4").frame_count == probe(tmp_path / "w.mp4").frame_count == FRAMES


def test_ctrl_c_mid_way_leaves_no_output_and_stops_the_detection(runs, source, tmp_path):
    """A real SIGINT while the fifth frame is generated: KeyboardInterrupt reaches the caller,
    no output (or temp file) is left, and the detection, render and encoder threads are gone."""
    model = DanceModel.load(runs / "tiny" / "model.pt", "cpu")
    generate, calls = model.generate_layers, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return generate(*args, **kwargs)

    model.generate_layers = interrupted
    before = set(threading.enumerate())
    out = tmp_path / "out" / "o.mp4"
    out.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        transfer(source, model, out, TransferOptions(quiet=True, side_by_side=out.with_name("sbs.mp4")))
    assert len(calls) >= 5
    assert list(out.parent.iterdir()) == []
    assert [t.name for t in threading.enumerate() if t not in before and t.name != "tqdm_monitor"] == []


@pytest.mark.slow
def test_streamed_chunks_are_the_chunked_rows_and_closing_stops_the_workers(bundled_samples):
    """Forced into three chunks over two detectors (this process and a worker), the streamed
    rows are detect_chunked's bit for bit; closing the stream early ends the worker processes."""
    from vid2vid_app.pose.parallel import detect_chunked, stream_chunked
    from vid2vid_app.video import FrameRange

    clip = bundled_samples / "source_two_people.mp4"
    info = probe(clip)
    source, size = FrameRange(clip, max_side=320), (info.width, info.height)
    chunks = dict(workers=2, min_chunk=30, warmup=10)
    whole = detect_chunked(source, info.frame_count, float(info.fps), size, **chunks).packed()
    rows = np.stack(list(stream_chunked(source, info.frame_count, float(info.fps), size, **chunks)))
    np.testing.assert_array_equal(rows, whole)
    stream = stream_chunked(source, info.frame_count, float(info.fps), size, **chunks)
    next(stream)
    assert multiprocessing.active_children()
    stream.close()
    assert multiprocessing.active_children() == []

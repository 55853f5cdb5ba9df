"""Video I/O on real files encoded and decoded with PyAV (small synthetic clips + one real sample)."""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from video_utils import (
    PHONE_MATRICES,
    make_test_clip,
    make_vfr_clip,
    psnr,
    read_audio_duration,
    read_tkhd_matrix,
    smooth_frames,
)

from vid2vid_app.errors import UserError
from vid2vid_app.video import (
    ThreadedConsumer,
    ThreadedReader,
    VideoReader,
    VideoWriter,
    fit_size,
    frames_at,
    iter_frames,
    probe,
    rotate_image,
    write_video,
)

W, H, N = 96, 80, 20


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return smooth_frames(N, W, H)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, frames) -> Path:
    """20 frames of 96x80 at 25 fps, written by the library itself."""
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, 25)


@pytest.fixture(scope="module")
def decoded(clip) -> list[np.ndarray]:
    return list(iter_frames(clip))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ round trips


def test_round_trip_keeps_count_size_and_quality(clip, frames, decoded):
    info = probe(clip)
    assert (info.frame_count, info.width, info.height) == (N, W, H)
    assert info.fps == Fraction(25) and info.codec == "h264"
    assert info.rotation == 0 and not info.has_audio
    assert info.duration == pytest.approx(N / 25, abs=0.05)
    assert len(decoded) == N
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in decoded)
    assert min(psnr(a, b) for a, b in zip(frames, decoded, strict=True)) > 35


def test_saturated_colours_survive(tmp_path):
    # Pure colour bars, encoded losslessly (CRF 0): any error left comes from the RGB <-> YUV
    # matrices. Encoding with one matrix and decoding with another (BT.709 vs BT.601) would be
    # off by about 20 levels.
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    bars = np.zeros((32, 16 * len(colours), 3), np.uint8)
    for i, c in enumerate(colours):
        bars[:, 16 * i : 16 * (i + 1)] = c
    out = write_video(tmp_path / "bars.mp4", [bars] * 2, 25, quality=0)
    got = next(iter_frames(out))
    centres = got[8:24, [16 * i + 8 for i in range(len(colours))]].astype(int)
    assert np.abs(centres - np.array(colours)[None]).max() <= 4


@pytest.mark.parametrize("fps, expected", [(Fraction(30000, 1001), Fraction(30000, 1001)), (29.97, Fraction(2997, 100))])
def test_fractional_fps_survives(tmp_path, frames, fps, expected):
    out = write_video(tmp_path / "f.mp4", frames[:4], fps, preset="ultrafast")
    assert probe(out).fps == expected


def test_odd_size_is_padded_to_even_without_stretching(tmp_path, frames):
    odd = [f[: H - 1, : W - 3] for f in frames[:6]]  # 93 x 79
    with VideoWriter(tmp_path / "odd.mp4", 25) as writer:
        for f in odd:
            writer.write(f)
    assert writer.size == (93, 79) and writer.encoded_size == (94, 80)
    info = probe(tmp_path / "odd.mp4")
    assert (info.width, info.height) == (94, 80)
    out = list(iter_frames(tmp_path / "odd.mp4"))
    # The original pixels sit unscaled in the top-left corner ...
    assert min(psnr(a, b[:79, :93]) for a, b in zip(odd, out, strict=True)) > 35
    # ... and the added column/row repeat the last ones (padding, not a black bar).
    edge = np.abs(out[0][:79, 93].astype(int) - out[0][:79, 92].astype(int)).mean()
    assert edge < 6


def test_frame_range_step_and_resize(clip, decoded):
    reader = VideoReader(clip, start=3, end=15, step=4)
    assert reader.expected_frames == 3
    picked = list(reader)
    assert len(picked) == 3 and reader.frames_read == 3 and not reader.truncated
    for got, index in zip(picked, (3, 7, 11), strict=True):
        assert np.array_equal(got, decoded[index])
    small = list(iter_frames(clip, max_side=48, end=2))
    assert [f.shape for f in small] == [(40, 48, 3)] * 2
    exact = next(iter_frames(clip, size=(32, 24)))
    assert exact.shape == (24, 32, 3)
    # Downscaling keeps the picture: compare with an area-downscaled original.
    import cv2

    ref = cv2.resize(decoded[0], (48, 40), interpolation=cv2.INTER_AREA)
    assert psnr(small[0], ref) > 30


def test_frames_at_seeks_to_the_very_frames_sequential_decoding_gives(clip, decoded):
    """Seeking to each of a few frames (x264 in mp4, one key frame for all 80) gives exactly the
    frames decoding from the start gives; frame numbers past the end are left out."""
    far_keys = write_video(clip.parent / "gop.mp4", decoded * 4, 25)
    wanted = [0, 9, 31, 57, 79, 200]
    got = frames_at(far_keys, wanted)
    every = list(iter_frames(far_keys))
    assert len(got) == 5 and all(np.array_equal(a, every[i]) for a, i in zip(got, wanted, strict=False))


def test_frames_at_on_the_real_vp9_sample(shared_samples):
    """The same on real VP9 footage, downscaled as VideoReader downscales."""
    vp9 = shared_samples / "pose2sim_singleperson_cam02.mp4"
    wanted = [3, 48, 99]
    got = frames_at(vp9, wanted, max_side=320)
    every = list(iter_frames(vp9, max_side=320))
    assert all(np.array_equal(a, every[i]) for a, i in zip(got, wanted, strict=True))


def test_fit_size_and_bad_arguments(clip):
    assert fit_size(1080, 1920, max_side=512) == (288, 512)
    assert fit_size(100, 50, max_side=512) == (100, 50)  # never upscales
    assert fit_size(100, 50, size=(20, 30)) == (20, 30)
    with pytest.raises(ValueError, match="either max_side or size"):
        VideoReader(clip, max_side=10, size=(4, 4))
    with pytest.raises(ValueError, match="bad frame range"):
        VideoReader(clip, start=5, end=2)


# ------------------------------------------------------------------ rotation


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_phone_rotation_metadata_is_applied(tmp_path, frames, rotation):
    path = make_test_clip(tmp_path / "phone.mp4", frames[:3], 25, display_matrix=PHONE_MATRICES[rotation])
    # The file holds exactly the matrix phones write (checked on the raw MP4 bytes).
    assert read_tkhd_matrix(path) == PHONE_MATRICES[rotation]
    info = probe(path)
    assert info.rotation == rotation
    expected_wh = (H, W) if rotation in (90, 270) else (W, H)
    assert (info.width, info.height) == expected_wh
    got = next(iter_frames(path))
    k = rotation // 90
    assert psnr(got, np.rot90(frames[0], -k)) > 35  # turned clockwise
    if rotation != 180:
        assert psnr(got, np.rot90(frames[0], k)) < 25  # and not the other way round
    small = next(iter_frames(path, max_side=48))
    assert (small.shape[1], small.shape[0]) == fit_size(*expected_wh, max_side=48)


def test_rotate_image_turns_clockwise():
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 0] = 255  # top-left
    out = rotate_image(img, 90)
    assert out.shape == (3, 2, 3) and out[0, 1, 0] == 255  # now top-right
    assert rotate_image(img, 0) is img
    assert rotate_image(img, 450).shape == (3, 2, 3)


# ------------------------------------------------------------------ variable frame rate


def test_variable_frame_rate_yields_every_decoded_frame(tmp_path):
    times = [0, 40, 60, 140, 160, 260, 300, 420]
    src = smooth_frames(len(times), 64, 48, seed=3)
    path = make_vfr_clip(tmp_path / "vfr.mkv", src, times)
    reader = VideoReader(path)
    timed = list(reader.timed())
    assert len(timed) == len(times) and not reader.truncated
    assert [round(t * 1000) for t, _ in timed] == times
    assert min(psnr(a, b) for a, (_, b) in zip(src, timed, strict=True)) > 35


# ------------------------------------------------------------------ audio


@pytest.mark.parametrize("suffix, codec, copied", [(".mp4", "aac", True), (".mkv", "pcm_s16le", False)])
def test_audio_is_copied_and_trimmed_to_the_video(tmp_path, frames, suffix, codec, copied):
    # The audio source lasts 2 s; the new video only 0.8 s, so the audio must be cut.
    source = make_test_clip(tmp_path / f"src{suffix}", frames[:4], 25, with_audio=True,
                            audio_codec=codec, audio_seconds=2.0)
    assert read_audio_duration(source) == pytest.approx(2.0, abs=0.05)
    out = write_video(tmp_path / "out.mp4", frames, 25, audio_from=source, preset="ultrafast")
    assert probe(out).has_audio
    assert read_audio_duration(out) == pytest.approx(N / 25, abs=0.2)
    with av.open(str(out)) as c:
        # AAC is copied as is; PCM cannot go into MP4 and is re-encoded to AAC.
        assert c.streams.audio[0].codec_context.name == "aac"
    assert (codec == "aac") == copied


def test_audio_offset_starts_later_in_the_source(tmp_path, frames):
    source = make_test_clip(tmp_path / "src.mp4", frames[:4], 25, with_audio=True, audio_seconds=2.0)
    out = write_video(tmp_path / "out.mp4", frames, 25, audio_from=source, audio_offset=1.5)
    # Only the last 0.5 s of the source's sound is left for the 0.8 s video.
    assert read_audio_duration(out) == pytest.approx(0.5, abs=0.1)


def test_source_without_audio_gives_silent_video(tmp_path, clip, frames):
    out = write_video(tmp_path / "out.mp4", frames[:3], 25, audio_from=clip)
    assert not probe(out).has_audio and read_audio_duration(out) is None


def test_real_sample_vp9_probe_decode_and_audio(shared_samples, tmp_path):
    path = shared_samples / "pose2sim_singleperson_cam02.mp4"
    info = probe(path)
    assert (info.width, info.height) == (1080, 1920)
    assert info.codec == "vp9" and info.frame_count == 100 and info.fps == 60 and info.has_audio
    first = list(iter_frames(path, end=3, max_side=256))
    assert [f.shape for f in first] == [(256, 144, 3)] * 3
    assert first[0].std() > 10  # a real picture, not a blank frame
    out = write_video(tmp_path / "with_sound.mp4", first * 10, 60, audio_from=path, preset="ultrafast")
    assert read_audio_duration(out) == pytest.approx(30 / 60, abs=0.2)


# ------------------------------------------------------------------ threaded encoding


def test_threaded_writer_keeps_every_frame_in_order(tmp_path, frames):
    # (x264 output is not bit-identical from run to run, so compare with the source frames.)
    write_video(tmp_path / "t.mp4", frames, 25, threaded=True, queue_size=2)
    threaded = list(iter_frames(tmp_path / "t.mp4"))
    assert len(threaded) == N
    assert min(psnr(a, b) for a, b in zip(frames, threaded, strict=True)) > 35
    # Each decoded frame is nearest to the source frame with the same index (order kept).
    for i, got in enumerate(threaded):
        assert max(range(N), key=lambda j: psnr(got, frames[j])) == i


def test_threaded_writer_reports_errors_and_saves_nothing(tmp_path, frames):
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="but the video is 96x80"):
        with VideoWriter(out, 25, threaded=True) as writer:
            writer.write(frames[0])
            writer.write(frames[1][:40])  # wrong size: fails in the worker thread
            for f in frames:
                writer.write(f)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_threaded_consumer_keeps_order_and_reraises_in_the_producer():
    seen = []
    consumer = ThreadedConsumer(seen.append, maxsize=2)
    for i in range(50):
        consumer.put(i)
    consumer.close()
    assert seen == list(range(50))

    def fail_on_3(item):
        if item == 3:
            raise ValueError("item 3 is bad")
        seen.append(item)

    seen.clear()
    consumer = ThreadedConsumer(fail_on_3, maxsize=1)
    with pytest.raises(ValueError, match="item 3 is bad"):
        for i in range(1000):  # a dead consumer never blocks the producer: its error surfaces
            consumer.put(i)
        consumer.close()
    assert seen == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3 is bad"):
        consumer.close()  # again: the thread has ended, the error is still reported


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(("open_video", "name", "content", "message"), [
    (probe, "nope.mp4", None, "does not exist"),
    (probe, "notes.mp4", "this is not a video\n", r"notes\.mp4 is not a readable video"),
    (VideoReader, "empty.mp4", "", r"empty\.mp4 is an empty file"),
    (probe, ".", None, "is a folder"),
], ids=["missing", "text-file", "empty-file", "folder"])
def test_missing_text_and_empty_files_are_clear_errors(tmp_path, open_video, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(UserError, match=message):
        open_video(tmp_path / name)


def test_file_without_video_stream(tmp_path):
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        for p in list(s.encode(frame)) + list(s.encode(None)):
            c.mux(p)
    with pytest.raises(UserError, match="has no video stream"):
        probe(path)


def test_truncated_file_decodes_what_is_there(tmp_path):
    full = make_test_clip(tmp_path / "full.mp4", smooth_frames(60, 160, 120), 25)
    data = full.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    reader = VideoReader(half)
    assert reader.info.frame_count == 60  # the header still announces every frame
    got = list(reader)
    assert 5 < len(got) < 60 and reader.frames_read == len(got)
    assert reader.truncated and reader.error
    # Without the index at the front (no faststart), half a file cannot be opened at all.
    plain = make_test_clip(tmp_path / "plain.mp4", smooth_frames(10, 64, 48), 25, faststart=False)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(plain.read_bytes()[: plain.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated"):
        probe(cut)


def test_zero_frames_is_a_clear_error(tmp_path):
    full = make_test_clip(tmp_path / "full.mp4", smooth_frames(5, 64, 48), 25)
    data = full.read_bytes()
    header_only = tmp_path / "zero.mp4"
    header_only.write_bytes(data[: data.find(b"mdat") + 4])  # index kept, no picture data
    with pytest.raises(UserError, match="no decodable video frames"):
        probe(header_only)


def test_existing_output_is_refused_without_overwrite(tmp_path, frames):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(UserError, match="already exists"):
        VideoWriter(out, 25)
    assert out.read_bytes() == b"keep me"
    write_video(out, frames[:3], 25, overwrite=True)
    assert probe(out).frame_count == 3


def test_unwritable_output_folder(tmp_path, frames):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(UserError, match="cannot create output folder"):
        VideoWriter(blocker / "out.mp4", 25)
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            with pytest.raises(UserError, match="not writable"):
                VideoWriter(locked / "out.mp4", 25)
        finally:
            locked.chmod(0o700)


def test_failure_inside_writer_leaves_nothing(tmp_path, frames):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 25) as writer:
            writer.write(frames[0])
            raise RuntimeError("boom")
    assert not out.exists() and _leftovers(tmp_path) == []
    with pytest.raises(UserError, match="no frames were written"):
        with VideoWriter(out, 25):
            pass
    assert not out.exists() and _leftovers(tmp_path) == []


def test_writer_refuses_a_suffix_h264_cannot_go_in(tmp_path):
    with pytest.raises(UserError, match="cannot write H.264 video to a '.webm' file"):
        VideoWriter(tmp_path / "x.webm", 25)
    assert not (tmp_path / "x.webm").exists()


def test_writer_refuses_to_replace_its_own_audio_source(clip):
    with pytest.raises(UserError, match="also the audio source"):
        VideoWriter(clip, 25, audio_from=clip, overwrite=True)
    assert probe(clip).frame_count == N  # the input is untouched


# ------------------------------------------------------------------ ThreadedReader


def test_threaded_reader_matches_plain_decoding(clip, decoded):
    threaded = ThreadedReader(VideoReader(clip), maxsize=3)
    got = list(threaded)
    assert len(got) == N and all(np.array_equal(a, b) for a, b in zip(got, decoded, strict=True))
    assert not threaded.running and not threaded.source.truncated


def test_threaded_reader_propagates_errors():
    def source():
        yield from range(3)
        raise KeyError("bad frame 3")

    seen = []
    reader = ThreadedReader(source(), maxsize=2)
    with pytest.raises(KeyError, match="bad frame 3"):
        for item in reader:
            seen.append(item)
    assert seen == [0, 1, 2] and not reader.running


def test_threaded_reader_stops_on_early_break():
    produced = []
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
        finally:
            closed.set()

    reader = ThreadedReader(endless(), maxsize=4)
    for item in reader:
        if item == 5:
            break
    # The loop's generator is closed at once (CPython), which joins the thread.
    assert not reader.running and closed.is_set()
    assert len(produced) <= 5 + 4 + 2  # no runaway producer: at most the queue's worth ahead
    assert not any(t.name == "ThreadedReader" and t.is_alive() for t in threading.enumerate())

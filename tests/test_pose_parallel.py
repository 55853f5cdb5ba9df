"""The pose pass over worker processes: chunk plan, stitching, and agreement with one process
(real MediaPipe on the bundled clips)."""

from __future__ import annotations

import numpy as np
import pytest

from vid2vid_app.pose.detector import DetectionStats, detect_rows
from vid2vid_app.pose.parallel import Chunk, detect_chunked, plan_chunks
from vid2vid_app.video import FrameRange, probe


def test_plan_covers_every_frame_once_and_later_chunks_start_early():
    chunks = plan_chunks(1000, 50.0, workers=4)
    assert len(chunks) == 4
    assert chunks[0] == Chunk(0, 0, 250) and chunks[-1].end is None
    kept = [(c.start, c.end if c.end is not None else 1000) for c in chunks]
    assert [s for s, _ in kept[1:]] == [e for _, e in kept[:-1]] and kept[0][0] == 0 and kept[-1][1] == 1000
    assert all(c.start - c.first == 25 for c in chunks[1:])  # half a second of warm-up at 50 fps


def test_plan_keeps_short_videos_in_one_chunk():
    assert plan_chunks(100, 60.0, workers=8) == [Chunk(0, 0, None)]  # under 4 s per worker
    assert len(plan_chunks(600, 60.0, workers=8)) == 2  # 10 s: two chunks of at least 4 s
    assert len(plan_chunks(100, 60.0, workers=1, min_chunk=10)) == 1


def test_frame_range_yields_the_frames_of_its_part(bundled_samples):
    clip = bundled_samples / "target_cam01.mp4"
    whole = list(FrameRange(clip, max_side=160)())
    part = FrameRange(clip, max_side=160, start=30, end=60)
    assert part.frame_count == 30
    frames = list(part(5, 10))
    assert len(frames) == 5 and all(np.array_equal(a, b) for a, b in zip(frames, whole[35:40], strict=True))
    assert len(list(part(25))) == 5  # to the end of the range
    cropped = FrameRange(clip, max_side=160, crop=(0, 0, 180, 320))
    assert next(iter(cropped(0, 1))).shape[:2] == (cropped.output_size[1], cropped.output_size[0]) == (80, 45)


@pytest.mark.slow
def test_a_clip_that_fits_one_chunk_gives_the_keypoints_of_one_process(bundled_samples):
    """The property the pose pass promises: asking for many workers changes nothing on a clip
    too short to split, bit for bit."""
    clip = bundled_samples / "target_cam01.mp4"
    info = probe(clip)
    source = FrameRange(clip, max_side=320)
    size = (info.width, info.height)
    single = detect_rows(source(0, None), size)
    stats = DetectionStats()
    many = detect_chunked(source, info.frame_count, float(info.fps), size, workers=8, stats=stats)
    assert stats.chunks == 1
    np.testing.assert_array_equal(many.packed(), single)


@pytest.mark.slow
def test_two_worker_processes_stitch_to_the_single_process_result(bundled_samples):
    """Forced into two chunks, the clip's first half is exactly the single-process result (same
    frames, same detector start) and the second half, detected by another process after its
    warm-up, agrees to within a pixel for most landmarks; the person is the same throughout."""
    clip = bundled_samples / "source_two_people.mp4"
    info = probe(clip)
    source = FrameRange(clip, max_side=320)
    size = (info.width, info.height)
    single = detect_rows(source(0, None), size, landmarks="holistic")
    stats = DetectionStats()
    seq = detect_chunked(source, info.frame_count, float(info.fps), size, workers=2, landmarks="holistic",
                         min_chunk=40, warmup=15, stats=stats)
    assert stats.chunks == 2 and stats.workers == 2
    both = seq.packed()
    assert both.shape == single.shape == (100, 145, 3)
    np.testing.assert_array_equal(both[:50], single[:50])
    diff = np.linalg.norm(both[50:, :33, :2] - single[50:, :33, :2], axis=-1)
    assert np.nanmedian(diff) < 1.0 and np.nanpercentile(diff, 90) < 0.02 * info.height


def test_waiting_for_a_worker_ends_when_the_stream_is_told_to_stop():
    """stream_chunked waits for a worker's chunk in slices, so a consumer that stops (Ctrl-C, an
    error in generation) is not kept waiting for a chunk nobody needs."""
    import threading
    from concurrent.futures import Future

    from vid2vid_app.pose.parallel import _result, _Stopped

    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(_Stopped):
        _result(Future(), stop)  # a chunk that never finishes

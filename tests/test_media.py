"""Media inputs/outputs: a video, one image, or a folder of images, read and written back."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from video_utils import make_test_clip, psnr, read_audio_duration, smooth_frames

from vid2vid_app.errors import UserError
from vid2vid_app.imaging import read_image, write_image
from vid2vid_app.media import list_images, natural_key, open_media, open_sink
from vid2vid_app.video import probe


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """12 frames of 64x48 at 30000/1001 fps with a sound track."""
    folder = tmp_path_factory.mktemp("video")
    return make_test_clip(folder / "in.mp4", smooth_frames(12, 64, 48), Fraction(30000, 1001), with_audio=True)


def _solid(value: int, w: int = 8, h: int = 6) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


@pytest.fixture
def folder(tmp_path) -> Path:
    """img1/img2/img10 (distinct grey levels, mixed sizes) plus files that must be ignored."""
    d = tmp_path / "frames"
    d.mkdir()
    write_image(d / "img10.png", _solid(30, 10, 4))
    write_image(d / "img2.png", _solid(20))
    write_image(d / "img1.png", _solid(10))
    write_image(d / ".hidden.png", _solid(99))
    (d / "notes.txt").write_text("not an image")
    (d / "sub").mkdir()
    write_image(d / "sub" / "img0.png", _solid(77))
    return d


# ------------------------------------------------------------------ sources


def test_video_source(video):
    src = open_media(video)
    assert src.kind == "video" and src.fps == Fraction(30000, 1001)
    assert src.frame_count == len(src) == 12 and src.size == (64, 48)
    assert src.names[:2] == ["frame_000000", "frame_000001"] and len(src.names) == 12
    frames = list(src)
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3) and not src.truncated
    assert len(list(src)) == 12  # can be iterated again
    small = open_media(video, max_side=32)
    assert small.size == (32, 24) and next(iter(small)).shape == (24, 32, 3)


def test_image_source(tmp_path):
    image = smooth_frames(1, 40, 30)[0]
    write_image(tmp_path / "photo.png", image)
    src = open_media(tmp_path / "photo.png")
    assert src.kind == "image" and src.fps is None
    assert (src.frame_count, src.names, src.size) == (1, ["photo"], (40, 30))
    (frame,) = list(src)
    assert np.array_equal(frame, image)  # PNG is lossless


def test_folder_source_natural_order_and_mixed_sizes(folder):
    src = open_media(folder)
    assert src.kind == "folder" and src.fps is None
    assert src.names == ["img1", "img2", "img10"]  # natural order; hidden, text, sub-folder ignored
    frames = list(src)
    assert [int(f[0, 0, 0]) for f in frames] == [10, 20, 30]
    assert [f.shape for f in frames] == [(6, 8, 3), (6, 8, 3), (4, 10, 3)]  # each keeps its size
    assert src.size == (8, 6)


def test_natural_key_orders_numbers_by_value():
    names = ["frame10.png", "Frame2.png", "frame1.png", "a.png", "frame_b.png"]
    assert sorted(names, key=natural_key) == ["a.png", "frame1.png", "Frame2.png", "frame10.png", "frame_b.png"]


def test_list_images_skips_hidden_files_and_sub_folders(tmp_path):
    # macOS leaves .DS_Store and "._name" resource forks (not images, despite the suffix) beside
    # the images; a folder holding nothing else counts as empty.
    for name in ["frame10.png", "frame2.jpg", "._frame2.jpg", ".hidden.png"]:
        write_image(tmp_path / name, _solid(1))
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["frame2.jpg", "frame10.png"]
    only_hidden = tmp_path / "only_hidden"
    only_hidden.mkdir()
    write_image(only_hidden / "._a.png", _solid(1))
    with pytest.raises(UserError, match="only_hidden contains no images"):
        list_images(only_hidden)


def test_duplicate_stems_get_distinct_names(tmp_path):
    write_image(tmp_path / "a.png", _solid(1))
    write_image(tmp_path / "a.jpg", _solid(2))
    assert sorted(open_media(tmp_path).names) == ["a_jpg", "a_png"]


def test_unknown_suffix_is_tried_as_video(video, tmp_path):
    other = tmp_path / "clip.data"
    other.write_bytes(video.read_bytes())
    assert open_media(other).kind == "video"
    junk = tmp_path / "junk.data"
    junk.write_text("neither")
    with pytest.raises(UserError, match=r"junk\.data is neither a readable video nor an image"):
        open_media(junk)


def _folder_without_images(path: Path) -> None:
    path.mkdir()
    (path / "readme.txt").write_text("no images here")


@pytest.mark.parametrize(("name", "make", "message"), [
    ("missing.mp4", None, "does not exist"),
    ("empty", _folder_without_images, "contains no images"),
    ("fake.mp4", lambda p: p.write_text("text"), "not a readable video"),
    ("broken.png", lambda p: p.write_bytes(b"\x89PNG not really"), r"broken\.png is not a readable image"),
], ids=["missing", "folder-without-images", "text-as-video", "broken-image"])
def test_bad_sources_are_clear_errors(tmp_path, name, make, message):
    if make is not None:
        make(tmp_path / name)
    with pytest.raises(UserError, match=message):
        open_media(tmp_path / name)


def test_corrupt_image_inside_a_folder_is_named(folder):
    (folder / "img3.png").write_bytes(b"garbage")
    src = open_media(folder)  # the first image is fine, so opening works
    with pytest.raises(UserError, match=r"img3\.png is not a readable image"):
        list(src)


# ------------------------------------------------------------------ sinks


def test_video_sink_keeps_fps_frames_and_audio(video, tmp_path):
    src = open_media(video)
    out = tmp_path / "out.mp4"
    with open_sink(out, src) as sink:
        for frame in src:
            sink.write(255 - frame)
    info = probe(out)
    assert info.fps == src.fps and info.frame_count == 12 and (info.width, info.height) == (64, 48)
    assert read_audio_duration(out) == pytest.approx(12 / float(src.fps), abs=0.2)
    first_in, first_out = next(iter(src)), next(iter(open_media(out)))
    assert psnr(first_out, 255 - first_in) > 35
    silent = open_sink(tmp_path / "silent.mp4", src, keep_audio=False)
    silent.write(first_in)
    silent.close()
    assert not probe(tmp_path / "silent.mp4").has_audio


def test_image_sink_writes_one_image(tmp_path):
    write_image(tmp_path / "in.png", _solid(50))
    src = open_media(tmp_path / "in.png")
    with pytest.raises(UserError, match="must be an image file"):
        open_sink(tmp_path / "out.mp4", src)
    sink = open_sink(tmp_path / "out.png", src)
    sink.write(_solid(60))
    with pytest.raises(ValueError, match="single image"):
        sink.write(_solid(70))
    sink.close()
    assert np.array_equal(read_image(tmp_path / "out.png"), _solid(60))


def test_folder_sink_same_names_and_atomic(folder, tmp_path):
    src = open_media(folder)
    out = tmp_path / "out"
    with open_sink(out, src) as sink:
        for frame in src:
            sink.write(frame + 1)
    assert sorted(p.name for p in out.iterdir()) == ["img1.png", "img10.png", "img2.png"]
    assert [int(f[0, 0, 0]) for f in open_media(out)] == [11, 21, 31]
    # Existing output: refused without overwrite; with it, only the files written are replaced
    # and the folder's other files stay (a folder may hold a user's own files).
    with pytest.raises(UserError, match="already exists"):
        open_sink(out, src)
    (out / "notes.txt").write_text("mine")
    with open_sink(out, src, overwrite=True, image_suffix="jpg") as sink:
        sink.write(_solid(5), name="only")
        sink.write(_solid(6), name="img2")
    assert sorted(p.name for p in out.iterdir()) == ["img1.png", "img10.png", "img2.jpg", "img2.png",
                                                     "notes.txt", "only.jpg"]
    assert (out / "notes.txt").read_text() == "mine"
    assert int(read_image(out / "only.jpg")[0, 0, 0]) in range(4, 7)


def test_folder_sink_overwrite_replaces_same_names_only_and_failure_keeps_the_old(folder, tmp_path):
    src = open_media(folder)
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1.png").write_bytes(b"old")
    (out / "keep.txt").write_text("keep")
    with pytest.raises(RuntimeError, match="model crashed"):
        with open_sink(out, src, overwrite=True) as sink:
            sink.write(_solid(1))
            raise RuntimeError("model crashed")
    assert sorted(p.name for p in out.iterdir()) == ["img1.png", "keep.txt"]  # no staging folder left
    assert (out / "img1.png").read_bytes() == b"old"
    with open_sink(out, src, overwrite=True) as sink:
        for frame in src:
            sink.write(frame)
    assert sorted(p.name for p in out.iterdir()) == ["img1.png", "img10.png", "img2.png", "keep.txt"]
    assert (out / "keep.txt").read_text() == "keep"
    assert np.array_equal(read_image(out / "img1.png"), read_image(folder / "img1.png"))


def test_folder_sink_inside_its_input_folder_is_refused(folder):
    with pytest.raises(UserError, match="inside the input folder"):
        open_sink(folder / "translated", open_media(folder), overwrite=True)
    assert not (folder / "translated").exists()


def test_folder_sink_failure_leaves_nothing(folder, tmp_path):
    src = open_media(folder)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="model crashed"):
        with open_sink(out, src) as sink:
            sink.write(_solid(1))
            raise RuntimeError("model crashed")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(("source", "output", "overwrite", "message"), [
    ("video", "video", True, "is the input"),
    ("folder", "folder", True, "is the input"),
    ("video", "frames_out", False, "must be a video file"),  # a video's output needs a video suffix
    ("folder", "a_file", True, "exists and is a file"),  # a folder's output cannot replace a file
], ids=["video-onto-itself", "folder-onto-itself", "video-to-folder-name", "folder-onto-a-file"])
def test_sink_never_replaces_its_input(video, folder, tmp_path, source, output, overwrite, message):
    (tmp_path / "a_file").write_text("x")
    inputs = {"video": video, "folder": folder}
    with pytest.raises(UserError, match=message):
        open_sink(inputs.get(output, tmp_path / output), open_media(inputs[source]), overwrite=overwrite)
    assert probe(video).frame_count == 12 and len(open_media(folder)) == 3
    assert (tmp_path / "a_file").read_text() == "x" and not (tmp_path / "frames_out").exists()


def test_sink_with_no_frames_saves_nothing(folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError, match="no frames were written"):
        with open_sink(out, open_media(folder)):
            pass
    assert not out.exists()


def test_sink_into_unwritable_place(folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create output folder"):
        open_sink(blocker / "out", open_media(folder))


def test_outputs_get_plain_file_permissions(video, folder, tmp_path):
    """Atomic temp files and folders are created private (0600 / 0700); finished outputs must get
    the permissions of a plainly created file / folder under the current umask."""
    import stat

    from vid2vid_app.fileio import umask

    file_mode, dir_mode = 0o666 & ~umask(), 0o777 & ~umask()
    write_image(tmp_path / "one.png", _solid(10))
    with open_sink(tmp_path / "out.mp4", open_media(video)) as sink:
        sink.write(smooth_frames(1, 64, 48)[0])
    src = open_media(folder)
    with open_sink(tmp_path / "out_frames", src) as sink:
        for frame in src:
            sink.write(frame)
    assert stat.S_IMODE(os.stat(tmp_path / "one.png").st_mode) == file_mode
    assert stat.S_IMODE(os.stat(tmp_path / "out.mp4").st_mode) == file_mode
    assert stat.S_IMODE(os.stat(tmp_path / "out_frames").st_mode) == dir_mode
    assert stat.S_IMODE(os.stat(tmp_path / "out_frames" / "img1.png").st_mode) == file_mode


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_image_in_a_folder_is_a_clear_error(folder):
    """A permission problem on one image is a UserError naming it, not an OSError traceback."""
    src = open_media(folder)
    (folder / "img2.png").chmod(0)
    try:
        with pytest.raises(UserError, match=r"img2\.png cannot be read"):
            list(src)
    finally:
        (folder / "img2.png").chmod(0o644)


def test_folder_that_appears_while_writing_is_kept(folder, tmp_path):
    """Without --overwrite the existence check is repeated at the end: a folder another program
    created meanwhile is neither replaced nor written into."""
    src = open_media(folder)
    out = tmp_path / "out"
    sink = open_sink(out, src)
    sink.write(_solid(1))
    out.mkdir()
    (out / "theirs.txt").write_text("theirs")
    with pytest.raises(UserError, match="appeared while this command was writing it"):
        sink.close()
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

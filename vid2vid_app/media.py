"""Inputs and outputs that are "a video, an image, or a folder of images".

:func:`open_media` gives a :class:`MediaSource` that yields uint8 HWC RGB frames whatever the
input is; :func:`open_sink` gives a :class:`MediaSink` that writes frames back as the same kind
(video -> video with the source's fps and audio, image -> image, folder -> folder with the same
file names). Sinks never replace their input and only put complete outputs in place.

Folders: image files directly inside the folder (not sub-folders), in natural order
(``img2`` before ``img10``); hidden files and non-image files are ignored. Images of different
sizes are allowed: each frame keeps its own size and ``size`` is the first image's.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import UserError
from .fileio import TEMP_MARK, check_not_input, check_output_path, os_error_message, umask
from .imaging import IMAGE_SUFFIXES, VIDEO_SUFFIXES, encode_image, read_image, resize_max_side, write_image
from .video import VideoInfo, VideoReader, VideoWriter

KINDS = ("video", "image", "folder")


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``img2`` < ``img10``."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts) + (name,)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, naturally sorted (:func:`natural_key`).

    Hidden files (``.DS_Store``, macOS ``._x.png`` resource forks) and sub-folders are skipped.
    :class:`UserError` when the folder is missing, is not a folder, or holds no image.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder} does not exist.")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder of images.")
    files = [
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise UserError(f"{folder} contains no images ({', '.join(IMAGE_SUFFIXES)}).")
    return sorted(files, key=lambda p: natural_key(p.name))


def _frame_names(files: list[Path]) -> list[str]:
    """File stems, made unique where two files differ only by suffix (``a.png``, ``a.jpg``)."""
    stems = [p.stem for p in files]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    return [f"{p.stem}_{p.suffix[1:].lower()}" if counts[p.stem] > 1 else p.stem for p in files]


def _read(path: Path, max_side: int | None) -> np.ndarray:
    try:
        image = read_image(path)
    except ValueError:
        raise UserError(f"{path} is not a readable image.") from None
    except OSError as exc:  # e.g. permission denied, or the file vanished since the folder was listed
        raise UserError(f"{path} cannot be read ({exc.strerror or exc}).") from None
    return resize_max_side(image, max_side)


class MediaSource:
    """Frames of a video, a single image, or a folder of images (use :func:`open_media`).

    Attributes:
        path: the input path.
        kind: ``"video"``, ``"image"`` or ``"folder"``.
        fps: frames per second of a video (Fraction), None for images and folders.
        frame_count: number of frames (the header's count for videos).
        names: one name per frame: the file stem for images/folders, ``frame_000123`` for videos.
        size: (width, height) of the first frame, after ``max_side`` downscaling.
        files: the image files (empty for a video).
        info: the :class:`~vid2vid_app.video.VideoInfo` of a video, else None.
        truncated, error: for videos, whether the latest pass stopped early and why.

    Iterating yields uint8 (H, W, 3) RGB frames; a source can be iterated several times.
    """

    def __init__(self, path: Path, kind: str, *, max_side: int | None = None) -> None:
        self.path = path
        self.kind = kind
        self.max_side = max_side
        self.files: list[Path] = []
        self.info: VideoInfo | None = None
        self._reader: VideoReader | None = None
        if kind == "video":
            self._reader = VideoReader(path, max_side=max_side)
            self.info = self._reader.info
            self.fps: Fraction | None = self.info.fps
            self.frame_count = self.info.frame_count
            self.names = [f"frame_{i:06d}" for i in range(self.frame_count)]
            self.size = self._reader.output_size
            return
        self.fps = None
        if kind == "image":
            self.files = [path]
        else:
            self.files = list_images(path)
        self.frame_count = len(self.files)
        self.names = _frame_names(self.files)
        first = _read(self.files[0], max_side)
        self.size = (first.shape[1], first.shape[0])

    @property
    def truncated(self) -> bool:
        return self._reader.truncated if self._reader is not None else False

    @property
    def error(self) -> str | None:
        return self._reader.error if self._reader is not None else None

    @property
    def frames_read(self) -> int | None:
        """Frames yielded by the latest pass over a video (None for images and folders)."""
        return self._reader.frames_read if self._reader is not None else None

    def __len__(self) -> int:
        return self.frame_count

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._reader is not None:
            yield from self._reader
            return
        for file in self.files:
            yield _read(file, self.max_side)

    def __repr__(self) -> str:
        return f"MediaSource({self.kind}, {str(self.path)!r}, frames={self.frame_count}, size={self.size})"


def open_media(path: str | os.PathLike, *, max_side: int | None = None) -> MediaSource:
    """Open a video, an image, or a folder of images as a :class:`MediaSource`.

    The kind comes from the path: a folder, an image suffix, a video suffix; any other file is
    tried as a video, then as an image. ``max_side`` downscales frames (aspect kept).
    Raises :class:`UserError` for a missing path, an unreadable file or an empty folder.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist.")
    if path.is_dir():
        return MediaSource(path, "folder", max_side=max_side)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return MediaSource(path, "image", max_side=max_side)
    if suffix in VIDEO_SUFFIXES:
        return MediaSource(path, "video", max_side=max_side)
    try:
        return MediaSource(path, "video", max_side=max_side)
    except UserError:
        pass
    try:
        return MediaSource(path, "image", max_side=max_side)
    except UserError:
        raise UserError(
            f"{path} is neither a readable video nor an image "
            f"(expected e.g. {', '.join(VIDEO_SUFFIXES[:3] + IMAGE_SUFFIXES[:3])})."
        ) from None


class MediaSink:
    """Writes frames as a video, one image, or a folder of images (use :func:`open_sink`).

    ``write(frame, name=None)`` takes a uint8 (H, W, 3) RGB frame; for folders, ``name`` is the
    file stem (default: the source's name for that frame index). :meth:`close` puts the complete
    output in place; leaving the ``with`` block through an exception, or :meth:`abort`, leaves
    nothing at ``path`` (an existing output being overwritten stays as it was). Writing into an
    existing folder (``overwrite``) replaces only the files of the frames' names; the folder's
    other files are kept.
    """

    def __init__(self, path: Path, kind: str, *, names: list[str] | None = None,
                 suffixes: list[str] | None = None, video: VideoWriter | None = None,
                 overwrite: bool = False) -> None:
        self.path = path
        self.kind = kind
        self.frames_written = 0
        self._names = names or []
        self._suffixes = suffixes or []
        self._video = video
        self._overwrite = overwrite
        self._closed = False
        self._tmp_dir: Path | None = None
        self._merge = False
        self._used: set[str] = set()
        self._image: np.ndarray | None = None
        if kind == "folder":
            # A new output folder is built beside its final place and renamed into it whole; frames
            # for an existing folder (--overwrite) are staged inside it and then replace only the
            # files of the same names, so the folder's other files stay. The pid in the name lets
            # a later run remove the staging folder of a killed process (fileio.remove_stale_temps).
            self._merge = path.is_dir()
            self._tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=TEMP_MARK,
                                                  dir=path if self._merge else path.parent))
            # mkdtemp makes the folder private (0700); the output gets a plain folder's permissions.
            os.chmod(self._tmp_dir, 0o777 & ~umask())

    def write(self, frame: np.ndarray, name: str | None = None) -> None:
        if self._closed:
            raise RuntimeError("write() on a closed MediaSink")
        i = self.frames_written
        if self.kind == "video":
            self._video.write(frame)
        elif self.kind == "image":
            if self._image is not None:
                raise ValueError(f"{self.path} is a single image; it cannot take a second frame")
            self._image = np.ascontiguousarray(frame)
        else:
            stem = name or (self._names[i] if i < len(self._names) else f"{i:06d}")
            suffix = self._suffixes[i] if i < len(self._suffixes) else ".png"
            file_name = stem + suffix
            if file_name in self._used:
                raise ValueError(f"two frames are both named {file_name!r} in {self.path}")
            self._used.add(file_name)
            data = encode_image(frame, suffix)
            try:
                (self._tmp_dir / file_name).write_bytes(data)
            except OSError as exc:
                raise UserError(os_error_message(exc, self.path / file_name)) from None
        self.frames_written += 1

    def close(self) -> None:
        """Finish and put the output in place (raises UserError when no frame was written)."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise UserError(f"no frames were written to {self.path}; nothing was saved.")
        self._closed = True
        if self.kind == "video":
            self._video.close()
        elif self.kind == "image":
            write_image(self.path, self._image, replace=self._overwrite)
        else:
            self._finish_folder()

    def _finish_folder(self) -> None:
        """Put the staged frames in place: a new folder is renamed into place whole; into an
        existing folder each staged file replaces the file of its name (each one atomically)."""
        try:
            if not self._merge:
                if self.path.exists():
                    raise UserError(f"{self.path} appeared while this command was writing it and was left as "
                                    "it is; pass --overwrite to write into it.")
                os.rename(self._tmp_dir, self.path)
                return
            for staged in sorted(self._tmp_dir.iterdir()):
                os.replace(staged, self.path / staged.name)
        except OSError as exc:
            raise UserError(os_error_message(exc, self.path, "move the output into")) from None
        finally:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)

    def abort(self) -> None:
        """Stop without saving anything."""
        if self._closed:
            return
        self._closed = True
        if self._video is not None:
            self._video.abort()
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)

    def __enter__(self) -> MediaSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_sink(
    path: str | os.PathLike,
    like: MediaSource,
    *,
    overwrite: bool = False,
    audio_from: str | os.PathLike | None = None,
    keep_audio: bool = True,
    fps: float | Fraction | None = None,
    quality: int = 18,
    preset: str = "medium",
    image_suffix: str | None = None,
    threaded: bool = False,
) -> MediaSink:
    """Open an output of the same kind as ``like``.

    * video: an H.264 :class:`~vid2vid_app.video.VideoWriter` at ``like``'s fps (or ``fps``),
      with the audio of ``audio_from``, by default of the source video itself
      (``keep_audio=False`` for none); ``path`` needs a video suffix.
    * image: one image file; ``path`` needs an image suffix.
    * folder: a folder with one image per frame, named like the source's files (their suffix,
      or ``image_suffix`` such as ``".png"``), built in a temp folder and renamed into place;
      into an existing folder (``overwrite``) only files of those names are replaced.

    Refuses an existing output unless ``overwrite``, and never writes over ``like`` itself
    (nor inside an input folder, see :func:`vid2vid_app.fileio.check_not_input`).
    """
    path = Path(path)
    check_not_input(path, [like.path])
    if like.kind == "video":
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise UserError(f"{path}: the input is a video, so the output must be a video file such as .mp4.")
        if audio_from is None and keep_audio:
            audio_from = like.path
        writer = VideoWriter(path, fps or like.fps, quality=quality, preset=preset, overwrite=overwrite,
                             audio_from=audio_from if keep_audio else None, threaded=threaded)
        return MediaSink(path, "video", video=writer)
    if like.kind == "image":
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{path}: the input is an image, so the output must be an image file such as .png.")
        check_output_path(path, overwrite)
        return MediaSink(path, "image", overwrite=overwrite)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} exists and is a file; the output of a folder input must be a folder.")
    check_output_path(path, overwrite, folder=True)
    if image_suffix is not None:
        image_suffix = image_suffix if image_suffix.startswith(".") else "." + image_suffix
        if image_suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"unknown image suffix {image_suffix}; use one of {', '.join(IMAGE_SUFFIXES)}.")
    suffixes = [image_suffix or f.suffix for f in like.files]
    try:
        return MediaSink(path, "folder", names=like.names, suffixes=suffixes, overwrite=overwrite)
    except OSError as exc:
        raise UserError(f"cannot write into {path.parent}: {exc.strerror or exc}.") from None

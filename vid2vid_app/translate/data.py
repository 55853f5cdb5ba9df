"""Training data for frame-wise translation: paired (pix2pix) and unpaired (CycleGAN) image sets.

Sources:
    * ``pair_folders(dir_a, dir_b)``: two folders whose images have the same file names (stems);
    * ``aligned_folder(dir)``: one folder of A|B side-by-side images (A left half, B right half);
    * ``video_frames(path)``: frames of a video, every ``frame_step``-th, decoded once;
    * ``domain_frames(paths)``: any mix of image folders and videos (one CycleGAN domain).

Each source is a :class:`FrameSet`: frames addressed by index, uint8 HWC RGB at the *working size*
(the preprocessing's resize step is applied on load). Image files are read lazily; video frames are
decoded once and kept in memory at the working size (use ``frame_step`` / ``max_frames`` for long
videos).

Preprocessing (:class:`Preprocess`), the same random parameters for both images of a pair:
    * ``resize_and_crop`` (pix2pix / CycleGAN default): resize to load_size x load_size, random
      crop crop_size x crop_size;
    * ``scale_width_and_crop``: resize the width to load_size keeping the aspect, random crop;
    * ``crop``: random crop of the image at its own size;
    then a random horizontal flip unless disabled. Validation items use the centre crop, no flip.

Datasets return ``{"A": (3, S, S), "B": (3, S, S)}`` float tensors in [-1, 1] with ``A`` the input.
Randomness uses torch's global generator, which the training loop seeds and restores on resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserError
from ..imaging import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_image, to_tensor
from ..media import list_images, natural_key


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file from its header (no full decode)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - any decoder failure means "not an image" to the user
        raise UserError(f"{path} is not a readable image.") from None


# ----------------------------------------------------------------------------------------------
# Working-size resize (the deterministic part of preprocessing)


@dataclass(frozen=True)
class Preprocess:
    """How a frame becomes a training crop (see the module docstring)."""

    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) a ``width`` x ``height`` frame is resized to before cropping."""
        if self.mode == "resize_and_crop":
            return self.load_size, self.load_size
        if self.mode == "scale_width_and_crop":
            w = self.load_size
            h = max(self.crop_size, round(height * self.load_size / width))
            return w, h
        # "crop": keep the frame's size, but never smaller than a crop.
        scale = max(1.0, self.crop_size / min(width, height))
        return max(self.crop_size, round(width * scale)), max(self.crop_size, round(height * scale))

    def resize(self, image: np.ndarray) -> np.ndarray:
        """uint8 HWC -> uint8 HWC at :meth:`working_size`."""
        h, w = image.shape[:2]
        size = self.working_size(w, h)
        if size == (w, h):
            return image
        interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_CUBIC
        return cv2.resize(image, size, interpolation=interp)

    def crop_params(self, width: int, height: int, train: bool) -> tuple[int, int, bool]:
        """(x0, y0, flip) for one item: random in training, centred and unflipped otherwise."""
        s = self.crop_size
        if train:
            x0 = int(torch.randint(0, width - s + 1, ()).item())
            y0 = int(torch.randint(0, height - s + 1, ()).item())
            flip = self.flip and bool(torch.rand(()).item() < 0.5)
        else:
            x0, y0, flip = (width - s) // 2, (height - s) // 2, False
        return x0, y0, flip

    def apply(self, image: np.ndarray, params: tuple[int, int, bool]) -> torch.Tensor:
        """Crop + flip a working-size uint8 HWC frame -> float (3, S, S) in [-1, 1]."""
        x0, y0, flip = params
        s = self.crop_size
        crop = image[y0 : y0 + s, x0 : x0 + s]
        if flip:
            crop = crop[:, ::-1]
        return to_tensor(np.ascontiguousarray(crop))[0]


# ----------------------------------------------------------------------------------------------
# Frame sets


@dataclass(frozen=True)
class ImageRef:
    """A lazily read image file; ``half`` 0/1 selects the left/right half of an A|B image."""

    path: Path
    half: int | None = None


class FrameSet(Sequence):
    """Frames addressed by index as uint8 HWC RGB at the working size of ``preprocess``.

    Items are :class:`ImageRef` (read on access) or arrays already at the working size.
    """

    def __init__(self, items: list[ImageRef | np.ndarray], names: list[str], preprocess: Preprocess):
        if len(items) != len(names):
            raise ValueError("one name per item")
        self.items = items
        self.names = names
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return FrameSet(self.items[index], self.names[index], self.preprocess)
        item = self.items[index]
        if isinstance(item, np.ndarray):
            return item
        try:
            image = read_image(item.path)
        except ValueError:
            raise UserError(f"{item.path} is not a readable image.") from None
        if item.half is not None:
            image = split_aligned(image, item.path)[item.half]
        return self.preprocess.resize(image)

    def __add__(self, other: FrameSet) -> FrameSet:
        return FrameSet(self.items + other.items, self.names + other.names, self.preprocess)


def split_aligned(image: np.ndarray, path: Path | str = "image") -> tuple[np.ndarray, np.ndarray]:
    """An A|B side-by-side image -> (A, B), the left and right halves."""
    w = image.shape[1]
    if w < 2:
        raise UserError(f"{path} is too narrow to hold an A|B pair side by side.")
    half = w // 2
    return image[:, :half], image[:, half : 2 * half]


def _size_note(label: str, sizes: dict[tuple[int, int], int], preprocess: Preprocess) -> str | None:
    """A note for the log when a set of images does not share one size."""
    if len(sizes) <= 1:
        return None
    common = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    listed = ", ".join(f"{w}x{h} ({n})" for (w, h), n in common)
    more = f" and {len(sizes) - 3} more sizes" if len(sizes) > 3 else ""
    if preprocess.mode == "resize_and_crop":
        target = f"{preprocess.load_size}x{preprocess.load_size}"
    elif preprocess.mode == "scale_width_and_crop":
        target = f"width {preprocess.load_size} (aspect kept)"
    else:
        target = "at least the crop size"
    return f"{label}: images have {len(sizes)} different sizes ({listed}{more}); all are resized to {target}."


def image_folder(folder: str | Path, preprocess: Preprocess, notes: list[str] | None = None) -> FrameSet:
    """All images of ``folder`` (lazily read). Mixed sizes are allowed and noted in ``notes``."""
    files = list_images(folder)
    sizes: dict[tuple[int, int], int] = {}
    for path in files:
        size = image_size(path)
        sizes[size] = sizes.get(size, 0) + 1
    note = _size_note(str(folder), sizes, preprocess)
    if note and notes is not None:
        notes.append(note)
    return FrameSet([ImageRef(p) for p in files], [p.stem for p in files], preprocess)


def pair_folders(dir_a: str | Path, dir_b: str | Path, preprocess: Preprocess,
                 notes: list[str] | None = None) -> tuple[FrameSet, FrameSet]:
    """Two folders with the same image names (matched by stem, so a.jpg pairs with a.png).

    Raises UserError listing the names found in only one folder.
    """
    files_a, files_b = list_images(dir_a), list_images(dir_b)
    by_stem_a = {p.stem: p for p in files_a}
    by_stem_b = {p.stem: p for p in files_b}
    only_a = sorted(set(by_stem_a) - set(by_stem_b), key=natural_key)
    only_b = sorted(set(by_stem_b) - set(by_stem_a), key=natural_key)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"only in {dir_a}: {_listing(only_a)}")
        if only_b:
            parts.append(f"only in {dir_b}: {_listing(only_b)}")
        raise UserError(f"paired folders must hold the same image names; {'; '.join(parts)}.")
    stems = sorted(by_stem_a, key=natural_key)
    sizes_a: dict[tuple[int, int], int] = {}
    sizes_b: dict[tuple[int, int], int] = {}
    differing = 0
    for stem in stems:
        sa, sb = image_size(by_stem_a[stem]), image_size(by_stem_b[stem])
        sizes_a[sa] = sizes_a.get(sa, 0) + 1
        sizes_b[sb] = sizes_b.get(sb, 0) + 1
        differing += sa != sb
    if notes is not None:
        for label, sizes in ((str(dir_a), sizes_a), (str(dir_b), sizes_b)):
            note = _size_note(label, sizes, preprocess)
            if note:
                notes.append(note)
        if differing:
            notes.append(f"{differing} pair(s) have different A and B sizes; both images of a pair "
                         "are resized to the same working size.")
    set_a = FrameSet([ImageRef(by_stem_a[s]) for s in stems], stems, preprocess)
    set_b = FrameSet([ImageRef(by_stem_b[s]) for s in stems], stems, preprocess)
    if differing and preprocess.mode != "resize_and_crop":
        # The crop must cut the same region from both images: bring B to A's working size.
        set_b = _ResizedLike(set_b, set_a)
    return set_a, set_b


class _ResizedLike(FrameSet):
    """A FrameSet whose frames are resized to the size of the matching frame of another set."""

    def __init__(self, frames: FrameSet, like: FrameSet):
        super().__init__(frames.items, frames.names, frames.preprocess)
        self.like = like

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return _ResizedLike(FrameSet.__getitem__(self, index), self.like[index])
        image = super().__getitem__(index)
        ref = self.like[index]
        if image.shape[:2] != ref.shape[:2]:
            image = cv2.resize(image, (ref.shape[1], ref.shape[0]), interpolation=cv2.INTER_AREA)
        return image


def aligned_folder(folder: str | Path, preprocess: Preprocess,
                   notes: list[str] | None = None) -> tuple[FrameSet, FrameSet]:
    """A folder of A|B side-by-side images -> (A halves, B halves)."""
    files = list_images(folder)
    sizes: dict[tuple[int, int], int] = {}
    for path in files:
        w, h = image_size(path)
        if w < 2:
            raise UserError(f"{path} is too narrow to hold an A|B pair side by side.")
        sizes[(w // 2, h)] = sizes.get((w // 2, h), 0) + 1
    note = _size_note(str(folder), sizes, preprocess)
    if note and notes is not None:
        notes.append(note)
    names = [p.stem for p in files]
    return (FrameSet([ImageRef(p, 0) for p in files], names, preprocess),
            FrameSet([ImageRef(p, 1) for p in files], names, preprocess))


def video_frames(path: str | Path, preprocess: Preprocess, frame_step: int = 1,
                 max_frames: int | None = None, quiet: bool = True) -> FrameSet:
    """Every ``frame_step``-th frame of a video (at most ``max_frames``), decoded once and kept at
    the working size."""
    from ..progress import progress
    from ..video import VideoReader

    path = Path(path)
    reader = VideoReader(path, step=frame_step)
    total = reader.info.frame_count // frame_step if reader.info.frame_count else None
    if max_frames is not None and total is not None:
        total = min(total, max_frames)
    frames: list[np.ndarray] = []
    for frame in progress(reader, total=total, desc=f"decode {path.name}", unit="frame", quiet=quiet):
        frames.append(preprocess.resize(frame))
        if max_frames is not None and len(frames) >= max_frames:
            break
    if not frames:
        raise UserError(f"{path} has no decodable frames.")
    names = [f"{path.stem}_{i * frame_step:06d}" for i in range(len(frames))]
    return FrameSet(list(frames), names, preprocess)


def paired_videos(path_a: str | Path, path_b: str | Path, preprocess: Preprocess, frame_step: int = 1,
                  max_frames: int | None = None, quiet: bool = True) -> tuple[FrameSet, FrameSet]:
    """Two frame-aligned videos -> (A frames, B frames). They must have the same frame count."""
    set_a = video_frames(path_a, preprocess, frame_step, max_frames, quiet)
    set_b = video_frames(path_b, preprocess, frame_step, max_frames, quiet)
    if len(set_a) != len(set_b):
        raise UserError(f"{path_a} gives {len(set_a)} frames but {path_b} gives {len(set_b)}; "
                        "frame-aligned videos must have the same number of frames.")
    return set_a, set_b


def domain_frames(paths: Sequence[str | Path], preprocess: Preprocess, frame_step: int = 1,
                  max_frames: int | None = None, notes: list[str] | None = None,
                  quiet: bool = True, label: str = "domain") -> FrameSet:
    """One CycleGAN domain from image folders and/or videos (in the given order)."""
    if not paths:
        raise UserError(f"{label}: give at least one image folder or video.")
    result: FrameSet | None = None
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UserError(f"{path} ({label}) does not exist.")
        if path.is_dir():
            part = image_folder(path, preprocess, notes)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            image_size(path)  # readable?
            part = FrameSet([ImageRef(path)], [path.stem], preprocess)
        elif path.suffix.lower() in VIDEO_SUFFIXES or path.is_file():
            part = video_frames(path, preprocess, frame_step, max_frames, quiet)
        else:
            raise UserError(f"{path} ({label}) is neither an image folder nor a video.")
        result = part if result is None else result + part
    assert result is not None
    return result


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


# ----------------------------------------------------------------------------------------------
# Datasets


def split_validation(a: FrameSet, b: FrameSet, fraction: float, max_val: int
                     ) -> tuple[tuple[FrameSet, FrameSet], tuple[FrameSet, FrameSet] | None]:
    """Hold out the LAST pairs (by name or frame order: for video neighbouring frames are alike, so a
    tail split does not leak training frames into validation). Returns ((train A, B), (val A, B) or
    None when there are too few pairs to spare any)."""
    n = len(a)
    n_val = min(max_val, round(n * fraction)) if fraction > 0 else 0
    if fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1)
    if n_val <= 0:
        return (a, b), None
    return (a[: n - n_val], b[: n - n_val]), (a[n - n_val :], b[n - n_val :])


class PairedDataset(Dataset):
    """Aligned pairs: item i = {"A": input, "B": target}, each (3, S, S) in [-1, 1], cropped and
    flipped with the same random parameters."""

    def __init__(self, a: FrameSet, b: FrameSet, preprocess: Preprocess, train: bool = True):
        if len(a) != len(b):
            raise ValueError("paired sets must have the same length")
        if len(a) == 0:
            raise UserError("no training pairs were found.")
        self.a, self.b, self.preprocess, self.train = a, b, preprocess, train

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        img_a, img_b = self.a[index], self.b[index]
        h, w = img_a.shape[:2]
        params = self.preprocess.crop_params(w, h, self.train)
        return {"A": self.preprocess.apply(img_a, params), "B": self.preprocess.apply(img_b, params)}


class UnpairedDataset(Dataset):
    """Two independent domains: item i = {"A": A[i mod |A|], "B": a random B}, each (3, S, S) in
    [-1, 1] with its own crop and flip. Its length is the larger domain's size (CycleGAN)."""

    def __init__(self, a: FrameSet, b: FrameSet, preprocess: Preprocess):
        if len(a) == 0 or len(b) == 0:
            raise UserError("both domains need at least one image.")
        self.a, self.b, self.preprocess = a, b, preprocess

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        img_a = self.a[index % len(self.a)]
        img_b = self.b[int(torch.randint(0, len(self.b), ()).item())]
        pa = self.preprocess.crop_params(img_a.shape[1], img_a.shape[0], True)
        pb = self.preprocess.crop_params(img_b.shape[1], img_b.shape[0], True)
        return {"A": self.preprocess.apply(img_a, pa), "B": self.preprocess.apply(img_b, pb)}


def stack_pairs(dataset: PairedDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All items of a (validation) dataset stacked: (N, 3, S, S) inputs and targets."""
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([it["A"] for it in items]), torch.stack([it["B"] for it in items])


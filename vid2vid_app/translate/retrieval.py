"""Retrieval evaluation: does translating night queries help find their place among day images?

Retrieval-based localization describes every image by one global vector and looks a query up among
the descriptors of a geo-tagged database; the query is localised when a database image of its place
ranks among the first K. :func:`evaluate_retrieval` measures this for the raw queries and for each
translation model, in numbered steps:

1. open the queries and the database (a video, an image or a folder of images each) and read the
   ground truth: equal names (a folder's file names without the extension, a video's frame numbers)
   or a CSV of ``query,match[,match...]`` rows; queries without a match are listed and left out;
2. load every model first, so a wrong name fails before any work;
3. describe the database with :class:`~vid2vid_app.models.descriptor.GeMDescriptor` (GeM-pooled
   VGG16 conv5, L2-normalised), or read its descriptors from the cache: they are stored on disk
   under a key of the files' contents and the descriptor settings, so comparing models, or
   evaluating again, does not recompute them;
4. for the raw queries and for each model: translate the queries as ``translate-video`` would (at
   their own size), describe them, rank the database by cosine similarity and count Recall@1/5/10,
   the share of queries with a correct database image among the first K.

All images are described at one working size: the size of the database's first image, scaled
(aspect kept) so that its longer side is at most ``max_side`` and its shorter side at least
``min_side``. VGG16's conv5 sees the input at 1/16 of its resolution, so small crops are enlarged
before description rather than left with a 4x4 feature map. Images whose own size differs from the
database's first (queries of another camera, a database of mixed sizes) are noted.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import UserError

KS = (1, 5, 10)
RAW = "raw"
CACHE_ENV = "VID2VID_CACHE"
CACHE_VERSION = 1
_LIST_LIMIT = 8


def _listing(names: Sequence[str], limit: int = _LIST_LIMIT) -> str:
    """``a, b, c`` or ``a, b, ... (12 more)`` for messages."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


# ------------------------------------------------------------------------------------------------
# 1. Ground truth


@dataclass
class GroundTruth:
    """Which database images show each query's place.

    ``matches``: query index -> sorted database indices (only queries with at least one match);
    ``unmatched``: names of the queries left out because nothing in the database matches them;
    ``source``: "file names" or the CSV path, for messages.
    """

    matches: dict[int, list[int]]
    unmatched: list[str]
    source: str


def name_lookup(names: Sequence[str], files: Sequence[Path] = ()) -> dict[str, int]:
    """Every spelling of an item's name -> its index: the name itself (a file stem or
    ``frame_000012``), a file's full name (``x.jpg``) and, for video frames, the plain frame
    number (``12``)."""
    lookup: dict[str, int] = {}
    for i, name in enumerate(names):
        lookup.setdefault(name, i)
        if name.startswith("frame_") and name[6:].isdigit():
            lookup.setdefault(str(int(name[6:])), i)
    for i, path in enumerate(files):
        lookup.setdefault(path.name, i)
    return lookup


def ground_truth_by_name(query_names: Sequence[str], database_names: Sequence[str]) -> GroundTruth:
    """Query ``x`` matches the database item of the same name (file stems, or frame numbers of two
    videos)."""
    index = {name: i for i, name in enumerate(database_names)}
    matches = {q: [index[name]] for q, name in enumerate(query_names) if name in index}
    unmatched = [name for name in query_names if name not in index]
    return GroundTruth(matches, unmatched, "file names")


def read_ground_truth_csv(path: str | Path, query_names: Sequence[str], query_files: Sequence[Path],
                          database_names: Sequence[str], database_files: Sequence[Path]) -> GroundTruth:
    """Rows ``query,match[,match...]`` (names with or without extension, or frame numbers; an
    optional header row starting with "query"; blank lines skipped; repeated queries merge).

    UserError listing the names that are neither queries nor database images. Queries with no row,
    or a row without matches, are the unmatched ones.
    """
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = [[cell.strip() for cell in row] for row in csv.reader(f)]
    except FileNotFoundError:
        raise UserError(f"ground-truth file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"ground-truth file {path} cannot be read as CSV ({exc}).") from None
    queries = name_lookup(query_names, query_files)
    database = name_lookup(database_names, database_files)
    matches: dict[int, set[int]] = {}
    missing: list[str] = []
    for line, row in enumerate(rows, 1):
        row = [cell for cell in row if cell]
        if not row or (line == 1 and row[0].lower() == "query"):
            continue
        if row[0] not in queries:
            missing.append(f"query {row[0]} (line {line})")
            continue
        found = matches.setdefault(queries[row[0]], set())
        for name in row[1:]:
            if name in database:
                found.add(database[name])
            else:
                missing.append(f"database image {name} (line {line})")
    if missing:
        raise UserError(f"{path} names {len(missing)} image(s) that are not among the queries or the "
                        f"database: {_listing(missing)}.")
    kept = {q: sorted(m) for q, m in sorted(matches.items()) if m}
    unmatched = [name for q, name in enumerate(query_names) if q not in kept]
    return GroundTruth(kept, unmatched, str(path))


# ------------------------------------------------------------------------------------------------
# 4. Ranking and recall


def rank_database(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Database indices by descending cosine similarity, per query: (Q, D) and (N, D) unit-norm
    descriptors -> (Q, N) int64. Ties keep the database order (a stable sort), so rankings are
    reproducible."""
    similarity = queries.astype(np.float64) @ database.astype(np.float64).T
    return np.argsort(-similarity, axis=1, kind="stable")


def recall_at_k(ranking: np.ndarray, matches: Sequence[Sequence[int]], ks: Sequence[int] = KS) -> dict[str, float]:
    """``{"recall@K": share of queries with at least one of their matches among their first K}``.

    ``ranking``: (Q, N) from :func:`rank_database`; ``matches``: Q lists of database indices. A K
    larger than the database counts the whole database. Values in [0, 1].
    """
    if len(ranking) != len(matches) or len(matches) == 0:
        raise ValueError(f"need one match list per ranked query, got {len(matches)} for {len(ranking)} queries")
    positions = np.empty(len(matches), dtype=np.int64)  # 0-based rank of each query's best match
    for q, good in enumerate(matches):
        hit = np.isin(ranking[q], np.asarray(good, dtype=np.int64))
        positions[q] = int(np.argmax(hit)) if hit.any() else ranking.shape[1]
    return {f"recall@{k}": float(np.mean(positions < k)) for k in ks}


# ------------------------------------------------------------------------------------------------
# 3. Describing images


def working_size(width: int, height: int, max_side: int, min_side: int = 0) -> tuple[int, int]:
    """(w, h) images are described at: ``width`` x ``height`` scaled (aspect kept) down so that the
    longer side is at most ``max_side``, or up so that the shorter side is at least ``min_side``
    (and never below the descriptor's own minimum); the lower limit wins when both apply."""
    from ..models.descriptor import MIN_SIDE

    scale = min(1.0, max_side / max(width, height))
    scale = max(scale, max(min_side, MIN_SIDE) / min(width, height))
    return max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))


class Describer:
    """Descriptors of uint8 RGB frames at one working size, in batches, with the time spent.

    ``describe(frames, label)``: an iterable of (H, W, 3) uint8 frames -> (N, 512) float32 unit
    vectors, every frame resized to ``size`` (w, h). :attr:`resized` counts, per ``label`` (when one
    is given), the frames whose own size differs from ``reference`` (the database's first image) so
    the caller can say so.
    """

    def __init__(self, network: torch.nn.Module, device: torch.device, size: tuple[int, int],
                 reference: tuple[int, int], batch_size: int = 16):
        self.network = network.to(device).eval()
        self.device = device
        self.size = size
        self.reference = reference
        self.batch_size = batch_size
        self.images = 0
        self.seconds = 0.0
        self.resized: dict[str, int] = {}

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")

    def _fit(self, frame: np.ndarray, label: str | None) -> np.ndarray:
        if label is not None and (frame.shape[1], frame.shape[0]) != self.reference:
            self.resized[label] = self.resized.get(label, 0) + 1
        w, h = self.size
        if frame.shape[1] == w and frame.shape[0] == h:
            return frame
        interp = cv2.INTER_AREA if frame.shape[0] * frame.shape[1] > w * h else cv2.INTER_CUBIC
        return cv2.resize(frame, (w, h), interpolation=interp)

    def _batch(self, frames: list[np.ndarray]) -> np.ndarray:
        from ..imaging import to_tensor

        start = time.perf_counter()
        with torch.inference_mode():
            out = self.network(to_tensor(np.stack(frames)).to(self.device)).float().cpu().numpy()
        self.seconds += time.perf_counter() - start
        self.images += len(frames)
        return out

    def describe(self, frames: Iterable[np.ndarray], label: str | None = None) -> np.ndarray:
        chunks, batch = [], []
        for frame in frames:
            batch.append(self._fit(frame, label))
            if len(batch) == self.batch_size:
                chunks.append(self._batch(batch))
                batch = []
        if batch:
            chunks.append(self._batch(batch))
        if not chunks:
            raise UserError(f"the {label or 'images'} hold no images to describe.")
        return np.concatenate(chunks)


# ------------------------------------------------------------------------------------------------
# The descriptor cache


def default_cache_dir() -> Path:
    """``$VID2VID_CACHE``, else ``$XDG_CACHE_HOME/vid2vid_app``, else ``~/.cache/vid2vid_app``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "vid2vid_app"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex). UserError when it cannot be read."""
    from ..fileio import os_error_message

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise UserError(os_error_message(exc, path, "read")) from None
    return digest.hexdigest()


def content_digest(source) -> str:
    """SHA-256 over what a media source holds: each image file's name and bytes in order, or a
    video file's bytes."""
    digest = hashlib.sha256()
    files = source.files if source.files else [source.path]
    for path in files:
        digest.update(f"{path.name}\0{file_digest(path)}\0".encode())
    return digest.hexdigest()


def cache_key(descriptor_settings: dict, weights_digest: str, size: tuple[int, int], source_digest: str) -> str:
    """The cache entry's name: a hash of everything the database descriptors depend on."""
    material = {"version": CACHE_VERSION, "descriptor": descriptor_settings, "weights": weights_digest,
                "size": list(size), "source": source_digest}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:40]


def load_cached(path: Path, names: Sequence[str], dim: int) -> np.ndarray | None:
    """The cached (N, dim) descriptors at ``path`` when they exist and fit ``names``; else None
    (a damaged or foreign file is simply not used)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            descriptors, cached_names = data["descriptors"], data["names"]
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if descriptors.shape != (len(names), dim) or list(cached_names) != list(names):
        return None
    return descriptors.astype(np.float32)


def save_cached(path: Path, descriptors: np.ndarray, names: Sequence[str]) -> str | None:
    """Write the cache entry atomically; returns a note instead of failing when it cannot be
    written (the evaluation itself does not need the cache)."""
    from ..fileio import atomic_path, os_error_message

    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, descriptors=descriptors.astype(np.float32), names=np.asarray(list(names), dtype=str))
    except OSError as exc:
        return f"the descriptor cache was not written ({os_error_message(exc, path)})"
    return None


# ------------------------------------------------------------------------------------------------
# The whole evaluation


@dataclass
class RetrievalOptions:
    """What :func:`evaluate_retrieval` compares (see the CLI for the user-facing descriptions)."""

    queries: Path
    database: Path
    ground_truth: Path | None = None  # CSV; None: equal names
    models: tuple[str, ...] = ()
    direction: str | None = None
    runs_dir: Path | None = None  # None: $VID2VID_RUNS or ./runs
    weights: Path | None = None  # VGG16 ImageNet weights; None: the usual folders
    device: str = "auto"
    batch_size: int = 16
    max_side: int = 512
    min_side: int = 128
    cache_dir: Path | None = None  # None: default_cache_dir() / "retrieval"
    use_cache: bool = True
    quiet: bool = False


@dataclass
class RetrievalReport:
    """``results``: "raw" and each model as given -> {"recall@1", "recall@5", "recall@10"} in [0, 1]."""

    results: dict[str, dict[str, float]]
    queries: int  # queries evaluated (with a match)
    unmatched: list[str]  # queries left out
    database: int
    size: tuple[int, int]  # the working size (w, h)
    images_per_second: float  # descriptor speed over the images described in this run
    device: str
    cache_hit: bool
    ground_truth: str
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, dict[str, float]]:
        return {name: dict(values) for name, values in self.results.items()}


@dataclass
class _Model:
    name: str
    generator: torch.nn.Module


def load_models(names: Sequence[str], runs_dir: Path | None, device: torch.device,
                direction: str | None) -> list[_Model]:
    """Each ``--model`` (a run name, run folder or model file) loaded, with the generator that runs
    ``direction`` (None: the model's default). UserError for repeats, the reserved name "raw" and
    anything that is not a translation model."""
    from .model import load_model, resolve_model_path

    seen: set[str] = set()
    models = []
    for name in names:
        if name == RAW:
            raise UserError(f"a model cannot be called {RAW!r}: that name stands for the untranslated queries.")
        if name in seen:
            raise UserError(f"--model {name} is given twice.")
        seen.add(name)
        loaded = load_model(resolve_model_path(name, runs_dir), device)
        models.append(_Model(name, loaded.generator(direction)))
    return models


def _selected(frames: Iterable[np.ndarray], keep: set[int]) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        if i in keep:
            yield frame


def _translated(frames: Iterable[np.ndarray], generator: torch.nn.Module, device: torch.device,
                batch_size: int) -> Iterator[np.ndarray]:
    """Frames through ``generator`` at their own size, as translate-video runs them."""
    from .run import FrameTranslator, batches

    translator = FrameTranslator(generator, device)
    for batch in batches(frames, batch_size):
        yield from translator(batch)


def _database_descriptors(source, describer: Describer, options: RetrievalOptions, weights: Path,
                          notes: list[str]) -> tuple[np.ndarray, bool]:
    """(N, 512) descriptors of the database and whether they came from the cache."""
    from ..models.descriptor import DESCRIPTOR_DIM
    from ..progress import progress

    path = None
    if options.use_cache:
        folder = options.cache_dir if options.cache_dir is not None else default_cache_dir() / "retrieval"
        key = cache_key(describer.network.settings, file_digest(weights), describer.size, content_digest(source))
        path = Path(folder) / f"{key}.npz"
        cached = load_cached(path, source.names, DESCRIPTOR_DIM)
        if cached is not None:
            return cached, True
    bar = progress(source, total=source.frame_count or None, desc="database", unit="img", quiet=options.quiet)
    descriptors = describer.describe(bar, "database images")
    if len(descriptors) != len(source.names):  # a damaged video: fewer frames than its header says
        raise UserError(f"{source.path} yielded {len(descriptors)} of its {len(source.names)} frames; "
                        "re-encode it or use a folder of images.")
    if path is not None:
        note = save_cached(path, descriptors, source.names)
        if note:
            notes.append(note)
    return descriptors, False


def _size_notes(describer: Describer, counts: dict[str, int]) -> list[str]:
    (rw, rh), (w, h) = describer.reference, describer.size
    return [f"{n} of the {counts[label]} {label} differ in size from the database's first image ({rw}x{rh}); "
            f"all images are described at {w}x{h}." for label, n in describer.resized.items() if n]


def _open(path: Path, what: str):
    from ..media import open_media

    source = open_media(path)
    if source.frame_count == 0:
        raise UserError(f"{path} ({what}) holds no frames.")
    return source


def evaluate_retrieval(options: RetrievalOptions, log: Callable[[str], None] | None = None) -> RetrievalReport:
    """Recall@1/5/10 of the raw queries and of each model's translated queries (steps in the module
    docstring). ``log`` receives one line per finished method. UserError for bad input."""
    from ..device import resolve_device
    from ..models.descriptor import GeMDescriptor, find_descriptor_weights
    from ..progress import progress

    say = log or (lambda _line: None)
    notes: list[str] = []
    # 1. Inputs and ground truth.
    queries, database = _open(options.queries, "queries"), _open(options.database, "database")
    if options.ground_truth is not None:
        truth = read_ground_truth_csv(options.ground_truth, queries.names, queries.files, database.names,
                                      database.files)
    else:
        truth = ground_truth_by_name(queries.names, database.names)
    if not truth.matches:
        raise UserError(f"none of the {queries.frame_count} queries has a match in {options.database} (by "
                        f"{truth.source}); give --ground-truth CSV with query,match rows.")
    if truth.unmatched:
        notes.append(f"{len(truth.unmatched)} of {queries.frame_count} queries have no match in the database "
                     f"(by {truth.source}) and are left out: {_listing(truth.unmatched)}.")
    # 2. Models and the descriptor, before any long work.
    device = resolve_device(options.device)
    models = load_models(options.models, options.runs_dir, device, options.direction)
    weights = find_descriptor_weights(options.weights)
    size = working_size(*database.size, options.max_side, options.min_side)
    describer = Describer(GeMDescriptor(weights), device, size, tuple(database.size), options.batch_size)
    # 3. Database descriptors (cached).
    db_desc, cache_hit = _database_descriptors(database, describer, options, weights, notes)
    # 4. Each method: queries (translated) -> descriptors -> ranking -> recall.
    keep = set(truth.matches)
    order = sorted(keep)
    matches = [truth.matches[q] for q in order]
    results: dict[str, dict[str, float]] = {}
    for method in [None, *models]:
        name = RAW if method is None else method.name
        frames = progress(_selected(queries, keep), total=len(keep), desc=name, unit="img", quiet=options.quiet)
        if method is not None:
            frames = _translated(frames, method.generator, device, options.batch_size)
        q_desc = describer.describe(frames, "queries" if method is None else None)
        if len(q_desc) != len(order):
            raise UserError(f"{options.queries} yielded {len(q_desc)} of the {len(order)} queries to evaluate; "
                            "it is damaged or cut short.")
        results[name] = recall_at_k(rank_database(q_desc, db_desc), matches)
        say(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[name].items()))
    notes.extend(_size_notes(describer, {"database images": database.frame_count, "queries": len(keep)}))
    return RetrievalReport(results=results, queries=len(keep), unmatched=truth.unmatched,
                           database=len(db_desc), size=size, images_per_second=describer.images_per_second,
                           device=str(device), cache_hit=cache_hit, ground_truth=truth.source, notes=notes)


def format_table(report: RetrievalReport) -> str:
    """The recall table (in percent), one row per method, between a line naming the sets and one
    naming the descriptor, its working size and speed."""
    w, h = report.size
    names = list(report.results)
    width = max(len("method"), *(len(n) for n in names))
    lines = [f"{report.queries} queries against {report.database} database images (ground truth: "
             f"{report.ground_truth}); Recall@K in %",
             f"{'method':<{width}}  " + "  ".join(f"{'R@' + str(k):>6}" for k in KS)]
    for name in names:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{100 * report.results[name][f'recall@{k}']:6.1f}"
                                                       for k in KS))
    speed = (f"{report.images_per_second:.1f} images/s on {report.device}"
             if np.isfinite(report.images_per_second) else f"on {report.device}")
    cache = "; database descriptors from the cache" if report.cache_hit else ""
    lines.append(f"descriptor: GeM-pooled VGG16 conv5 (p=3, 512-d) at {w}x{h}, {speed}{cache}")
    return "\n".join(lines)

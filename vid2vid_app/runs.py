"""The runs folder, shared by both jobs: run names, model lookup, listing, and the open / resume /
overwrite policy of a training run.

Layout::

    RUNS/                       --runs-dir, else $VID2VID_RUNS, else ./runs
      .NAME.lock                held by the one process training NAME (pid inside; see fileio.exclusive_lock)
      NAME/                     one run: a `dance train` run (marked by dance_config.json) or a
        model.pt                `translate-video train` run (marked by translate.json)

Rules every training command follows (:func:`open_run`):

* a run name is a plain name: letters, digits, ``.``, ``_``, ``-``, no path separators, not ``.``/``..``;
* an existing run is continued only with ``resume`` and replaced only with ``overwrite``, and only
  when it is a run of the same job (recognised by its marker file); any other folder is refused;
* a replaced run is first moved aside and deleted only once the new run has started (its settings
  and data validated); if the new run fails before that, the old one is put back;
* a folder this command created is removed again when the command fails before any checkpoint,
  so a bad setting never leaves a folder that blocks the retry;
* one writer per run: the lock is held for the whole command; a second process gets a clear
  error, a lock left by a killed process is taken over with a note;
* temp files a killed process left inside the run are removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .fileio import exclusive_lock, remove_stale_temps

RUNS_ENV = "VID2VID_RUNS"
MODEL_FILE = "model.pt"
# The file that marks a run folder as belonging to a job (written first when a run starts).
JOB_MARKERS = {"dance": "dance_config.json", "translate": "translate.json"}
JOB_COMMANDS = {"dance": "dance train", "translate": "translate-video train"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """``path`` (``--runs-dir``), else ``$VID2VID_RUNS``, else ``./runs``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(RUNS_ENV) or "runs")


def check_run_name(name: str) -> str:
    """A run name is a plain folder name; UserError otherwise (so no name can reach outside RUNS)."""
    if not name or not _NAME.fullmatch(name) or name in (".", ".."):
        raise UserError(f"run name {name!r} must be a plain name: letters, digits, '.', '_' or '-', starting "
                        "with a letter or digit (no slashes, not '.' or '..').")
    return name


def run_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """``RUNS/NAME`` for a checked ``name``."""
    return runs_dir(root) / check_run_name(name)


def run_job(folder: Path) -> str | None:
    """The job ("dance" / "translate") whose run ``folder`` is, by its marker file; None otherwise."""
    for job, marker in JOB_MARKERS.items():
        if (folder / marker).is_file():
            return job
    return None


# ------------------------------------------------------------------------------------------------
# Models: lookup and listing


@dataclass(frozen=True)
class ModelRecord:
    """One finished model in the runs folder. ``details`` holds job-specific facts for listings
    (e.g. mode, directions, architecture, training size)."""

    name: str
    path: Path
    job: str | None
    details: dict[str, Any] = field(default_factory=dict)


def list_models(root: str | os.PathLike | None = None, job: str | None = None,
                describe=None) -> list[ModelRecord]:
    """Finished models (``RUNS/*/model.pt``), sorted by name; only ``job``'s when given.

    ``describe(path) -> dict | None`` (optional) reads a model file's details; a None answer drops
    the model (e.g. a file that is not this job's model)."""
    folder = runs_dir(root)
    if not folder.is_dir():
        return []
    records = []
    for model in sorted(folder.glob(f"*/{MODEL_FILE}")):
        owner = run_job(model.parent)
        if job is not None and owner not in (job, None):
            continue
        details = describe(model) if describe is not None else {}
        if details is None:
            continue
        records.append(ModelRecord(model.parent.name, model, owner, dict(details)))
    return records


def resolve_model_path(name_or_path: str | os.PathLike, root: str | os.PathLike | None, job: str,
                       describe=None) -> Path:
    """The model file ``--model`` means: a file, a folder holding model.pt, or a run name in RUNS.

    UserError otherwise: an unfinished run says how to continue it; an unknown name lists the
    ``job``'s models that exist.
    """
    text = str(name_or_path)
    path = Path(text)
    folder = runs_dir(root)
    if path.is_file():
        return path
    if path.is_dir():
        if (path / MODEL_FILE).is_file():
            return path / MODEL_FILE
        raise UserError(f"folder {path} holds no {MODEL_FILE}; is it a finished `{JOB_COMMANDS[job]}` run?")
    is_name = bool(_NAME.fullmatch(text)) and text not in (".", "..") and not text.endswith(".pt")
    if not is_name:
        raise UserError(f"model file {path} does not exist.")
    candidate = folder / text
    if (candidate / MODEL_FILE).is_file():
        return candidate / MODEL_FILE
    if candidate.is_dir():
        raise UserError(f"model {text!r} in {folder} has no {MODEL_FILE} yet (its training has not finished); "
                        f"continue it with `{JOB_COMMANDS[job]} ... --name {text} --runs-dir {folder} --resume`.")
    names = [r.name for r in list_models(folder, job, describe)]
    known = ", ".join(names) if names else "none"
    raise UserError(f"unknown model {text!r}: no {candidate / MODEL_FILE} (models in {folder}: {known}).")


# ------------------------------------------------------------------------------------------------
# Opening a run for training


@dataclass
class RunState:
    """What :func:`open_run` found and did. ``continuing``: an earlier run is resumed;
    ``created``: this command made the folder; ``notes``: lines for the user."""

    folder: Path
    job: str
    continuing: bool
    created: bool
    notes: list[str] = field(default_factory=list)
    _replaced: Path | None = None

    def commit(self) -> None:
        """The new run has started (settings and data validated): delete the run it replaces."""
        if self._replaced is not None:
            shutil.rmtree(self._replaced, ignore_errors=True)
            self._replaced = None


def check_run_folder(folder: Path, job: str, *, resume: bool, overwrite: bool) -> bool:
    """The policy without side effects: True when ``folder`` holds a run of ``job`` to continue
    (``resume``) or replace (``overwrite``); False when it is absent or empty. UserError otherwise."""
    if resume and overwrite:
        raise UserError("--resume continues a run and --overwrite replaces it; give one of them.")
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return False  # a new run (``resume`` of a run that does not exist yet starts it)
    owner = run_job(folder) if folder.is_dir() else None
    if owner != job:
        what = f"a `{JOB_COMMANDS[owner]}` run" if owner else "not a run folder of this tool"
        raise UserError(f"{folder} exists and is {what}; it is left untouched: choose another --name or "
                        f"--runs-dir.")
    if not (resume or overwrite):
        raise UserError(f"run {folder.name!r} already exists in {folder.parent}; pass --resume to continue it "
                        "or --overwrite to start again from scratch.")
    return True


@contextlib.contextmanager
def open_run(folder: Path, job: str, *, resume: bool, overwrite: bool,
             keep_inside: tuple = ()) -> Iterator[RunState]:
    """Open ``folder`` for training ``job`` under the rules in the module doc; yields a
    :class:`RunState`. The caller writes the job's marker file first, calls ``state.commit()`` once
    its data is validated, and trains inside the block (the lock is held until it ends).

    ``keep_inside``: input paths (training data) that must not be deleted by ``overwrite``.
    Only the process that writes the run opens it (rank 0 under torchrun).
    """
    folder = Path(folder)
    notes: list[str] = []
    with exclusive_lock(folder.parent / f".{folder.name}.lock", f"run {folder}", notes=notes):
        _recover_interrupted_replacement(folder, notes)
        exists = check_run_folder(folder, job, resume=resume, overwrite=overwrite)
        state = RunState(folder, job, continuing=exists and resume, created=not folder.exists(), notes=notes)
        if exists and overwrite:
            _refuse_inputs_inside(folder, keep_inside)
            state._replaced = folder.with_name(f".{folder.name}.replaced-{os.getpid()}")
            os.replace(folder, state._replaced)
            state.created = True
        if state.continuing:
            _remove_stale_temps_below(folder, notes)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            yield state
        except Exception:
            _undo(state)
            raise
        except BaseException:
            # Ctrl-C keeps what a new run wrote so far (for --resume), but a run being replaced comes
            # back when the new one was interrupted before its data was checked.
            if state._replaced is not None:
                _undo(state)
            raise
        finally:
            state.commit()


def _has_checkpoint(folder: Path) -> bool:
    return any(folder.glob("**/checkpoints/*.pt"))


def _recover_interrupted_replacement(folder: Path, notes: list[str]) -> None:
    """Finish what a killed ``--overwrite`` left (called with the run's lock held, so no live
    process is replacing it): the run it moved aside, ``.NAME.replaced-PID``, comes back when the
    new run never wrote a checkpoint, and is deleted when it did (the new run had started)."""
    for moved in sorted(folder.parent.glob(f".{folder.name}.replaced-*")):
        if not moved.is_dir():
            continue
        if folder.exists() and _has_checkpoint(folder):
            shutil.rmtree(moved, ignore_errors=True)
            notes.append(f"removed {moved.name}, the run an interrupted --overwrite had replaced.")
            continue
        if folder.exists():
            if run_job(folder) not in (None, run_job(moved)):
                continue  # not the replacement's own folder: leave both alone
            shutil.rmtree(folder)
        os.replace(moved, folder)
        notes.append(f"run {folder.name!r} was being replaced by a process that was killed before the new run "
                     "started; the earlier run is back.")


def _undo(state: RunState) -> None:
    """After a failure: a folder this command created with no checkpoint in it only blocks the
    retry, so it goes (and a run it was replacing comes back)."""
    folder = state.folder
    if state.created and folder.is_dir() and not _has_checkpoint(folder):
        shutil.rmtree(folder, ignore_errors=True)
        if state._replaced is not None and not folder.exists():
            os.replace(state._replaced, folder)
            state._replaced = None
    state.commit()


def _refuse_inputs_inside(folder: Path, inputs: tuple) -> None:
    root = folder.resolve()
    for src in inputs:
        resolved = Path(src).resolve()
        if resolved == root or root in resolved.parents:
            raise UserError(f"{src} lies inside the run folder {folder}; --overwrite would delete training data.")


def _remove_stale_temps_below(folder: Path, notes: list[str]) -> None:
    removed = []
    for sub in [folder, *(p for p in folder.rglob("*") if p.is_dir() and not p.name.startswith("."))]:
        removed += remove_stale_temps(sub)
    if removed:
        notes.append(f"removed {len(removed)} temp file(s) a stopped process left in {folder}.")

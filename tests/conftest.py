"""Shared fixtures: locating ../shared sample media and the bundled samples/.

Tests that need ../shared skip when it is missing on a developer machine, but fail when the
environment variable CI is set (CI always has ../shared beside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

# The suite runs as two pytest-xdist workers on two cores; one compute thread per worker (and per
# subprocess it starts) avoids oversubscription, which makes small CPU training steps many times
# slower. Set before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VID2VID_SHARED", REPO.parent / "shared"))
BUNDLED_SAMPLES = REPO / "samples"


def _require(path: Path) -> Path:
    if not path.exists():
        message = f"{path} is missing (../shared sample data is needed for this test)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder (samples/, weights/)."""
    return _require(SHARED)


@pytest.fixture(scope="session")
def shared_samples(shared_dir) -> Path:
    return _require(shared_dir / "samples")


@pytest.fixture(scope="session")
def shared_weights(shared_dir) -> Path:
    return _require(shared_dir / "weights")


@pytest.fixture(scope="session")
def bundled_samples() -> Path:
    """The small derived demo clips committed under samples/."""
    return _require(BUNDLED_SAMPLES)


@pytest.fixture(autouse=True, scope="session")
def one_compute_thread_per_worker():
    """Holds torch to OMP_NUM_THREADS even if something imported it before this file."""
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

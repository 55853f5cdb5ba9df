"""Progress bars (rate and ETA) for long work; ``quiet=True`` silences them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", quiet: bool = False, **kw) -> tqdm:
    """A tqdm bar on stderr showing count, rate and ETA; disabled when ``quiet``."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True,
                leave=False, **kw)


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    """``count`` and ``word`` in the right number: "1 frame", "2 frames", "0 frames"."""
    return f"{count} {word if count == 1 else (plural_form or word + 's')}"

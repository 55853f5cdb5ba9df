"""Errors the library raises for bad user input.

Library code raises :class:`UserError` with one clear sentence naming the file and what is wrong;
the CLI turns it into a non-zero exit with that message (no traceback).
"""

import re


class UserError(Exception):
    """Bad input or an impossible request, described in one sentence for the user."""


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in a few words for a message.

    PyTorch's own text for a file holding Python objects advises loading with
    ``weights_only=False``, which would run code from the file; users are never told that. Other
    failures (not a PyTorch file at all, a damaged one) keep the exception's first line.
    """
    text = str(exc).strip()
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        match = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        found = f" ({match.group(1)})" if match else ""
        return (f"it holds Python objects{found}, which are never loaded: model and weight files must "
                "hold only tensors and plain data")
    if isinstance(exc, KeyError) or "invalid load key" in text or "zip archive" in text:
        return "not a PyTorch file"
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__

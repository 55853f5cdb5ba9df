"""Background threads around a pipeline: :class:`ThreadedReader` runs any iterator (e.g. decoding)
ahead of its consumer; :class:`ThreadedConsumer` handles items (e.g. encoding) behind their producer."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class ThreadedReader(Generic[T]):
    """Iterate any iterable in a background thread, ``maxsize`` items ahead of the consumer.

    Decoding then overlaps whatever the consumer does with each item (pose detection, a
    generator network). An exception raised by the source is re-raised in the consumer.
    When the consumer stops early (``break``, an exception, or :meth:`close`), the thread is
    told to stop, the source is closed in that thread, and the thread is joined.

    >>> for frame in ThreadedReader(VideoReader("in.mp4")): ...

    ``source`` stays accessible (e.g. ``reader.source.truncated`` after the loop).
    """

    def __init__(self, source: Iterable[T], maxsize: int = 8) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.source = source
        self.maxsize = maxsize
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._items: queue.Queue | None = None  # between start() and iteration

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def _produce(self, items: queue.Queue, iterator: Iterator[T]) -> None:
        def put(item: object) -> bool:
            while not self._stop.is_set():
                try:
                    items.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for item in iterator:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def start(self) -> ThreadedReader[T]:
        """Start the background thread now rather than at the first item (then :meth:`close` the
        reader even if it is never iterated)."""
        if self._thread is not None:
            raise RuntimeError("a ThreadedReader can be iterated only once")
        self._items = queue.Queue(maxsize=self.maxsize)
        iterator = iter(self.source)
        self._thread = threading.Thread(
            target=self._produce, args=(self._items, iterator), name="ThreadedReader", daemon=True
        )
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[T]:
        if self._thread is None or self._items is None:
            self.start()
        items, self._items = self._items, None
        try:
            while True:
                item = items.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the background thread and wait for it (safe to call more than once)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ThreadedReader[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ThreadedConsumer(Generic[T]):
    """Call ``consume(item)`` on each :meth:`put` item in a background thread, at most ``maxsize``
    items waiting (the producer blocks beyond that), in order.

    A failure in ``consume`` is re-raised in the producer at its next :meth:`put` or at
    :meth:`close`; the items still queued after a failure are drained unhandled, so the producer
    never blocks on a dead thread.
    """

    _STOP = object()

    def __init__(self, consume: Callable[[T], None], maxsize: int = 8, name: str = "consumer") -> None:
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self._error is not None:
                continue
            try:
                self._consume(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producer's thread
                self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        self._raise_error()
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every queued item is handled and the thread has ended; re-raise a failure.
        Calling it again only re-raises."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
        self._raise_error()


def prefetch(source: Iterable[T], maxsize: int = 8) -> ThreadedReader[T]:
    """Shorthand for :class:`ThreadedReader`."""
    return ThreadedReader(source, maxsize=maxsize)

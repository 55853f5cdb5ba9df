"""The ``--serve PORT`` output of `dance live`: the newest frames as MJPEG streams over HTTP, with a
small HTML page, served by :mod:`http.server` in background threads.

Paths:

- ``/``: the page (the side-by-side stream, the figures of ``/stats.json`` refreshed every second,
  a button that re-calibrates);
- ``/stream.mjpg``: what the window shows (source | stick figure | result, with the status bar);
- ``/result.mjpg``: the generated frames alone (e.g. a browser source in OBS);
- ``/frame.jpg`` and ``/result.jpg``: the newest frame of each as one JPEG;
- ``/stats.json``: frames in/out/dropped, frames/s and latency so far;
- ``POST /recalibrate``: start a new calibration window.

Each stream is JPEG-encoded once per new frame, and only while somebody is watching: a viewer
thread encodes the frame it is about to send unless another viewer already did. A slow viewer
skips frames rather than queueing them.
"""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from ..errors import UserError

STREAMS = ("stream", "result")
_BOUNDARY = "vid2vidframe"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dance live</title>
<style>
 body { background: #111; color: #ddd; font: 14px sans-serif; margin: 1em; }
 img { max-width: 100%; display: block; margin-bottom: .6em; background: #222; }
 button { font: inherit; } a { color: #8cf; }
</style></head>
<body>
<img id="stream" src="stream.mjpg" alt="source | stick figure | result">
<div><span id="stats">waiting for frames</span>
 <button id="recalibrate" type="button">re-calibrate</button></div>
<p>Streams: <a href="stream.mjpg">side by side</a>, <a href="result.mjpg">result only</a>
 (for OBS: a browser or media source with the result URL).</p>
<script>
const stats = document.getElementById("stats");
document.getElementById("stream").addEventListener("load", (e) => {
  document.body.dataset.frameSize = e.target.naturalWidth + "x" + e.target.naturalHeight;
});
document.getElementById("recalibrate").onclick = () => fetch("recalibrate", {method: "POST"});
async function refresh() {
  try {
    const s = await (await fetch("stats.json")).json();
    const n = (v, digits) => (v == null ? "-" : v.toFixed(digits));
    stats.textContent = `${n(s.fps, 1)} frames/s out, latency p50 ${n(s.latency_ms_p50, 0)} ms, ` +
      `p95 ${n(s.latency_ms_p95, 0)} ms, ${s.frames_dropped} frames dropped`;
  } catch (err) { stats.textContent = "stopped"; }
}
setInterval(refresh, 1000);
</script>
</body></html>
"""


class _Latest:
    """The newest image of one stream and, once asked for, its JPEG (shared by all viewers)."""

    def __init__(self) -> None:
        self.seq = 0
        self.image: np.ndarray | None = None
        self.jpeg: bytes | None = None
        self.jpeg_seq = -1


class FrameServer:
    """MJPEG streams and a page on ``http://host:port/`` (see the module docstring).

    The port is bound when the server is created, so a port in use fails at once with a
    :class:`UserError`; port 0 picks a free one (:attr:`port` tells which). ``stats`` returns the
    dict for ``/stats.json``; ``recalibrate`` is called on ``POST /recalibrate``.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", *, quality: int = 80,
                 stats: Callable[[], dict] | None = None, recalibrate: Callable[[], None] | None = None) -> None:
        self.quality = int(quality)
        self._stats = stats or dict
        self._recalibrate = recalibrate
        self._cond = threading.Condition()
        self._latest = {name: _Latest() for name in STREAMS}
        self._closed = False
        try:
            self._httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is already in use; choose another --serve port "
                                "(or stop the program that uses it).") from None
            if exc.errno == errno.EACCES:
                raise UserError(f"port {port} on {host} needs administrator rights; choose a port above "
                                "1023 for --serve.") from None
            raise UserError(f"cannot serve on {host}:{port}: {(exc.strerror or str(exc)).lower()}.") from None
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> FrameServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="live-serve", daemon=True)
        self._thread.start()
        return self

    def publish(self, name: str, image: np.ndarray) -> None:
        """Make uint8 (H, W, 3) RGB ``image`` the newest frame of stream ``name``."""
        with self._cond:
            latest = self._latest[name]
            latest.image, latest.seq = image, latest.seq + 1
            self._cond.notify_all()

    def close(self) -> None:
        """Stop serving: open streams end, the port is released."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    # --- used by the request handlers --------------------------------------------------------
    def wait_jpeg(self, name: str, after: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """(seq, JPEG) of the newest frame of ``name`` newer than ``after``; waits up to
        ``timeout`` seconds for one. (``after``, None) on timeout, (-1, None) once closed."""
        with self._cond:
            latest = self._latest[name]
            self._cond.wait_for(lambda: self._closed or (latest.seq > after and latest.image is not None), timeout)
            if self._closed:
                return -1, None
            if latest.seq <= after or latest.image is None:
                return after, None
            seq, image = latest.seq, latest.image
            if latest.jpeg_seq == seq:
                return seq, latest.jpeg
        jpeg = encode_jpeg(image, self.quality)  # outside the lock: the pipeline keeps publishing
        with self._cond:
            if latest.jpeg_seq < seq:
                latest.jpeg, latest.jpeg_seq = jpeg, seq
        return seq, jpeg

    def stats_json(self) -> bytes:
        return json.dumps(self._stats()).encode()

    def recalibrate(self) -> bool:
        if self._recalibrate is None:
            return False
        self._recalibrate()
        return True

    @property
    def closed(self) -> bool:
        return self._closed


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def _handler_class(server: FrameServer) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to ``server`` (http.server instantiates one per request)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
            pass  # no access log on the terminal of a live session

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0].lstrip("/")
            if path in ("", "index.html"):
                self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
            elif path == "stats.json":
                self._send(HTTPStatus.OK, server.stats_json(), "application/json")
            elif path in ("frame.jpg", "result.jpg"):
                self._still("stream" if path == "frame.jpg" else "result")
            elif path in ("stream.mjpg", "result.mjpg"):
                self._stream(path.split(".")[0])
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0].lstrip("/") == "recalibrate" and server.recalibrate():
                self._send(HTTPStatus.OK, b"recalibrating\n", "text/plain")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        def _still(self, name: str) -> None:
            seq, jpeg = server.wait_jpeg(name, 0, timeout=5.0)
            if jpeg is None:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", "text/plain")
            else:
                self._send(HTTPStatus.OK, jpeg, "image/jpeg")

        def _stream(self, name: str) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            seq = 0
            try:
                while True:
                    seq, jpeg = server.wait_jpeg(name, seq)
                    if seq < 0:
                        return
                    if jpeg is None:
                        continue
                    self.wfile.write(f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                     f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the viewer went away

    return Handler

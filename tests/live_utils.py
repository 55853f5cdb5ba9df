"""Helpers for the `dance live` tests: reading an MJPEG stream, decoding X window dumps, finding
free ports and the desktop tools (Xvfb, xwd, xdotool, Chromium) the window and page tests use."""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> uint8 (H, W, 3) RGB (AssertionError when they are not a JPEG)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image[..., ::-1]


def read_mjpeg_frames(url: str, count: int = 1, timeout: float = 20.0) -> tuple[str, list[bytes]]:
    """The Content-Type and the first ``count`` JPEG parts of a multipart MJPEG stream, parsed
    from the raw HTTP body (boundary lines, part headers with Content-Length)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        content_type = response.headers["Content-Type"]
        boundary = content_type.split("boundary=", 1)[1].encode()
        parts = []
        while len(parts) < count:
            line = response.readline()
            if not line:
                break
            if line.strip() != b"--" + boundary:
                continue
            headers = {}
            while (header := response.readline().strip()):
                key, value = header.decode().split(":", 1)
                headers[key.strip().lower()] = value.strip()
            parts.append(response.read(int(headers["content-length"])))
    return content_type, parts


def read_xwd(data: bytes) -> np.ndarray:
    """An X window dump (``xwd`` output, 24/32-bit TrueColor ZPixmap) -> uint8 (H, W, 3) RGB."""
    fields = struct.unpack(">25I", data[:100])
    header_size, pixmap_format, depth, width, height = fields[0], fields[2], fields[3], fields[4], fields[5]
    byte_order, bits_per_pixel, bytes_per_line = fields[7], fields[11], fields[12]
    red_mask, green_mask, blue_mask, ncolors = fields[14], fields[15], fields[16], fields[19]
    assert pixmap_format == 2 and bits_per_pixel == 32 and depth >= 24, (pixmap_format, bits_per_pixel, depth)
    offset = header_size + 12 * ncolors
    rows = np.frombuffer(data, np.uint8, count=bytes_per_line * height, offset=offset).reshape(height, bytes_per_line)
    words = rows[:, : 4 * width].copy().view("<u4" if byte_order == 0 else ">u4").reshape(height, width)

    def channel(mask: int) -> np.ndarray:
        shift = (mask & -mask).bit_length() - 1
        return ((words & mask) >> shift).astype(np.uint8)

    return np.stack([channel(red_mask), channel(green_mask), channel(blue_mask)], axis=-1)


def missing_tools(*names: str) -> list[str]:
    return [name for name in names if shutil.which(name) is None]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    return None


@contextlib.contextmanager
def xvfb(width: int = 1280, height: int = 800):
    """A virtual X display (Xvfb) for the block; yields its DISPLAY value."""
    for number in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    display = f":{number}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.1)
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_for_window(title: str, env: dict, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Wait until a window named ``title`` is mapped on ``env["DISPLAY"]`` (fail if ``proc`` ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the program ended before its window appeared: {proc.communicate()}"
        out = subprocess.run(["xwininfo", "-name", title], env=env, capture_output=True, text=True)
        if out.returncode == 0 and "IsViewable" in out.stdout:
            return
        time.sleep(0.5)
    raise AssertionError(f"no window {title!r} within {timeout} s")


@contextlib.contextmanager
def mjpeg_clip_server(frames: list[np.ndarray], fps: float):
    """A stand-in network camera: an HTTP server that sends each client ``frames`` (uint8 RGB) as
    a multipart MJPEG stream at ``fps`` and then closes the connection (a stream that stops).
    Yields the stream's URL."""
    import http.server
    import threading

    jpegs = [cv2.imencode(".jpg", np.ascontiguousarray(f[..., ::-1]))[1].tobytes() for f in frames]

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=cam")
            self.end_headers()
            start = time.perf_counter()
            try:
                for i, jpeg in enumerate(jpegs):
                    time.sleep(max(0.0, start + i / fps - time.perf_counter()))
                    self.wfile.write(b"--cam\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cam.mjpg"
    finally:
        server.shutdown()
        server.server_close()

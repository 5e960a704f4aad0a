"""Frames through OpenCV: ``capture:INDEX`` / ``capture:/dev/videoN`` (a frame grabber on the
C-arm's video output, V4L2) and ``video:PATH`` (a video file or an image sequence such as
``frames/frame_%04d.png``), through the same conversion code.

Frame grabber: asks for 16-bit grey (``Y16``) with RGB conversion off where the card offers it,
a one-frame buffer for latency, and reports every setting the device refused (``refused``).
A grab thread reads the card; when no frame has come for ``STALL_INTERVALS`` frame intervals the
source reports itself stalled (the display shows NO SIGNAL) and after ``RECONNECT_AFTER_S`` it
reopens the device with exponential back-off; the session goes on meanwhile.

Colour frames become grey (ITU-R BT.601 luma, OpenCV's BGR2GRAY); 8-bit values are kept as
they are (0..255) in uint16, 16-bit values unchanged. Pixel spacing is unknown to a video
signal: give it as ``?spacing=0.25`` (mm), else 1 mm is assumed and the description says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import cv2
import numpy as np

from fluoro.errors import SourceError
from fluoro.frame import EndOfStream, Frame, SourceInfo, now_ns

STALL_INTERVALS = 3
RECONNECT_AFTER_S = 2.0
BACKOFF_MAX_S = 30.0
DEFAULT_FPS = 30.0


def to_grey_u16(image: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous uint16 grey frame from whatever OpenCV delivered."""
    if image.ndim == 3:
        image = image[:, :, 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    grey = np.ascontiguousarray(image, dtype=np.uint16)
    grey.flags.writeable = False
    return grey


def _options(url: str, allowed: dict[str, str]) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    target = parts.netloc + parts.path
    if not target:
        raise SourceError(f"{url!r}: expected {parts.scheme}:PATH (or a device index)")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - set(allowed)
    if unknown:
        raise SourceError(f"{url}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                          f"expected {', '.join(allowed)}")
    return target, {**allowed, **options}


def _spacing(url: str, text: str) -> tuple[tuple[float, float], str]:
    if not text:
        return (1.0, 1.0), "pixel spacing unknown: 1 mm assumed"
    try:
        value = float(text)
        if not value > 0:
            raise ValueError
    except ValueError:
        raise SourceError(f"{url}: spacing must be a pixel size in mm, got {text!r}") from None
    return (value, value), f"{value:g} mm pixels"


class _ImageSequence:
    """``frame_%04d.png``-style files read with ``cv2.imread(IMREAD_UNCHANGED)``, so 16-bit
    images keep their 16 bits (OpenCV's own sequence reader converts them to 8-bit colour)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        first = next((i for i in (0, 1) if Path(pattern % i).is_file()), None)
        self.index = first if first is not None else -1

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's name)
        return self.index >= 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        image = cv2.imread(self.pattern % self.index, cv2.IMREAD_UNCHANGED)
        if image is None:
            return False, None
        self.index += 1
        return True, image

    def get(self, prop: int) -> float:
        return 0.0  # frame count and rate: unknown for a pattern

    def release(self) -> None:
        pass


class VideoFile:
    """``video:PATH[?realtime=0|1&spacing=MM]``: every frame of a file, at its own rate or as fast
    as read."""

    def __init__(self, url: str) -> None:
        target, options = _options(url, {"realtime": "1", "spacing": ""})
        is_sequence = "%" in target
        if not is_sequence and not Path(target).is_file():
            raise SourceError(f"{url}: no such video file {target!r}")
        try:
            self._cap = _ImageSequence(target) if is_sequence else cv2.VideoCapture(target)
        except (TypeError, ValueError):
            raise SourceError(f"{url}: {target!r} is not a frame_%04d.png-style pattern") from None
        ok, first = self._cap.read() if self._cap.isOpened() else (False, None)
        if not ok:
            raise SourceError(f"{url}: OpenCV cannot read {target!r} as a video or image "
                              "sequence")
        self.pixel_spacing_mm, spacing_note = _spacing(url, options["spacing"])
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else DEFAULT_FPS
        self.realtime = options["realtime"] == "1"
        frame = to_grey_u16(first)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.info = SourceInfo(url, f"video {target}: {count or '?'} frames, {self.fps:g}/s, "
                               f"{spacing_note}", frame.shape, self.fps, self.pixel_spacing_mm)
        self._pending: np.ndarray | None = frame
        self._seq = 0
        self._t0: float | None = None

    def read(self, timeout_s: float = 0.1) -> Frame | None:
        if self._pending is None:
            ok, image = self._cap.read()
            if not ok:
                raise EndOfStream
            self._pending = to_grey_u16(image)
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic()
            wait_s = self._t0 + self._seq / self.fps - time.monotonic()
            if wait_s > timeout_s:
                time.sleep(timeout_s)
                return None
            if wait_s > 0:
                time.sleep(wait_s)
        frame = Frame(self._pending, self._seq, self._seq / self.fps, now_ns(),
                      self.pixel_spacing_mm)
        self._pending = None
        self._seq += 1
        return frame

    def close(self) -> None:
        self._cap.release()


class FrameGrabber:
    """``capture:INDEX`` or ``capture:/dev/videoN[?spacing=MM&fps=F]``: a live frame grabber.

    ``open_device`` makes the ``cv2.VideoCapture`` (a parameter so tests can give a stand-in:
    there is no video device on a test machine)."""

    def __init__(self, url: str, open_device: Callable[[Any], Any] | None = None) -> None:
        target, options = _options(url, {"spacing": "", "fps": ""})
        self.url = url
        self.device: Any = int(target) if target.isdigit() else target
        self._open_device = open_device or (lambda dev: cv2.VideoCapture(dev, cv2.CAP_V4L2))
        self.pixel_spacing_mm, spacing_note = _spacing(url, options["spacing"])
        self.refused: list[str] = []
        self._cap = self._connect()
        if self._cap is None:
            raise SourceError(f"{url}: cannot open the frame grabber {target!r}")
        fps = float(options["fps"] or self._cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS)
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS
        ok, first = self._cap.read()
        if not ok:
            raise SourceError(f"{url}: the frame grabber opened but gave no frame")
        refused = f"; refused: {', '.join(self.refused)}" if self.refused else ""
        self.info = SourceInfo(url, f"frame grabber {target} at {self.fps:g}/s, {spacing_note}"
                               f"{refused}", to_grey_u16(first).shape, self.fps,
                               self.pixel_spacing_mm)
        self._lock = threading.Condition()
        self._latest: np.ndarray | None = None
        self._seq = 0
        self._last_frame_s = time.monotonic()
        self.reconnects = 0
        self.stalled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._grab, name="fluoro-grabber", daemon=True)
        self._thread.start()

    def _connect(self) -> Any:
        cap = self._open_device(self.device)
        if cap is None or not cap.isOpened():
            return None
        wanted = [(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"Y16 "), "16-bit grey (Y16)"),
                  (cv2.CAP_PROP_CONVERT_RGB, 0, "RGB conversion off"),
                  (cv2.CAP_PROP_BUFFERSIZE, 1, "a one-frame buffer")]
        self.refused = [name for prop, value, name in wanted if not cap.set(prop, value)]
        return cap

    def _grab(self) -> None:
        backoff_s = 0.5
        while not self._stop.is_set():
            ok, image = self._cap.read() if self._cap is not None else (False, None)
            now = time.monotonic()
            if ok:
                with self._lock:
                    self._latest = to_grey_u16(image)
                    self._last_frame_s = now
                    self.stalled = False
                    self._lock.notify_all()
                backoff_s = 0.5
                continue
            self.stalled = now - self._last_frame_s > STALL_INTERVALS / self.fps
            if now - self._last_frame_s > RECONNECT_AFTER_S:
                if self._cap is not None:
                    self._cap.release()
                self._stop.wait(backoff_s)
                self._cap = self._connect()
                self.reconnects += 1
                backoff_s = min(BACKOFF_MAX_S, backoff_s * 2)
            else:
                self._stop.wait(0.5 / self.fps)

    def read(self, timeout_s: float = 0.1) -> Frame | None:
        with self._lock:
            if self._latest is None:
                self._lock.wait(timeout_s)
            if self._latest is None:
                return None
            pixels, self._latest = self._latest, None
        frame = Frame(pixels, self._seq, time.monotonic(), now_ns(), self.pixel_spacing_mm)
        self._seq += 1
        return frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._cap is not None:
            self._cap.release()


def open_video(url: str) -> VideoFile:
    return VideoFile(url)


def open_capture(url: str) -> FrameGrabber:
    return FrameGrabber(url)

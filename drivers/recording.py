"""Recording and replay of a frame stream in the DESIGN.md directory format.

A recording directory holds ``frames.npy`` (uint16, N×H×W), ``frames.jsonl`` (one JSON object
per frame: ``seq``, ``t_s``, ``pixel_spacing_mm`` [row, col], ``exposure`` {Exposure fields} or
null, ``truth`` {``needle_visible``, ``tip_px`` [x, y] or null, ``hub_px``, ``kar_mgy``,
``dap_gycm2``, and, only where several needles are in view, ``others``: [{``tip_px``,
``hub_px``}, ...] besides the active one} or null) and, when the frames carried a noise-free
truth image, ``clean.npy`` (float32, N×H×W). Any program that writes this format can be
replayed (``replay:DIR``), the way PLUS replays its saved data sources as if live.

Recording never slows the live path: ``Recorder.put`` only queues the frame (the acquisition
thread calls it); a writer thread appends chunks and rewrites the ``.npy`` header after each
chunk, so a killed process leaves a readable recording of every chunk written.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import asdict
from itertools import pairwise
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from drivers.url_options import path_and_flags
from fluoro.errors import InputError, SourceError
from fluoro.frame import EndOfStream, Exposure, Frame, NeedleTruth, SourceInfo, Truth, now_ns

HEADER_BYTES = 128  # fixed .npy (version 1.0) header size, so it can be rewritten in place
CHUNK_FRAMES = 16
QUEUE_FRAMES = 128  # 256 MiB of 1024² frames at most


def _npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    body = HEADER_BYTES - 10
    if len(text) + 1 > body:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte header")
    header = (text + " " * (body - len(text) - 1) + "\n").encode("latin-1")
    return b"\x93NUMPY\x01\x00" + body.to_bytes(2, "little") + header


def frame_to_json(frame: Frame) -> dict[str, Any]:
    truth = frame.truth
    return {
        "seq": frame.seq,
        "t_s": frame.t_s,
        "pixel_spacing_mm": list(frame.pixel_spacing_mm),
        "exposure": asdict(frame.exposure) if frame.exposure is not None else None,
        "truth": None if truth is None else {
            "needle_visible": truth.needle_visible,
            "tip_px": list(truth.tip_px) if truth.tip_px is not None else None,
            "hub_px": list(truth.hub_px) if truth.hub_px is not None else None,
            "kar_mgy": truth.kar_mgy,
            "dap_gycm2": truth.dap_gycm2,
            # other needles in view, only when there are any (the format stays as it was)
            **({"others": [{"tip_px": list(n.tip_px),
                            "hub_px": list(n.hub_px) if n.hub_px is not None else None}
                           for n in truth.others]} if truth.others else {}),
        },
    }


def frame_from_json(meta: dict[str, Any], pixels: np.ndarray, clean: np.ndarray | None) -> Frame:
    truth_meta = meta.get("truth")
    truth = None
    if truth_meta is not None:
        tip, hub = truth_meta.get("tip_px"), truth_meta.get("hub_px")
        others = tuple(NeedleTruth(tuple(n["tip_px"]), tuple(n["hub_px"]) if n.get("hub_px")
                                   else None) for n in truth_meta.get("others") or ())
        truth = Truth(bool(truth_meta["needle_visible"]), tuple(tip) if tip else None,
                      tuple(hub) if hub else None, float(truth_meta["kar_mgy"]),
                      float(truth_meta["dap_gycm2"]), clean, others)
    exposure = Exposure(**meta["exposure"]) if meta.get("exposure") else None
    spacing = meta["pixel_spacing_mm"]
    return Frame(pixels, int(meta["seq"]), float(meta["t_s"]), now_ns(),
                 (float(spacing[0]), float(spacing[1])), exposure, truth)


class _ArrayAppender:
    """Appends frames to a .npy file whose header is rewritten with the count after each chunk."""

    def __init__(self, path: Path, dtype: type) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.count = 0
        self.shape: tuple[int, ...] | None = None
        self._file: BinaryIO = path.open("wb")
        self._file.write(_npy_header(self.dtype.str, (0, 0, 0)))

    def append(self, arrays: list[np.ndarray]) -> None:
        if self.shape is None:
            self.shape = arrays[0].shape
        for array in arrays:
            if array.shape != self.shape:
                raise ValueError(f"{self.path}: frame size changed from {self.shape} to "
                                 f"{array.shape}; a recording holds one size")
            self._file.write(np.ascontiguousarray(array, dtype=self.dtype).tobytes())
        self.count += len(arrays)
        self._file.seek(0)
        self._file.write(_npy_header(self.dtype.str, (self.count, *self.shape)))
        self._file.seek(0, 2)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Recorder:
    """Writes frames to ``directory`` on a writer thread; ``put`` never blocks.

    If the disk cannot keep up and the queue fills, frames are left out of the recording and
    counted in ``frames_skipped`` (never silently); the live session is not slowed.
    """

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if any(directory.glob("frames.*")):
                raise InputError(f"{directory}: already holds a recording; choose a new folder")
            self._frames = _ArrayAppender(directory / "frames.npy", np.uint16)
            self._meta = (directory / "frames.jsonl").open("w", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{directory}: cannot record there ({exc.strerror})") from None
        self.directory = directory
        self._clean: _ArrayAppender | None = None
        self._queue: queue.Queue[Frame | None] = queue.Queue(QUEUE_FRAMES)
        self.frames_written = 0
        self.frames_skipped = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._write, name="fluoro-recorder", daemon=True)
        self._thread.start()

    def put(self, frame: Frame, block: bool = False) -> None:
        """Queue ``frame``; live use never blocks (a full queue skips the frame and counts it),
        offline use (converting a stream) may wait with ``block=True``."""
        try:
            self._queue.put(frame, block=block)
        except queue.Full:
            self.frames_skipped += 1

    def close(self) -> None:
        """Write what is queued, then close the files."""
        self._queue.put(None)
        self._thread.join()

    def _write(self) -> None:
        chunk: list[Frame] = []
        while True:
            frame = self._queue.get()
            if frame is not None:
                chunk.append(frame)
            if chunk and (frame is None or len(chunk) >= CHUNK_FRAMES or self._queue.empty()):
                try:
                    self._write_chunk(chunk)
                except (OSError, ValueError) as exc:
                    self.error = self.error or str(exc)
                    self.frames_skipped += len(chunk)
                chunk = []
            if frame is None:
                break
        self._frames.close()
        if self._clean is not None:
            self._clean.close()
        self._meta.close()

    def _write_chunk(self, chunk: list[Frame]) -> None:
        cleans = [f.truth.clean for f in chunk if f.truth is not None and f.truth.clean is not None]
        if len(cleans) == len(chunk) and (self._clean is not None or self.frames_written == 0):
            if self._clean is None:
                self._clean = _ArrayAppender(self.directory / "clean.npy", np.float32)
            self._clean.append(cleans)
        self._frames.append([f.pixels for f in chunk])
        self._meta.write("".join(json.dumps(frame_to_json(f)) + "\n" for f in chunk))
        self._meta.flush()
        self.frames_written += len(chunk)


class ReplaySource:
    """``replay:DIR[?realtime=0|1&loop=0|1]``: a recording played back as if live.

    Pixels and metadata come back bit-exactly; ``t_host_ns`` is the time of replay. With
    ``realtime=1`` frames keep their original spacing in ``t_s``."""

    def __init__(self, directory: Path, url: str, realtime: bool = True,
                 loop: bool = False) -> None:
        try:
            self._pixels = np.load(directory / "frames.npy", mmap_mode="r")
            lines = (directory / "frames.jsonl").read_text(encoding="utf-8").splitlines()
            self._meta = [json.loads(line) for line in lines if line.strip()]
        except FileNotFoundError as exc:
            raise SourceError(f"{url}: not a recording (missing {Path(exc.filename).name}); "
                              "expected frames.npy and frames.jsonl") from None
        except (ValueError, OSError) as exc:
            raise SourceError(f"{url}: unreadable recording ({exc})") from None
        if self._pixels.ndim != 3 or self._pixels.dtype != np.uint16:
            raise SourceError(f"{url}: frames.npy must be uint16 N×H×W, got "
                              f"{self._pixels.dtype} {self._pixels.shape}")
        clean_path = directory / "clean.npy"
        self._clean = np.load(clean_path, mmap_mode="r") if clean_path.exists() else None
        self.count = min(len(self._meta), self._pixels.shape[0])
        if self.count == 0:
            raise SourceError(f"{url}: the recording holds no frames")
        first = self._meta[0]
        dt = sorted(b["t_s"] - a["t_s"] for a, b in pairwise(self._meta[:self.count]))
        positive = [d for d in dt if d > 0]
        fps = 1.0 / positive[len(positive) // 2] if positive else None
        _, h, w = self._pixels.shape
        spacing = first["pixel_spacing_mm"]
        self.info = SourceInfo(url, f"recording {directory} ({self.count} frames)", (h, w), fps,
                               (float(spacing[0]), float(spacing[1])),
                               has_truth=first.get("truth") is not None)
        self.realtime, self.loop = realtime, loop
        self._index = 0
        self._t0: tuple[float, float] | None = None

    def read(self, timeout_s: float = 0.1) -> Frame | None:
        if self._index >= self.count:
            if not self.loop:
                raise EndOfStream
            self._index, self._t0 = 0, None
        meta = self._meta[self._index]
        if self.realtime:
            if self._t0 is None:
                self._t0 = (time.monotonic(), float(meta["t_s"]))
            wait_s = self._t0[0] + float(meta["t_s"]) - self._t0[1] - time.monotonic()
            if wait_s > timeout_s:
                time.sleep(timeout_s)
                return None
            if wait_s > 0:
                time.sleep(wait_s)
        pixels = np.array(self._pixels[self._index])
        pixels.flags.writeable = False
        clean = np.array(self._clean[self._index]) if self._clean is not None else None
        self._index += 1
        return frame_from_json(meta, pixels, clean)

    def close(self) -> None:
        pass


def open_replay(url: str) -> ReplaySource:
    """Open ``replay:DIR[?realtime=0|1&loop=0|1]`` (raises ``SourceError`` naming the URL)."""
    directory, flags = path_and_flags(url, {"realtime": True, "loop": False})
    if not directory.is_dir():
        raise SourceError(f"{url}: no such recording folder {str(directory)!r}")
    return ReplaySource(directory, url, **flags)

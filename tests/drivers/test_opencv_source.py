"""video: and capture: through OpenCV. Video files and image sequences are real files written by
OpenCV here; a V4L2 frame grabber cannot exist on a test machine, so the grabber tests give the
driver a stand-in device object (the one thing mocked) with the cv2.VideoCapture methods it uses."""

import time

import cv2
import numpy as np
import pytest
from conftest import run_fluoro

from drivers import open_source
from drivers.opencv_source import FrameGrabber
from fluoro.errors import SourceError
from fluoro.frame import EndOfStream


def _write_video(path, count=25, size=(96, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(count):
        image = np.full((size[1], size[0], 3), 40 + 8 * i, np.uint8)
        cv2.circle(image, (10 + 3 * i, 32), 6, (250, 250, 250), -1)
        writer.write(image)
    writer.release()


def test_fluoro_run_plays_every_frame_of_a_video_written_by_opencv(tmp_path):
    clip = tmp_path / "clip.mp4"
    _write_video(clip, 25)
    result = run_fluoro("run", "--headless", "--source", f"video:{clip}",
                        "--dose-log", str(tmp_path / "d.sqlite"))
    assert result.returncode == 0, result.stderr
    assert "25 frames received" in result.stdout


def test_an_image_sequence_plays_as_grey_frames(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"frame_{i:04d}.png"), np.full((20, 30), 1000 * i, np.uint16))
    source = open_source(f"video:{tmp_path}/frame_%04d.png?realtime=0&spacing=0.25")
    frames = []
    while True:
        try:
            frames.append(source.read())
        except EndOfStream:
            break
    assert [int(f.pixels[0, 0]) for f in frames] == [0, 1000, 2000, 3000, 4000]
    assert frames[0].pixel_spacing_mm == (0.25, 0.25) and frames[0].pixels.dtype == np.uint16


@pytest.mark.parametrize(("url_tail", "words"), [
    ("missing.mp4", ["no such video file"]),
    ("clip.mp4?spacing=-1", ["spacing"]),
    ("clip.mp4?zoom=2", ["zoom"]),
])
def test_bad_video_urls(tmp_path, url_tail, words):
    _write_video(tmp_path / "clip.mp4", 3)
    with pytest.raises(SourceError) as info:
        open_source(f"video:{tmp_path}/{url_tail}")
    assert all(w in str(info.value) for w in words)


class StandInDevice:
    """Behaves like cv2.VideoCapture on a grabber: refuses Y16, delivers ``frames`` frames, then
    nothing (the C-arm's video output was unplugged). Frame ``i`` (from 1) of the ``n``-th device
    opened has the grey value ``100 * n + i``, so a test knows which device sent what."""

    opened_count = 0

    def __init__(self, frames):
        StandInDevice.opened_count += 1
        self.number = StandInDevice.opened_count
        self.sent = 0
        self.frames = frames

    def isOpened(self):  # noqa: N802 (OpenCV's name)
        return True

    def set(self, prop, value):
        return prop != cv2.CAP_PROP_FOURCC

    def get(self, prop):
        return 50.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.frames <= 0:
            time.sleep(0.01)
            return False, None
        self.frames -= 1
        self.sent += 1
        time.sleep(0.02)
        return True, np.full((8, 8, 3), 100 * self.number + self.sent, np.uint8)

    def release(self):
        pass


def test_a_grabber_that_stops_is_stalled_then_reconnected(monkeypatch):
    # the device is reopened >= 0.5 s + 0.5 s (first back-off) after its last frame; a stall
    # shows after 3 frame intervals (60 ms)
    monkeypatch.setattr("drivers.opencv_source.RECONNECT_AFTER_S", 0.5)
    StandInDevice.opened_count = 0
    grabber = FrameGrabber("capture:0", open_device=lambda dev: StandInDevice(5))
    try:
        assert "refused: 16-bit grey (Y16)" in grabber.info.description
        # the first device's frames 2..5 (the opening took frame 1); only the latest frame is
        # kept, so one may be overwritten if this thread is slow, but never the last one
        values = []
        quiet = False  # a read came back empty while the grabber said it was stalled
        deadline = time.monotonic() + 5
        while not quiet and time.monotonic() < deadline:
            frame = grabber.read(0.2)
            if frame is not None:
                values.append(int(frame.pixels[0, 0]))
            quiet = frame is None and grabber.stalled
        assert quiet, f"the grabber never reported the lost signal; got {values}"
        assert StandInDevice.opened_count == 1  # stalled well before the reopening
        assert values and values[-1] == 105 and values == sorted(set(values)), values
        assert set(values) <= {102, 103, 104, 105}, values
        # until the second device opens: no frame (none is invented or handed out twice), and
        # the grabber says stalled; `stalled` is read before the count, so it was read while
        # only the dead device existed
        empty_reads = 0
        deadline = time.monotonic() + 10
        while StandInDevice.opened_count < 2 and time.monotonic() < deadline:
            frame = grabber.read(0.1)
            stalled = grabber.stalled
            if StandInDevice.opened_count < 2:
                assert frame is None, int(frame.pixels[0, 0])
                assert stalled
                empty_reads += 1
        assert StandInDevice.opened_count >= 2, "the grabber never reconnected"
        assert empty_reads >= 1  # there is time for several before the reopening
        # the new connection delivers again
        deadline = time.monotonic() + 5
        frame = None
        while frame is None and time.monotonic() < deadline:
            frame = grabber.read(0.2)
        assert frame is not None and frame.pixels.shape == (8, 8)
        assert 201 <= int(frame.pixels[0, 0]) <= 205  # from the second device
        assert grabber.reconnects == 1  # counted before the new device is read
    finally:
        grabber.close()


def test_a_grabber_that_cannot_open_is_refused():
    class Closed(StandInDevice):
        def isOpened(self):  # noqa: N802
            return False

    with pytest.raises(SourceError, match="cannot open the frame grabber"):
        FrameGrabber("capture:3", open_device=lambda dev: Closed(0))

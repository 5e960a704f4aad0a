"""The live window, offscreen, with real widgets, a real pipeline and a real SQLite dose log."""

import dataclasses
import time

import cv2
import numpy as np
import pytest
from conftest import make_frames
from PySide6 import QtCore, QtGui, QtWidgets

from fluoro.dose.alarms import AlarmConfig, AlarmLevel
from fluoro.dose.siteconfig import load_site_config
from fluoro.doselog import DoseLog, ProcedureInfo
from fluoro.frame import EndOfStream, SourceInfo
from fluoro.imaging.needle_result import NeedleResult
from fluoro.session.engine import DoseEngine
from fluoro.stream.pipeline import Pipeline
from fluoro.stream.prerendered import PrerenderedSource
from ui.live_window import LiveWindow

INFO = SourceInfo("test://frames", "synthetic", (32, 32), 30.0, (0.25, 0.25))


KNOWN_NEEDLE = NeedleResult(
    True, 0.9, tip_px=(20.0, 16.0), hub_px=(4.0, 16.0), angle_deg=0.0,
    trajectory_end_px=(140.0, 16.0), trajectory_mm=30.0, pixel_spacing_mm=(0.25, 0.25))


class FakeTracker:
    """Puts a known result into each frame's results (the real tracker has its own tests) and
    notes the target each frame came with."""

    name = "track"

    def __init__(self, result=KNOWN_NEEDLE):
        self.result = result
        self.targets_seen = []

    def warm_up(self, shape):
        pass

    def reset(self):
        pass

    def __call__(self, item):
        self.targets_seen.append(item.target_px)
        item.results["track"] = self.result


def _window(qtbot, tmp_path, frames, stages=(), site=None, fps=30.0, source=None):
    log = DoseLog.create_or_open(tmp_path / "dose.sqlite")
    engine = DoseEngine(site or load_site_config(None), log, ProcedureInfo(None))
    pipe = Pipeline(source or PrerenderedSource(frames, INFO, fps), stages, engine)
    window = LiveWindow(pipe, engine, operator="Dr. Chen", reference_point="IEC 60601-2-43",
                        snapshot_dir=tmp_path)
    qtbot.addWidget(window)
    window.resize(900, 600)
    window.show()
    pipe.start()
    window.start()
    return window, engine, log


def _drag(view, start, end):
    """A left-button drag in the view's viewport, as a hand on the mouse makes it."""
    viewport = view.viewport()
    button = QtCore.Qt.MouseButton.LeftButton
    no_mod = QtCore.Qt.KeyboardModifier.NoModifier

    def send(kind, pos, buttons):
        point = QtCore.QPointF(*pos)
        event = QtGui.QMouseEvent(kind, point, viewport.mapToGlobal(point), button, buttons,
                                  no_mod)
        QtWidgets.QApplication.sendEvent(viewport, event)

    send(QtCore.QEvent.Type.MouseButtonPress, start, button)
    for i in range(1, 11):
        pos = (start[0] + (end[0] - start[0]) * i / 10, start[1] + (end[1] - start[1]) * i / 10)
        send(QtCore.QEvent.Type.MouseMove, pos, button)
    send(QtCore.QEvent.Type.MouseButtonRelease, end, QtCore.Qt.MouseButton.NoButton)


def test_window_level_drag_invert_and_reset(qtbot, tmp_path):
    window, _, _ = _window(qtbot, tmp_path, make_frames("1" * 30))
    qtbot.waitUntil(lambda: window.frames_shown >= 6, timeout=10000)
    before = window.live.levels
    centre = window.live.rect().center()
    _drag(window.live, (centre.x(), centre.y()), (centre.x() + 120, centre.y() + 60))
    after = window.live.levels
    assert after != before
    assert after[1] - after[0] > before[1] - before[0]  # dragging right widens the window
    qtbot.keyClick(window, QtCore.Qt.Key.Key_I)
    assert window.live.inverted and window.live.image_item.lut[0][0] == 255
    qtbot.keyClick(window, QtCore.Qt.Key.Key_R)
    assert window.live.levels == window.live.default_levels


def test_pin_and_load_reference(qtbot, tmp_path):
    window, _, _ = _window(qtbot, tmp_path, make_frames("1" * 20))
    qtbot.waitUntil(lambda: window.frames_shown >= 10, timeout=10000)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Space)
    assert np.array_equal(window.reference.image, window.live.image)
    assert "pinned" in window.reference.title.textItem.toPlainText()
    png = tmp_path / "lateral.png"
    cv2.imwrite(str(png), np.full((40, 50), 2000, np.uint16))
    window.load_reference(png)
    assert window.reference.image.shape == (40, 50) and "lateral.png" in (
        window.reference.title.textItem.toPlainText())
    with pytest.raises(ValueError, match="not an image"):
        (tmp_path / "junk.png").write_text("junk")
        window.load_reference(tmp_path / "junk.png")


def test_target_click_gives_the_tip_to_target_distance(qtbot, tmp_path):
    tracker = FakeTracker()
    window, _, _ = _window(qtbot, tmp_path, make_frames("1" * 90), stages=[tracker])
    qtbot.waitUntil(lambda: window.overlay.visible, timeout=10000)
    assert window.pipe.target_px is None and tracker.targets_seen[0] is None
    window.set_target(20.0, 28.0)  # 12 px below the tip at 0.25 mm/px
    qtbot.waitUntil(lambda: window.tip_to_target_mm is not None, timeout=10000)
    assert window.tip_to_target_mm == pytest.approx(3.0)
    assert window.overlay.target_label.textItem.toPlainText() == "3.0 mm"
    # the target reaches the stages through the pipeline, from the processing thread
    assert window.pipe.target_px == (20.0, 28.0)
    qtbot.waitUntil(lambda: tracker.targets_seen[-1] == (20.0, 28.0), timeout=10000)


def test_an_unsure_needle_is_dashed_without_path_or_distance_and_others_are_faint(
        qtbot, tmp_path):
    other = NeedleResult(True, 0.8, tip_px=(10.0, 25.0), hub_px=(2.0, 30.0), angle_deg=150.0)
    unsure = NeedleResult(True, 0.6, tip_px=(20.0, 16.0), hub_px=(4.0, 16.0), angle_deg=0.0,
                          trajectory_end_px=(140.0, 16.0), trajectory_mm=30.0,
                          pixel_spacing_mm=(0.25, 0.25), others=(other,))
    window, _, _ = _window(qtbot, tmp_path, make_frames("1" * 60), stages=[FakeTracker(unsure)])
    window.set_target(20.0, 28.0)
    qtbot.waitUntil(lambda: window.overlay.visible, timeout=10000)
    assert window.overlay.state == "unsure"
    assert window.overlay.shaft.isVisible() and not window.overlay.trajectory.isVisible()
    assert window.overlay.shaft.opts["pen"].style() == QtCore.Qt.PenStyle.DashLine
    assert window.tip_to_target_mm is None  # no distance from a doubtful line
    assert window.overlay.others.isVisible()
    assert window.needle_label.isVisible() and window.needle_label.text() == "NEEDLE UNSURE"


def test_no_needle_is_said_plainly_and_nothing_of_it_is_drawn(qtbot, tmp_path):
    window, _, _ = _window(qtbot, tmp_path, make_frames("1" * 60),
                           stages=[FakeTracker(NeedleResult(False, 0.2))])
    qtbot.waitUntil(lambda: window.needle_label.isVisible(), timeout=10000)
    assert window.needle_label.text() == "NEEDLE NOT FOUND"
    assert window.overlay.state == "not found" and not window.overlay.shaft.isVisible()
    assert not window.overlay.trajectory.isVisible() and not window.overlay.others.isVisible()


def test_an_alarm_beeps_shows_and_is_acknowledged_into_the_log(qtbot, tmp_path):
    level = AlarmLevel("notification", "kar_mgy", first=0.05)
    site = dataclasses.replace(load_site_config(None), alarms=AlarmConfig(levels=(level,)))
    window, engine, log = _window(qtbot, tmp_path, make_frames("1" * 30), site=site)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10000)
    assert window.banner.beeps == 1 and "NCRP" in window.banner.text.text()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert not engine.alarms.active()
    window.close()
    engine.close()
    (alarm,) = log.alarms(engine.procedure_uid)
    assert [a.user for a in alarm.acks] == ["Dr. Chen"]


class StallingSource:
    """Frames, then silence for ``stall_s``, then frames again."""

    info = INFO

    def __init__(self, stall_s):
        self.frames = make_frames("1" * 20)
        self.stall_s = stall_s
        self.i = 0
        self.stall_until = None

    def read(self, timeout_s=0.1):
        if self.i >= len(self.frames):
            raise EndOfStream
        if self.i == 10 and self.stall_until is None:
            self.stall_until = time.monotonic() + self.stall_s
        if self.stall_until is not None and time.monotonic() < self.stall_until:
            time.sleep(timeout_s)
            return None
        time.sleep(1 / 30)
        frame = dataclasses.replace(self.frames[self.i], t_host_ns=time.monotonic_ns())
        self.i += 1
        return frame

    def close(self):
        pass


def test_a_stalled_source_shows_no_signal_and_recovers(qtbot, tmp_path):
    source = StallingSource(stall_s=2.0)
    window, _, _ = _window(qtbot, tmp_path, [], source=source)
    qtbot.waitUntil(lambda: window.state_label.isVisible()
                    and window.state_label.text() == "NO SIGNAL", timeout=10000)
    assert not window.overlay.visible
    qtbot.waitUntil(lambda: source.i > 12 and not window.state_label.isVisible(), timeout=10000)


class PedalUp(PrerenderedSource):
    """A C-arm whose pedal is released after the last frame: the stream stays open, silent."""

    def read(self, timeout_s=0.1):
        try:
            return super().read(timeout_s)
        except EndOfStream:
            time.sleep(timeout_s)
            return None


def test_beam_off_shows_last_image_hold_not_no_signal(qtbot, tmp_path):
    source = PedalUp(make_frames("1" * 10 + "0"), INFO, 30.0)
    window, _, _ = _window(qtbot, tmp_path, [], source=source)
    qtbot.waitUntil(lambda: window.state_label.isVisible() and window.state_label.text() == "LIH",
                    timeout=10000)
    qtbot.wait(1500)  # silence with the beam off is not a stalled source
    assert window.state_label.text() == "LIH"


def test_snapshot_writes_png_and_dicom_secondary_capture(qtbot, tmp_path):
    import pydicom

    window, _, _ = _window(qtbot, tmp_path, make_frames("1" * 10), stages=[FakeTracker()])
    qtbot.waitUntil(lambda: window.frames_shown >= 3, timeout=10000)
    png, dcm = window.snapshot()
    assert cv2.imread(str(png)) is not None
    ds = pydicom.dcmread(dcm)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.pixel_array.shape == (32, 32)


def test_a_failed_dose_log_cannot_be_missed(qtbot, tmp_path):
    source = PedalUp(make_frames("1" * 40), INFO, 30.0)
    window, engine, _ = _window(qtbot, tmp_path, [], source=source)
    qtbot.waitUntil(lambda: window.frames_shown >= 3, timeout=10000)
    for suffix in ("", "-wal", "-shm"):  # the log file disappears mid-procedure
        (tmp_path / f"dose.sqlite{suffix}").unlink(missing_ok=True)
    qtbot.waitUntil(lambda: window.dose_panel.failed.isVisible(), timeout=10000)
    assert "DOSE LOG FAILED" in window.dose_panel.failed.text()
    frames_then, pulses_then = window.frames_shown, engine.totals().pulses
    qtbot.waitUntil(lambda: window.frames_shown > frames_then + 3, timeout=10000)  # imaging goes on
    assert engine.totals().pulses > pulses_then  # and so does dose accounting, in memory
    assert window.dose_panel.failed.isVisible()

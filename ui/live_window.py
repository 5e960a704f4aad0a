"""The live guidance window: live image with needle overlay, reference pane, dose panel, alarms.

Threading (DESIGN.md): the pipeline's threads never touch Qt. A QTimer on the GUI thread polls
the pipeline's latest-result slot and the dose totals, and draws only when a new result is
there. Keys: space pin reference, I invert, R reset window/level, A acknowledge, F full screen,
S snapshot, H hide/show reference, O open a reference image, +/- zoom.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from fluoro.dose.accumulator import DoseTotals
from fluoro.dose.alarms import Acknowledgement
from fluoro.imaging.preview import display_window
from fluoro.session.engine import DoseEngine
from fluoro.stream.pipeline import Pipeline, PipelineStats, signal_state
from fluoro.stream.stats import RateMeter
from ui.alarm_banner import AlarmBanner
from ui.dose_panel import DosePanel
from ui.image_view import FluoroView
from ui.overlay import NeedleOverlay
from ui.reference import load_reference_image, write_snapshot

POLL_MS = 5
# The default window/level is taken once, from this frame, when the automatic brightness control
# has settled; it is never re-derived per frame (R returns to it).
LEVELS_FROM_FRAME = 5
BIG_LABEL = "font-size: 28pt; font-weight: 800; color: {colour}; background: rgba(0,0,0,140);"
SMALL_LABEL = ("font-size: 16pt; font-weight: 700; color: {colour}; "
               "background: rgba(0,0,0,140);")


class LiveWindow(QtWidgets.QMainWindow):
    """The window over a running ``pipe``; ``engine`` gives the alarms and takes the
    acknowledgements (None: no alarms, as in the display benchmark)."""

    closed = QtCore.Signal()

    def __init__(self, pipe: Pipeline, engine: DoseEngine | None, *, operator: str = "",
                 reference_point: str = "", prior_text: str = "", title: str = "fluoro",
                 snapshot_dir: Path | None = None) -> None:
        super().__init__()
        self.pipe = pipe
        self.engine = engine
        self.operator = operator or "operator"
        self.snapshot_dir = snapshot_dir or Path.cwd()
        self.setWindowTitle(title)
        self.live = FluoroView("LIVE")
        self.reference = FluoroView("REFERENCE")
        self.overlay = NeedleOverlay(self.live.view)
        self.live.clicked.connect(self.set_target)
        self.state_label = QtWidgets.QLabel("", self.live)
        self.state_label.move(12, 40)
        self.state_label.setVisible(False)
        self.needle_label = QtWidgets.QLabel("", self.live)  # NEEDLE NOT FOUND / UNSURE
        self.needle_label.move(12, 96)
        self.needle_label.setVisible(False)
        self.dose_panel = DosePanel(reference_point, prior_text)
        self.banner = AlarmBanner(self.acknowledge)
        splitter = QtWidgets.QSplitter()
        splitter.addWidget(self.live)
        splitter.addWidget(self.reference)
        splitter.setSizes([3, 2])
        body = QtWidgets.QHBoxLayout()
        body.addWidget(splitter, 1)
        body.addWidget(self.dose_panel)
        central = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(central)
        column.addWidget(self.banner)
        column.addLayout(body, 1)
        self.setCentralWidget(central)
        self.setStyleSheet("QMainWindow { background: #0c0e10; } QStatusBar { color: #d0d0d0; }")
        self._version = 0
        self._first = True
        self._display_rate = RateMeter()
        self.frames_shown = 0
        self.tip_to_target_mm: float | None = None
        self._bind_keys()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)

    # -- polling (GUI thread) ------------------------------------------------------------------

    def start(self) -> None:
        self.timer.start()

    def poll(self) -> None:
        result, version = self.pipe.latest()
        stats = self.pipe.stats()
        if result is not None and version != self._version:
            self._version = version
            if self._first or self.frames_shown + 1 == LEVELS_FROM_FRAME:
                self.live.set_default_levels(display_window(result.image))
                self.reference.set_default_levels(self.live.default_levels)
            self.live.set_image(result.image, first=self._first)
            if self._first and self.reference.image is None:  # the session's first image
                self.pin_reference("first image")
            self._first = False
            track = result.results.get("track")
            self.tip_to_target_mm = self.overlay.update(track)
            self._show_needle_state(track is not None and not result.lih)
            self._display_rate.tick()
            self.frames_shown += 1
        self._show_state(stats)
        self._show_dose(stats.dose)
        self._show_status(stats)

    def _show_state(self, stats: PipelineStats) -> None:
        state = signal_state(stats)
        text, colour = {"NO SIGNAL": ("NO SIGNAL", "#ff4040"),
                        "BEAM OFF (LIH)": ("LIH", "#ffd040")}.get(state, ("", ""))
        self.state_label.setText(text)
        self.state_label.setStyleSheet(BIG_LABEL.format(colour=colour or "white"))
        self.state_label.adjustSize()
        self.state_label.setVisible(bool(text))
        if state == "NO SIGNAL":
            self.overlay.hide()  # never a stale needle line over a frozen image
            self.needle_label.setVisible(False)

    def _show_needle_state(self, tracking: bool) -> None:
        """Say plainly when the needle is not found or not sure (tracking runs, beam on)."""
        text, colour = {"not found": ("NEEDLE NOT FOUND", "#ffb040"),
                        "unsure": ("NEEDLE UNSURE", "#ffd040")}.get(self.overlay.state, ("", ""))
        text = text if tracking else ""
        self.needle_label.setText(text)
        self.needle_label.setStyleSheet(SMALL_LABEL.format(colour=colour or "white"))
        self.needle_label.adjustSize()
        self.needle_label.setVisible(bool(text))

    def _show_dose(self, totals: DoseTotals) -> None:
        self.dose_panel.show_totals(totals)
        if self.engine is not None:
            self.banner.show_alarms(self.engine.take_new_alarms(), self.engine.alarms.active())

    def _show_status(self, stats: PipelineStats) -> None:
        lat = stats.latency_ms
        fps = self.pipe.source.info.nominal_fps
        self.statusBar().showMessage(
            f"{self.pipe.source.info.url}   pulse rate {fps or 0:g}/s   "
            f"display {self._display_rate.rate_hz():.0f} fps   "
            f"latency p50 {lat['p50'] if lat else 0:.1f} ms p99 {lat['p99'] if lat else 0:.1f} ms"
            f"   dropped {stats.frames_dropped}   frames {stats.frames_received}")

    # -- actions -------------------------------------------------------------------------------

    def set_target(self, x_px: float, y_px: float) -> None:
        """The planned target (x, y) px: drawn here, and handed to the stages through the
        pipeline (the tracker reports the tip-to-target distance too)."""
        self.overlay.set_target((x_px, y_px))
        self.pipe.set_target((x_px, y_px))

    def acknowledge(self) -> list[Acknowledgement]:
        if self.engine is None:
            return []
        acks = self.engine.acknowledge(self.operator)
        self.banner.show_alarms([], self.engine.alarms.active())
        return acks

    def pin_reference(self, why: str = "pinned") -> None:
        if self.live.image is not None:
            self.reference.set_image(np.array(self.live.image), first=True)
            self.reference.title.setText(f"REFERENCE ({why} {time.strftime('%H:%M:%S')})")
            self.reference.setVisible(True)

    def load_reference(self, path: str | Path) -> None:
        image = load_reference_image(Path(path))
        self.reference.set_default_levels(display_window(image))
        self.reference.set_image(image, first=True)
        self.reference.title.setText(f"REFERENCE {Path(path).name}")
        self.reference.setVisible(True)

    def choose_reference(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Reference image", str(self.snapshot_dir),
            "Images (*.dcm *.png *.tif *.tiff);;All files (*)")
        if path:
            try:
                self.load_reference(path)
            except ValueError as exc:
                self.statusBar().showMessage(str(exc), 10000)

    def toggle_invert(self) -> None:
        self.live.set_inverted(not self.live.inverted)
        self.reference.set_inverted(self.live.inverted)

    def reset_levels(self) -> None:
        self.live.reset_levels()
        self.reference.reset_levels()
        self.live.fit()

    def toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def snapshot(self) -> list[Path]:
        stem = self.snapshot_dir / f"fluoro-snapshot-{time.strftime('%Y%m%d-%H%M%S')}"
        paths = write_snapshot(self.live.grab(), self.live.image, stem)
        self.statusBar().showMessage(f"snapshot saved: {', '.join(map(str, paths))}", 5000)
        return paths

    def _bind_keys(self) -> None:
        bindings: list[tuple[str, Callable[[], object]]] = [
            ("Space", self.pin_reference), ("I", self.toggle_invert), ("R", self.reset_levels),
            ("A", self.acknowledge), ("F", self.toggle_fullscreen), ("S", self.snapshot),
            ("H", lambda: self.reference.setVisible(not self.reference.isVisible())),
            ("O", self.choose_reference), ("+", lambda: self.live.zoom(1.25)),
            ("-", lambda: self.live.zoom(0.8)),
        ]
        for key, action in bindings:
            shortcut = QtGui.QShortcut(QtGui.QKeySequence(key), self)
            shortcut.activated.connect(action)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        self.timer.stop()
        self.pipe.stop()
        self.closed.emit()
        super().closeEvent(event)

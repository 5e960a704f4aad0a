"""Run a live session in the window: what ``fluoro run`` does with an open ``Session`` when
there is a display (or when ``--screenshot`` asks for an offscreen rendering)."""

from __future__ import annotations

import time
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from fluoro.session.session import Session
from fluoro.stream.pipeline import PipelineStats
from ui.live_window import LiveWindow

SCREENSHOT_SIZE = (1600, 960)


def application(name: str = "fluoro") -> QtWidgets.QApplication:
    """The process's Qt application (made on first use)."""
    return pg.mkQApp(name)


def run_window(session: Session, *, seconds: float | None = None,
               screenshot: Path | None = None, close_when_done: bool = False,
               ) -> tuple[PipelineStats, float]:
    """Open the live window on the open ``session`` until it is closed (or, with
    ``screenshot`` or ``close_when_done``, until the pipeline ends; ``seconds`` bounds the
    session). Returns the pipeline's final statistics and the wall time, s.

    With ``screenshot``, the window is rendered to that PNG once the pipeline has ended."""
    pipe, engine = session.pipeline, session.engine
    if pipe is None or engine is None:
        raise RuntimeError("run_window: the session is not open")
    app = application()
    name = session.config.procedure_name
    window = LiveWindow(pipe, engine, operator=session.config.operator,
                        reference_point=session.config.site.reference_point,
                        prior_text=session.prior_text,
                        title=f"fluoro — {name or 'live guidance'}")
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    t0 = time.monotonic()
    pipe.start()
    window.start()
    watcher = QtCore.QTimer(window)

    def check() -> None:
        over_time = seconds is not None and time.monotonic() - t0 >= seconds
        if over_time:
            pipe.stop()
        if (screenshot is not None or close_when_done or over_time) and not pipe.running:
            window.poll()  # the last result, drawn before the picture is taken
            app.processEvents()
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                if not window.grab().save(str(screenshot)):
                    raise OSError(f"{screenshot}: could not write the screenshot")
            window.close()

    watcher.timeout.connect(check)
    watcher.start(50)
    app.exec()
    pipe.stop()
    stats, wall_s = pipe.stats(), time.monotonic() - t0
    # Tear the widgets down now, on the GUI thread, not during interpreter shutdown (where
    # PySide6 and pyqtgraph may free Qt objects in the wrong order and abort the process).
    watcher.stop()
    window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    app.processEvents()
    return stats, wall_s

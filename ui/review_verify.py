"""The review window's check of the dose log's hash chain (``fluoro.doselog.verify``), and the
banner that shows its outcome: green with the row count and anchor when the log is intact, red
naming the first altered or missing row when it is not.

``run`` checks here and now; ``start`` checks on a worker thread (a long log takes a while) that
never touches Qt, and a GUI-thread timer picks up the result and emits ``reported``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from fluoro.doselog import VerifyReport, verify
from fluoro.errors import InputError

__all__ = ["FAILED_STYLE", "OK_STYLE", "VerifyBanner"]

POLL_MS = 50
_BANNER = "font-size: 14pt; font-weight: {weight}; color: white; background: {colour}; " \
          "padding: 6px 10px;"
OK_STYLE = _BANNER.format(weight=600, colour="#1d6b35")
RUNNING_STYLE = _BANNER.format(weight=600, colour="#2a3a4a")
FAILED_STYLE = _BANNER.format(weight=700, colour="#b00020") + " border: 2px solid yellow;"


class VerifyBanner(QtWidgets.QLabel):
    """Hidden until a check has run. ``reported`` carries each finished ``VerifyReport``."""

    reported = QtCore.Signal(object)  # VerifyReport

    def __init__(self, path: Path) -> None:
        super().__init__("")
        self.path = path
        self.setWordWrap(True)
        self.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setVisible(False)
        self._thread: threading.Thread | None = None
        self._outcome: dict[str, VerifyReport | InputError] = {}
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    def run(self) -> VerifyReport:
        """Check the chain now, on the calling (GUI) thread, and show the outcome."""
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            report = verify(self.path)
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self.show_report(report)
        return report

    def start(self) -> None:
        """Check the chain on a worker thread; ``reported`` follows when it is done."""
        if self.running():
            return
        outcome: dict[str, VerifyReport | InputError] = {}
        path = self.path

        def work() -> None:  # no Qt in here
            try:
                outcome["report"] = verify(path)
            except InputError as exc:  # the file went away or was replaced meanwhile
                outcome["error"] = exc

        self._outcome = outcome
        self._thread = threading.Thread(target=work, name="fluoro-review-verify", daemon=True)
        self._show(f"verifying the hash chain of {path} …", RUNNING_STYLE)
        self._thread.start()
        self._timer.start()

    def running(self) -> bool:
        return self._thread is not None

    def show_report(self, report: VerifyReport) -> None:
        """OK with its row count and anchor (green), or the first bad row (red)."""
        self._show(str(report), OK_STYLE if report.ok else FAILED_STYLE)
        self.reported.emit(report)

    def _poll(self) -> None:
        if self._thread is None or self._thread.is_alive():
            return
        self._timer.stop()
        self._thread = None
        result = self._outcome.get("report") or self._outcome.get("error")
        if isinstance(result, VerifyReport):
            self.show_report(result)
        else:
            self._show(f"dose log could not be verified: {result}", FAILED_STYLE)

    def _show(self, text: str, style: str) -> None:
        self.setText(text)
        self.setStyleSheet(style)
        self.setVisible(True)

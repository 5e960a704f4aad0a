"""The alarm banner: the newest active dose alarm, a sound, and an Acknowledge button.

Alarms come from ``fluoro.session.engine.DoseEngine`` (21 CFR 1020.32(h) five-minute signal,
NCRP Report 168 levels); acknowledging calls the engine, which logs who did it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtWidgets

from fluoro.dose.alarms import Alarm

SEVERITY_COLOURS = {"info": "#1f5fa8", "warning": "#b36b00", "critical": "#b00020"}


class AlarmBanner(QtWidgets.QFrame):
    """Hidden while no alarm needs acknowledging. ``beeps`` counts the sounds made (for tests)."""

    def __init__(self, acknowledge: Callable[[], list[object]]) -> None:
        super().__init__()
        self._acknowledge = acknowledge
        layout = QtWidgets.QHBoxLayout(self)
        self.text = QtWidgets.QLabel("")
        self.text.setWordWrap(True)
        self.text.setStyleSheet("font-size: 16pt; font-weight: 600; color: white;")
        self.button = QtWidgets.QPushButton("Acknowledge (A)")
        self.button.setStyleSheet("font-size: 14pt; padding: 6px 16px;")
        self.button.clicked.connect(self.acknowledge)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.button)
        self.beeps = 0
        self.setVisible(False)

    def show_alarms(self, new: list[Alarm], active: list[Alarm]) -> None:
        """Announce ``new`` alarms (sound) and show the most severe ``active`` one."""
        for _ in new:
            QtWidgets.QApplication.beep()
            self.beeps += 1
        shown = active or [a for a in new if not a.requires_ack]
        if not shown:
            self.setVisible(False)
            return
        order = {"info": 0, "warning": 1, "critical": 2}
        alarm = max(shown, key=lambda a: (order[a.severity], a.t_s))
        more = f"  (+{len(active) - 1} more)" if len(active) > 1 else ""
        self.text.setText(f"{alarm.message}{more}")
        self.setStyleSheet(f"background: {SEVERITY_COLOURS[alarm.severity]};")
        self.button.setVisible(bool(active))
        self.setVisible(True)

    def acknowledge(self) -> None:
        self._acknowledge()

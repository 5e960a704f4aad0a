"""The dose panel: the patient's dose in large type, readable across the room.

Shows cumulative Ka,r (mGy), air-kerma rate (mGy/min over the last second), DAP (Gy·cm²),
fluoroscopy time (mm:ss, beam-on time, 21 CFR 1020.32(h)), the patient's prior total over the
last weeks, the reference-point definition, and DOSE LOG FAILED when the log fails.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from fluoro.dose.accumulator import DoseTotals

VALUE_STYLE = "font-size: 30pt; font-weight: 600; color: #f0f0f0;"
LABEL_STYLE = "font-size: 12pt; color: #a8b0b8;"
FAILED_STYLE = ("font-size: 20pt; font-weight: 700; color: white; background: #c00000; "
                "padding: 8px; border: 3px solid yellow;")


def mm_ss(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


class DosePanel(QtWidgets.QFrame):
    def __init__(self, reference_point: str, prior_text: str = "") -> None:
        super().__init__()
        self.setStyleSheet("background: #15191d;")
        self.setMinimumWidth(300)
        layout = QtWidgets.QVBoxLayout(self)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for key, label in (("kar", "Ka,r (mGy)"), ("akr", "air-kerma rate (mGy/min)"),
                           ("dap", "DAP (Gy·cm²)"), ("time", "fluoro time (mm:ss)"),
                           ("pulses", "pulses / events")):
            caption = QtWidgets.QLabel(label)
            caption.setStyleSheet(LABEL_STYLE)
            value = QtWidgets.QLabel("-")
            value.setStyleSheet(VALUE_STYLE)
            value.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
            layout.addWidget(caption)
            layout.addWidget(value)
            self.values[key] = value
        self.prior = QtWidgets.QLabel(prior_text or "no earlier procedures recorded")
        self.prior.setWordWrap(True)
        self.prior.setStyleSheet(LABEL_STYLE)
        self.reference = QtWidgets.QLabel(f"reference point: {reference_point}")
        self.reference.setWordWrap(True)
        self.reference.setStyleSheet(LABEL_STYLE)
        self.failed = QtWidgets.QLabel("")
        self.failed.setWordWrap(True)
        self.failed.setStyleSheet(FAILED_STYLE)
        self.failed.setVisible(False)
        layout.addSpacing(10)
        layout.addWidget(self.prior)
        layout.addWidget(self.reference)
        layout.addStretch(1)
        layout.addWidget(self.failed)

    def show_totals(self, totals: DoseTotals) -> None:
        self.values["kar"].setText(f"{totals.kar_mgy:.2f}")
        self.values["akr"].setText(f"{totals.akr_mgy_min:.1f}")
        self.values["dap"].setText(f"{totals.dap_gycm2:.3f}")
        self.values["time"].setText(mm_ss(totals.fluoro_time_s))
        self.values["pulses"].setText(f"{totals.pulses} / {totals.events}")
        if totals.log_error:
            self.failed.setText(f"DOSE LOG FAILED\n{totals.log_error}")
            self.failed.setVisible(True)

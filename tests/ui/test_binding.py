"""The Qt binding itself must be fit for a window that runs for hours."""

import sys

import pytest
from PySide6 import QtWidgets


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_qt_calls_do_not_leak_references_to_none(qtbot):
    # PySide6 6.12.0 on Python 3.11 dropped a reference to None on every void call; after some
    # minutes of live display None's count reached zero and the process aborted.
    label = QtWidgets.QLabel("")
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(5000):
        label.setVisible(False)
        label.setText("")
    assert sys.getrefcount(None) - before > -100

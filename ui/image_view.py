"""A fluoroscopy image view: fixed window/level, adjusted by dragging, as C-arm consoles do.

Follows pyqtgraph's VideoSpeedTest habits: ``ImageItem(axisOrder="row-major")``, explicit
``levels=`` on every frame (never auto-levels per frame), an 8-bit LUT of 256 entries for
inversion, and the frames handed over are never written again by the pipeline.

Mouse: left-drag changes window (horizontal) and level (vertical); a left click (no drag) emits
``clicked`` with the image position (the live view places the target there); wheel zooms;
middle-drag pans.
Coordinates: the scene uses image pixels, x = column, y = row, origin top-left.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

DRAG_GAIN_PER_PX = 0.004  # fraction of the current window width per pixel of mouse drag


def grey_lut(invert: bool) -> np.ndarray:
    ramp = np.arange(256, dtype=np.uint8)
    lut = ramp[::-1] if invert else ramp
    return np.ascontiguousarray(np.stack([lut, lut, lut], axis=1))


class _WindowLevelViewBox(pg.ViewBox):
    """A ViewBox whose left-drag adjusts window/level instead of panning."""

    def __init__(self, owner: FluoroView) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self._owner = owner
        self._start: tuple[float, float] | None = None

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 (Qt naming)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            if ev.isStart():
                self._start = self._owner.levels
            if self._start is None:
                return
            delta = ev.screenPos() - ev.buttonDownScreenPos()
            low, high = self._start
            width = max(1.0, high - low)
            centre = (low + high) / 2 - delta.y() * DRAG_GAIN_PER_PX * width
            width = max(1.0, width * (1.0 + delta.x() * DRAG_GAIN_PER_PX))
            self._owner.set_levels((centre - width / 2, centre + width / 2))
            if ev.isFinish():
                self._start = None
            return
        if ev.button() == QtCore.Qt.MouseButton.MiddleButton:
            ev.accept()
            diff = self.mapToView(ev.lastPos()) - self.mapToView(ev.pos())
            self.translateBy(x=diff.x(), y=diff.y())
            return
        ev.ignore()


class FluoroView(pg.GraphicsLayoutWidget):
    """One image pane: live or reference. ``clicked`` gives the image position of a click."""

    clicked = QtCore.Signal(float, float)

    def __init__(self, title: str = "") -> None:
        super().__init__()
        self.setBackground("k")
        self.view = _WindowLevelViewBox(self)
        self.addItem(self.view)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self.title = pg.TextItem(title, color=(230, 230, 230), anchor=(0, 0))
        self.title.setZValue(10)
        self.view.addItem(self.title, ignoreBounds=True)
        self.levels: tuple[float, float] = (0.0, 4095.0)
        self.default_levels: tuple[float, float] = (0.0, 4095.0)
        self.inverted = False
        self.image: np.ndarray | None = None
        self.image_item.setLookupTable(grey_lut(False))
        self.scene().sigMouseClicked.connect(self._on_click)

    def set_image(self, image: np.ndarray, first: bool = False) -> None:
        """Show ``image`` with the current fixed levels; ``first`` fits it to the pane."""
        self.image = image
        self.image_item.setImage(image, levels=self.levels, autoLevels=False)
        if first:
            self.fit()

    def set_default_levels(self, levels: tuple[float, float]) -> None:
        self.default_levels = levels
        self.set_levels(levels)

    def set_levels(self, levels: tuple[float, float]) -> None:
        self.levels = (float(levels[0]), float(max(levels[1], levels[0] + 1.0)))
        self.image_item.setLevels(self.levels)

    def reset_levels(self) -> None:
        self.set_levels(self.default_levels)

    def set_inverted(self, inverted: bool) -> None:
        self.inverted = inverted
        self.image_item.setLookupTable(grey_lut(inverted))

    def fit(self) -> None:
        if self.image is not None:
            h, w = self.image.shape[:2]
            self.view.setRange(QtCore.QRectF(0, 0, w, h), padding=0.0)
            self.title.setPos(4, 4)

    def zoom(self, factor: float) -> None:
        self.view.scaleBy((1 / factor, 1 / factor))

    def _on_click(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton or self.image is None:
            return
        point = self.view.mapSceneToView(event.scenePos())
        self.clicked.emit(float(point.x()), float(point.y()))

"""Where frames and dose readings come from. Open any of them by URL: ``drivers.open_source``."""

from drivers.registry import open_source, schemes

__all__ = ["open_source", "schemes"]

"""fluoro: real-time fluoroscopy guidance and dose monitor (core: no Qt, no hardware)."""

__version__ = "0.1.0"

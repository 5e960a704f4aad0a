"""Image processing on one frame at a time: the real-time denoiser (``denoise``) and needle
tracking (``needle``, ``needle_detect``, the result contract ``needle_result``), each a small
stateful stage over pure numba kernels kept in private ``_*_kernels`` modules, and 8-bit
previews (``preview``).

May import only the shared modules (``fluoro.frame`` for the ``WorkItem`` and ``Stage``
contracts): no dose, no stream, no I/O beyond saving a preview picture.
"""

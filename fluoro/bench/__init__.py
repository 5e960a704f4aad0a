"""``fluoro bench``: the benchmark runner (``run``) and the scorers that judge the stages against
the truth (``denoise_score``, ``tracking_score``), the reference denoisers (``denoise_baselines``)
and simulated low-dose noise for real images (``add_noise``).

May import every core wing below the CLI (``session``, ``stream``, ``doselog``, ``dose``,
``imaging``) and the shared modules; never a driver or a window.
"""

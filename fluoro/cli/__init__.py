"""The ``fluoro`` command line, the composition root: argument parsing (``main``), the dose
commands (``dose``, ``report_options``) and needle detection on one image (``track``).

The only part of ``fluoro/`` that may import ``drivers`` (sources) and ``ui`` (windows), and it
does so inside the command functions, so ``fluoro bench`` never loads Qt.
"""

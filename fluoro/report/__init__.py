"""The radiation safety officer's reports over a dose log: the data (``data``), local
diagnostic reference levels (``drl``), and its renderings as HTML with SVG plots (``html``,
``svg``, ``style``, ``timeline``), CSV (``csv``) and JSON (``json``).

May import ``fluoro.doselog``, ``fluoro.dose`` and the shared modules.
"""

"""Dose of one procedure, in memory: the per-pulse dose model (``model``), the accumulator
that turns frames into pulse and gap records and running totals (``accumulator``), the
regulatory alarm levels (``alarms``: 21 CFR 1020.32(h), NCRP Report 168), the site
configuration (``siteconfig``) and what a DAP meter reports (``meter``).

Pure bookkeeping: no files, no threads of its own. May import only the shared modules.
"""

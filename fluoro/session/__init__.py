"""One procedure from start to end: the dose engine that accounts, alarms and logs every pulse
(``engine``), the DAP meter's feed thread (``meter_feed``), the headless status line and
summary (``headless``), and the ``Session`` that opens them with the sources and the pipeline
in order and closes them in reverse (``session``).

May import ``fluoro.stream``, ``fluoro.doselog``, ``fluoro.dose``, ``fluoro.imaging`` and the
shared modules. Sources are opened through callables it is given (the CLI passes the drivers').
"""

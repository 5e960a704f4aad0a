"""The stream: frames from a source through the synchronous dose path and the processing
stages to the latest-result slot the display polls (``pipeline``), the thread hand-offs
(``handoff``), latency and rate statistics (``stats``), and an in-memory source
(``prerendered``).

May import ``fluoro.dose`` and ``fluoro.imaging`` (the default stages) and the shared modules;
never a dose log, a session, a window or a driver.
"""

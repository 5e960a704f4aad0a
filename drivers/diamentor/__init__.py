"""PTW DIAMENTOR DAP meter: protocol (``protocol``), driver (``driver``), simulated meter
(``model``) and a pseudo-terminal emulator (``emulator``). Open it as
``serial:PORT?protocol=diamentor`` through ``drivers.dose_sources.open_dose_source``."""

from drivers.diamentor.driver import DiamentorMeter, DiamentorOptions, open_diamentor

__all__ = ["DiamentorMeter", "DiamentorOptions", "open_diamentor"]

"""The independent validation family: needle scenes drawn apart from the simulator.

A second scene generator, written separately from ``drivers.sim`` and sharing no code with it
(an import-linter ``independence`` contract in pyproject.toml keeps it so), with its own
geometry and rendering, so that the needle tracker cannot learn one renderer's look. It
produces fluoroscopy streams of a lumbar spine in AP, oblique and lateral views with needles
(18–25 G, bent or straight, one to three, advancing, pausing, withdrawing, redirected) and the
things that are not the needle (pedicle screws, rods, cages, K-wires, clips, ECG leads, the
table edge, collimator blades, wedge filters, bowel gas), with the truth of every frame, under
a catalogue of named conditions (``conditions.CONDITIONS``).

Use it through the public frame contract only: ``family://CONDITION?seed=1&size=1024`` as a
source URL (``open_family``), or ``python -m drivers.family`` to write recordings in the
replay format (``replay:DIR``). Modules: ``geometry`` (patient coordinates, C-arm projection,
collimated field), ``shapes`` (line integrals through solids and thin tubes), ``materials``,
``anatomy``, ``objects`` (needles and distractors), ``motion`` (plans, breathing, pedal),
``conditions`` (the catalogue), ``placement`` (where needles and hardware go), ``scene`` (a
condition drawn with a seed, pre-rendered), ``render``
(quanta, scatter, blur, noise, lag), ``source`` (the frame source), ``__main__`` (CLI).
"""

from drivers.family.conditions import CONDITIONS, Condition
from drivers.family.source import FamilySource, FamilyStream, open_family, stream

__all__ = ["CONDITIONS", "Condition", "FamilySource", "FamilyStream", "open_family", "stream"]

"""The catalogue of the validation family: one ``Condition`` per thing that can make needle
guidance go wrong, alone, and a few mixed ones.

A condition holds every knob of a stream. A knob given as a ``(low, high)`` range is drawn
uniformly per seed; a knob given as a tuple of choices (``gauges``) is drawn from them; the
rest are fixed. The same condition, seed and size always give the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fluoro.errors import InputError

Range = tuple[float, float]

VIEWS = ("ap", "oblique", "lateral")
ENTRIES = ("side", "corner", "each-side", "any")
HUBS = ("inside", "outside", "any")
MOTIONS = ("advance", "advance-pause-withdraw", "redirect", "mixed")
COLLIMATORS = ("circle", "rect", "circle+blades", "none", "any")


@dataclass(frozen=True, slots=True)
class Condition:
    """Every knob of one kind of stream (units in the names; ranges are drawn per seed).

    Geometry: ``view`` ("ap", "oblique", "lateral" or "any", drawn), ``size_px`` (square),
    ``spacing_mm`` (detector pixel spacing), ``roll_deg`` (detector rotation), ``mirror``
    (flip left-right; None: drawn). Dose: ``quanta`` (expected quanta per pixel in the
    collimated field behind the field's median soft-tissue path, bone and hardware aside).
    Detector: ``blur_px`` (Gaussian sigma), ``lag`` (fraction of the previous frame's signal
    carried over), ``scatter_to_primary``.
    Needles: ``needles`` (0–3; one moves at a time), ``gauges``, ``magnification`` (of the
    needle at the detector), ``entry`` ("side": from one image side, drawn; "corner"; "each-
    side": the side cycles with the seed; "any": any direction), ``hub`` ("inside" the field,
    "outside" it — the shaft then runs to the field edge — or "any"), ``enters_at_frame``
    (the first frame with a needle; 0 from the start), ``motion`` (the plan), ``bend_mm`` (sag
    of the shaft's arc). Patient: ``breathing_mm`` (peak-to-peak), ``breathing_period_s``,
    ``bowel_gas`` (0..1). Distractors: ``screw_levels`` (levels with bilateral pedicle
    screws), ``rods``, ``cage``, ``kwires``, ``clips``, ``ecg_leads``, ``table_edge``,
    ``collimator`` ("circle", "rect", "circle+blades", "none", "any"), ``wedge``. Stream:
    ``frames``, ``fps`` (pulses/s), ``pedal_release`` (beam-off gaps with last-image hold),
    ``seed_offset``.
    """

    name: str
    description: str
    view: str = "ap"
    size_px: int = 1024
    spacing_mm: Range = (0.2, 0.3)
    roll_deg: Range = (0.0, 0.0)
    mirror: bool | None = False
    quanta: Range = (40.0, 60.0)
    blur_px: Range = (0.5, 1.0)
    lag: Range = (0.0, 0.03)
    scatter_to_primary: Range = (0.3, 0.6)
    needles: int = 1
    gauges: tuple[int, ...] = (20, 22)
    magnification: Range = (1.2, 1.8)
    entry: str = "side"
    hub: str = "inside"
    enters_at_frame: tuple[int, int] = (0, 0)
    motion: str = "advance"
    bend_mm: Range = (0.0, 0.3)
    breathing_mm: Range = (0.0, 1.0)
    breathing_period_s: Range = (3.5, 4.5)
    bowel_gas: float = 0.3
    screw_levels: int = 0
    rods: bool = False
    cage: bool = False
    kwires: int = 0
    clips: int = 0
    ecg_leads: int = 0
    table_edge: bool = False
    collimator: str = "circle"
    wedge: bool = False
    frames: int = 90
    fps: float = 15.0
    pedal_release: bool = False
    seed_offset: int = 0

    def __post_init__(self) -> None:
        checks = [("view", self.view, (*VIEWS, "any")), ("entry", self.entry, ENTRIES),
                  ("hub", self.hub, HUBS), ("motion", self.motion, MOTIONS),
                  ("collimator", self.collimator, COLLIMATORS)]
        for knob, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"{self.name}: {knob} {value!r}; expected one of {allowed}")
        if not 0 <= self.needles <= 3:
            raise ValueError(f"{self.name}: needles {self.needles}; expected 0 to 3")


def _c(name: str, description: str, **knobs) -> Condition:
    return Condition(name, description, **knobs)


_HARDWARE = dict(screw_levels=2, rods=True, cage=True, kwires=1, clips=4, ecg_leads=2)

CONDITIONS: dict[str, Condition] = {c.name: c for c in [
    _c("ap-basic", "AP view, one 20-22 G needle advancing from a side, hub in the field"),
    _c("oblique-basic", "oblique (Scotty dog) view, one needle advancing", view="oblique"),
    _c("lateral-basic", "lateral view, one needle advancing", view="lateral"),
    _c("spacing-0.15", "fine 0.15 mm pixels (a small field of view)", spacing_mm=(0.15, 0.15),
       view="any"),
    _c("spacing-0.4", "coarse 0.4 mm pixels (a wide field of view)", spacing_mm=(0.4, 0.4),
       view="any"),
    _c("size-512", "512 x 512 frames", size_px=512, view="any"),
    _c("gauge-18", "a thick 18 G needle (1.27 mm)", gauges=(18,), view="any"),
    _c("gauge-25", "a thin 25 G needle (0.51 mm)", gauges=(25,), view="any"),
    _c("entry-corner", "the needle enters from a corner of the image", entry="corner",
       view="any"),
    _c("entry-each-side", "the needle enters from the left, top, right or bottom (cycles "
       "with the seed)", entry="each-side", view="any"),
    _c("hub-outside", "the hub is outside the field: the shaft runs to the field edge",
       hub="outside", view="any"),
    _c("enters-mid-stream", "no needle for the first 15-40 frames, then it enters",
       enters_at_frame=(15, 40), hub="any", view="any"),
    _c("advance-pause-withdraw", "the needle advances, pauses, withdraws and advances again",
       motion="advance-pause-withdraw", view="any"),
    _c("redirect", "the needle is withdrawn a little and redirected (its angle changes)",
       motion="redirect", view="any"),
    _c("bent", "a bent needle: a gentle arc with 1-2 mm sag", bend_mm=(1.0, 2.0), view="any"),
    _c("two-needles", "two needles in view, one moves at a time", needles=2, view="any",
       hub="any"),
    _c("three-needles", "three needles in view (medial branch blocks), one moves at a time",
       needles=3, view="any", hub="any"),
    _c("screws-rods", "pedicle screws with tulip heads and rods, and a needle", screw_levels=2,
       rods=True, view="any"),
    _c("cage", "an interbody cage (PEEK with tantalum markers, or titanium)", cage=True,
       view="any"),
    _c("kwire", "a K-wire fixed in the bone (moves only with the anatomy) beside the needle",
       kwires=1, breathing_mm=(2.0, 4.0), view="any"),
    _c("clips", "surgical clips (small V and U shapes)", clips=8, view="any"),
    _c("ecg-leads", "ECG leads and cables: thin curved dark lines with round electrodes",
       ecg_leads=3, view="any"),
    _c("table-edge", "the table edge: a long straight brightness step across the field",
       table_edge=True, view="any"),
    _c("collimator-wedge", "rectangular or shuttered collimation and a wedge filter",
       collimator="any", wedge=True, view="any"),
    _c("bowel-gas", "much bowel gas over the spine", bowel_gas=1.0, view="ap"),
    _c("low-dose-10", "low dose: 10 quanta per pixel", quanta=(10.0, 10.0), view="any"),
    _c("high-dose-80", "high dose: 80 quanta per pixel", quanta=(80.0, 80.0), view="any"),
    _c("lag", "detector lag: 10-15 % of the previous frame", lag=(0.10, 0.15), view="any"),
    _c("breathing-5mm", "breathing: 5 mm of motion with a ~4 s period",
       breathing_mm=(5.0, 5.0), view="any"),
    _c("pedal-release", "the pedal is released now and then: beam-off frames hold the last "
       "image while the needle moves on", pedal_release=True, frames=120, view="any"),
    _c("no-needle-hardware", "hardware of every kind, leads and clips, and no needle at all",
       needles=0, table_edge=True, view="any", breathing_mm=(0.0, 3.0), **_HARDWARE),
    _c("mixed-fusion", "lateral, screws, rods, cage and K-wire, breathing, a 25 G needle "
       "entering mid-stream, 40-60 quanta, lag, mirrored", view="lateral", screw_levels=2,
       rods=True, cage=True, kwires=1, breathing_mm=(2.0, 5.0), gauges=(25,),
       enters_at_frame=(15, 35), hub="any", quanta=(40.0, 60.0), lag=(0.05, 0.15),
       mirror=True, frames=100),
    _c("mixed-mbb", "oblique, three needles (medial branch blocks), ECG leads and clips",
       view="oblique", needles=3, ecg_leads=2, clips=5, hub="any", gauges=(22, 25),
       motion="mixed"),
    _c("mixed-everything", "everything drawn at random: view, spacing, dose, lag, needles, "
       "hardware, leads, clips, collimation, wedge, table, breathing, pedal",
       view="any", spacing_mm=(0.15, 0.4), roll_deg=(-20.0, 20.0), mirror=None,
       quanta=(15.0, 80.0), lag=(0.0, 0.15), needles=2, gauges=(18, 20, 22, 25),
       entry="any", hub="any", enters_at_frame=(0, 30), motion="mixed", bend_mm=(0.0, 2.0),
       breathing_mm=(0.0, 5.0), bowel_gas=0.6, table_edge=True, collimator="any",
       wedge=True, pedal_release=True, frames=120, **_HARDWARE),
]}


def get_condition(name: str) -> Condition:
    """The catalogue's condition ``name`` (``InputError`` naming the choices otherwise)."""
    try:
        return CONDITIONS[name]
    except KeyError:
        raise InputError(f"unknown condition {name!r}; expected one of "
                         f"{', '.join(CONDITIONS)}") from None


def with_overrides(condition: Condition, size_px: int | None = None,
                   frames: int | None = None) -> Condition:
    """The condition at another size or length (every other knob kept)."""
    changes = {k: v for k, v in (("size_px", size_px), ("frames", frames)) if v is not None}
    return replace(condition, **changes) if changes else condition

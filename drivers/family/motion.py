"""What moves during a stream: the needles' plans, breathing and the pedal.

A needle's plan is a list of ``Move``s: over frames ``[start_frame, end_frame)`` the needle is
pushed in ``advance_mm`` (negative: withdrawn) and turned ``turn_deg`` about its skin entry
point (a redirect), with a smooth (ease-in-out) hand motion. With several needles in view
only one moves at a time: the stream is cut into one block per needle and each needle's
moves lie inside its block. The *active* needle is the visible one that moved most recently
(a needle entering the image counts as moving).

Breathing moves the patient rigidly (``Breathing.displacement_mm``): mostly cranio-caudal,
a little antero-posterior, with a quick inspiration and a slower expiration. Times in s,
frames counted from 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivers.family.geometry import unit


@dataclass(frozen=True, slots=True)
class Move:
    """Push ``advance_mm`` in (negative: out) and turn ``turn_deg`` over the frames
    ``[start_frame, end_frame)``."""

    start_frame: int
    end_frame: int
    advance_mm: float = 0.0
    turn_deg: float = 0.0

    def progress(self, frame: float) -> float:
        """0 before, 1 after, a smooth ease-in-out in between (the share done by ``frame``)."""
        span = max(1, self.end_frame - self.start_frame)
        x = min(1.0, max(0.0, (frame - self.start_frame + 1) / span))
        return x * x * (3 - 2 * x)


@dataclass(frozen=True, slots=True)
class NeedlePlan:
    """One needle's plan: it is in the patient from ``appear_frame`` on (before: absent)."""

    appear_frame: int
    moves: tuple[Move, ...]

    def state(self, frame: float) -> tuple[float, float]:
        """(advance so far, mm; turn so far, deg) at ``frame``."""
        advance = sum(m.advance_mm * m.progress(frame) for m in self.moves)
        turn = sum(m.turn_deg * m.progress(frame) for m in self.moves)
        return advance, turn

    def total(self) -> tuple[float, float]:
        return (sum(m.advance_mm for m in self.moves), sum(m.turn_deg for m in self.moves))

    def extremes(self) -> tuple[float, float]:
        """Least and greatest advance over the plan, mm (for choosing a start depth)."""
        values = [self.state(f)[0] for f in range(self.appear_frame, self.last_frame() + 2)]
        return (min(values), max(values)) if values else (0.0, 0.0)

    def last_frame(self) -> int:
        return max([m.end_frame for m in self.moves] + [self.appear_frame])

    def present(self, frame: int) -> bool:
        return frame >= self.appear_frame

    def last_moved(self, frame: int) -> int:
        """The last frame <= ``frame`` at which the needle moved or entered (-1: never)."""
        last = self.appear_frame if 0 < self.appear_frame <= frame else -1
        for m in self.moves:
            if m.start_frame <= frame and (m.advance_mm or m.turn_deg):
                last = max(last, min(frame, m.end_frame - 1))
        return last

    def next_move(self, frame: int) -> int:
        later = [m.start_frame for m in self.moves if m.start_frame > frame]
        return min(later) if later else 1 << 30


def _steps(rng: np.random.Generator, motion: str, fps: float) -> list[tuple[str, float]]:
    """An endless-enough list of (kind, seconds) hand actions for a motion kind."""
    def adv():
        return ("advance", rng.uniform(0.5, 1.6))

    def pause():
        return ("pause", rng.uniform(0.2, 1.0))

    if motion == "advance":
        seq = [x for _ in range(20) for x in (adv(), pause())]
    elif motion == "advance-pause-withdraw":
        seq = [("advance", rng.uniform(1.4, 2.4)), ("pause", rng.uniform(0.8, 1.5)),
               ("withdraw", rng.uniform(0.6, 1.2)), ("pause", rng.uniform(0.4, 1.0))]
        seq += [x for _ in range(20) for x in (adv(), pause())]
    elif motion == "redirect":
        seq = [("advance", rng.uniform(1.0, 1.8)), ("pause", rng.uniform(0.3, 0.8)),
               ("redirect", rng.uniform(0.6, 1.2)), ("pause", rng.uniform(0.3, 0.7))]
        seq += [x for _ in range(10) for x in (adv(), pause(), ("redirect",
                                                               rng.uniform(0.6, 1.2)), pause())]
    else:  # mixed
        kinds = ["advance", "pause", "withdraw", "redirect"]
        seq = []
        for _ in range(40):
            kind = kinds[rng.choice(4, p=[0.45, 0.3, 0.1, 0.15])]
            seq.append((kind, rng.uniform(0.4, 1.4)))
    return seq


def plan_moves(rng: np.random.Generator, motion: str, start: int, end: int,
               fps: float) -> tuple[Move, ...]:
    """Moves filling the frames ``[start, end)`` for a motion kind."""
    moves: list[Move] = []
    frame = start
    for kind, seconds in _steps(rng, motion, fps):
        if frame >= end:
            break
        n = max(2, round(seconds * fps))
        stop = min(end, frame + n)
        share = (stop - frame) / n
        if kind == "advance":
            moves.append(Move(frame, stop, rng.uniform(2.0, 6.0) * seconds * share))
        elif kind == "withdraw":
            moves.append(Move(frame, stop, -rng.uniform(4.0, 12.0) * share))
        elif kind == "redirect":
            turn = rng.choice([-1, 1]) * rng.uniform(4.0, 12.0)
            moves.append(Move(frame, stop, -rng.uniform(3.0, 8.0) * share, turn * share))
        frame = stop
    return tuple(moves)


def needle_plans(rng: np.random.Generator, count: int, motion: str, frames: int, fps: float,
                 enters_at_frame: int) -> list[NeedlePlan]:
    """Plans for ``count`` needles, one moving at a time; the first to move enters at
    ``enters_at_frame`` (0: there from the start), the others are in place from the start."""
    if count == 0:
        return []
    order = list(rng.permutation(count))
    start = enters_at_frame
    bounds = np.linspace(start, frames, count + 1).round().astype(int)
    plans: list[NeedlePlan | None] = [None] * count
    for block, needle in enumerate(order):
        b0, b1 = int(bounds[block]), int(bounds[block + 1])
        first = b0 + (0 if block == 0 else int(rng.integers(0, 4)))
        moves = plan_moves(rng, motion, first, b1, fps)
        plans[needle] = NeedlePlan(enters_at_frame if block == 0 else 0, moves)
    return [p for p in plans if p is not None]


def active_needle(plans: list[NeedlePlan], visible: list[bool], frame: int) -> int | None:
    """The visible needle that moved (or entered) most recently; ties go to the one that
    moves next. None when no needle is visible."""
    candidates = [i for i, v in enumerate(visible) if v]
    if not candidates:
        return None
    return max(candidates, key=lambda i: (plans[i].last_moved(frame),
                                          -plans[i].next_move(frame)))


@dataclass(frozen=True, slots=True)
class Breathing:
    """Rigid breathing motion of the patient: ``amplitude_mm`` peak to peak along
    ``direction`` (unit, patient coordinates), ``period_s``, starting ``phase`` (rad)."""

    amplitude_mm: float
    period_s: float
    phase: float
    direction: tuple[float, float, float]

    def displacement_mm(self, t_s: float) -> np.ndarray:
        """Displacement at ``t_s``, mm (patient coordinates); 0 at full expiration."""
        if self.amplitude_mm <= 0:
            return np.zeros(3)
        x = (2 * math.pi * t_s / self.period_s + self.phase) % (2 * math.pi)
        # quick inspiration (40 % of the cycle), slower expiration with a rest at the end
        if x < 0.8 * math.pi:
            s = 0.5 - 0.5 * math.cos(x / 0.8)
        else:
            s = max(0.0, 0.5 + 0.5 * math.cos((x - 0.8 * math.pi) / 0.9)) if x < 1.7 * math.pi \
                else 0.0
        return self.amplitude_mm * s * np.asarray(self.direction)


def make_breathing(rng: np.random.Generator, amplitude_mm: float, period_s: float) -> Breathing:
    direction = unit(np.array([rng.normal(0, 0.1), 1.0, rng.uniform(0.1, 0.4)]))
    return Breathing(amplitude_mm, period_s, rng.uniform(0, 2 * math.pi),
                     (float(direction[0]), float(direction[1]), float(direction[2])))


def beam_schedule(rng: np.random.Generator, frames: int, pedal_release: bool) -> np.ndarray:
    """Per frame, True where the beam is on; with ``pedal_release``, one to three gaps of
    3–12 frames (the pedal released; at most a quarter of the stream), never at the start."""
    on = np.ones(frames, bool)
    if not pedal_release or frames < 30:
        return on
    gaps = int(rng.integers(1, 4))
    longest = max(4, min(12, frames // (4 * gaps)))  # at most a quarter of the stream off
    for k in range(gaps):
        lo = int(frames * (0.15 + 0.7 * k / gaps))
        hi = int(frames * (0.15 + 0.7 * (k + 1) / gaps)) - longest
        start = int(rng.integers(lo, max(lo + 1, hi)))
        on[start:start + int(rng.integers(3, longest + 1))] = False
    on[:5] = True
    return on

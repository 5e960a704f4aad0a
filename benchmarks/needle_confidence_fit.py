"""Fit the needle tracker's confidence: P(a tracked line is on a needle), calibrated on
scenes the tracker was not designed on.

    python benchmarks/needle_confidence_fit.py [--train-seeds 101,102,103]
        [--test-seeds 201,202] [--size 512] [--frames 60] [--write] [--out benchmarks/out]

Data: every condition of the independent validation family (``drivers/family``) and the
simulator's scenarios (``drivers/sim``: clean-spine, fusion-hardware, no-needle), rendered
with the training seeds; each frame goes through the default stages (denoise, then the
tracker searching every frame, so the candidates do not depend on the weights being fitted),
and every line the tracker measured in that frame (``NeedleTracker.candidates``) is one
sample: its features (``fluoro.imaging.needle_evidence.FEATURES``) and its label, on a needle
or not, by the bench's rule (``fluoro.bench.tracking_score``: tip within 5 mm of a true
needle's tip, axis within 10°).

Model: the tracker's probability is the shape model's times the track's worked factor
(``needle_evidence.worked_factor``: 0 for a line whose tip never moved along its shaft
against the anatomy, or that swings to and fro or strays sideways); the shape model is
fitted on the lines the factor lets through (above 0), by logistic regression (Cox 1958) by
iteratively reweighted least squares with a small ridge (L2) penalty, the conditions
weighted equally (each condition's samples weigh as much in total as another's, so no one
scene dominates), each weight held to the sign physics gives it (``SIGNS``). Two models: one
for lines seen in fewer than ``FIRST_SIGHT`` frames (their shape and ends only), one for
tracks with a history. The weights are fitted on the training seeds; the accept level is
then chosen on the *validation* seeds (``--test-seeds``), as the lowest probability at which
at least 99 % of the tracker's *active* detections are on a needle; the report gives, on
those seeds, the calibration (predicted against observed, in bins) and the precision of the
active detections at that level. The figures to quote come from neither: the family
benchmark (``benchmarks/tracking_family.py``) runs other seeds again. ``--write`` puts the
weights and the level into ``fluoro/imaging/needle_evidence.py`` (the WEIGHTS, WEIGHTS_FIRST
and ACCEPT lines).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivers import open_source
from drivers.family import CONDITIONS, stream
from fluoro.bench.tracking_score import _needles, _on_needle
from fluoro.console import StageProgress
from fluoro.frame import EndOfStream, Frame
from fluoro.imaging.denoise import Denoiser
from fluoro.imaging.needle import NeedleTracker
from fluoro.imaging.needle_evidence import FEATURES, FIRST_SIGHT, STATIC_FEATURES
from fluoro.imaging.needle_result import NeedleResult
from fluoro.stream.pipeline import StageRunner

OUT = Path(__file__).parent / "out"
EVIDENCE = Path(__file__).resolve().parents[1] / "fluoro" / "imaging" / "needle_evidence.py"
SIM_SCENARIOS = ("clean-spine", "fusion-hardware", "no-needle")
SIM_FRAMES = 120
TARGET_PRECISION = 0.99
RIDGE = 1e-2


@dataclass
class Samples:
    x: list[np.ndarray]
    y: list[int]
    group: list[str]
    active: list[bool]  # the tracker's active choice in that frame
    worked: list[float]  # the track's worked factor (the probability is shape x worked)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.array(self.x), np.array(self.y, float), np.array(self.group),
                np.array(self.active, bool), np.array(self.worked, float))


def _sources(seed: int, size: int, frames: int) -> Iterator[tuple[str, Iterator[Frame]]]:
    for name, condition in CONDITIONS.items():
        yield f"family/{name}", stream(condition, seed, size, frames, want_clean=False).frames()
    for scenario in SIM_SCENARIOS:  # the simulator's needle enters after about 3 s
        url = (f"sim://spine?size={size}&frames={max(frames, SIM_FRAMES)}&scenario={scenario}"
               f"&seed={seed}&realtime=0&clean=0")
        yield f"sim/{scenario}", _read_all(open_source(url))


def _read_all(source) -> Iterator[Frame]:
    try:
        while True:
            try:
                frame = source.read(1.0)
            except EndOfStream:
                return
            if frame is not None:
                yield frame
    finally:
        source.close()


def collect(seeds: Sequence[int], size: int, frames: int, progress: StageProgress) -> Samples:
    samples = Samples([], [], [], [], [])
    sources = [(seed, name, it) for seed in seeds for name, it in _sources(seed, size, frames)]
    for n, (_seed, name, frame_iter) in enumerate(sources, 1):
        tracker = NeedleTracker(search_every=1)
        runner = StageRunner([Denoiser(), tracker])
        for frame in frame_iter:
            runner.run(frame)
            if not frame.beam_on or frame.truth is None:
                continue
            needles = _needles(frame.truth)
            spacing = tuple(frame.pixel_spacing_mm)
            for cand in tracker.candidates():
                if not cand.measured or cand.features.size == 0:
                    continue
                seg = cand.segment
                probe = NeedleResult(True, cand.probability, seg.tip, seg.hub,
                                     float(np.degrees(np.arctan2(seg.direction[1],
                                                                 seg.direction[0]))) % 360.0)
                on = any(_on_needle(probe, needle, spacing) for needle in needles)
                samples.x.append(cand.features)
                samples.y.append(int(on))
                samples.group.append(name)
                samples.active.append(cand.active)
                samples.worked.append(cand.worked)
        progress(n, len(sources), f"collecting candidates (seeds {','.join(map(str, seeds))})")
    return samples


# The sign each weight must have, from the physics of the image and of the procedure (None:
# either): a straighter, thinner, more contrasted line, a hub or an exit at one end, a tip
# inside the field that ends abruptly, a tip that was worked and does not wander, a line that
# is measured steadily are each more like a needle, never less. Without these the fit would
# also learn the quirks of the scenes it is fitted on (for example that the generator's bone
# outlines are straighter than its needles), which is exactly what it must not learn.
SIGNS = {"bias": None, "contrast": 1, "residual_px": -1, "thinness": -1, "support": 1,
         "length_mm": 1, "ferrule": 1, "hub_out": 1, "tip_out": -1, "tip_sharpness": 1,
         "tip_hidden": -1,
         "worked_mm": 1, "trend_mm": 1, "jitter_mm": -1, "seen": 1, "steady": 1}


def fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray, iterations: int = 50,
        only: Sequence[str] = FEATURES) -> np.ndarray:
    """Weighted logistic regression by IRLS with a ridge penalty (not on the bias), each
    weight held to its sign in ``SIGNS`` (active set: a weight that comes out with the wrong
    sign is fixed at zero and the rest refitted); features not in ``only`` weigh zero."""
    signs = np.array([0 if SIGNS[name] is None else SIGNS[name] for name in FEATURES])
    free = np.array([name in only for name in FEATURES])
    while True:
        coef = np.zeros(x.shape[1])
        coef[free] = _fit_free(x[:, free], y, weight, iterations)
        wrong = free & (signs != 0) & (np.sign(coef) == -signs) & (coef != 0)
        if not wrong.any():
            return coef
        worst = np.flatnonzero(wrong)[np.argmax(np.abs(coef[wrong]))]
        free[worst] = False


def _fit_free(x: np.ndarray, y: np.ndarray, weight: np.ndarray, iterations: int) -> np.ndarray:
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-9] = 1.0
    mean[0], std[0] = 0.0, 1.0  # the bias column stays 1
    z = (x - mean) / std
    beta = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], RIDGE * weight.sum())
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -40, 40)))
        w = weight * p * (1.0 - p) + 1e-9
        grad = z.T @ (weight * (y - p)) - penalty * beta
        hess = (z * w[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    coef = beta / std  # back to the raw features
    coef[0] = beta[0] - np.sum(beta[1:] * mean[1:] / std[1:])
    return coef


SEEN = FEATURES.index("seen")


def _first_sight(x: np.ndarray) -> np.ndarray:
    return x[:, SEEN] < np.log1p(FIRST_SIGHT) - 1e-9


def fit_both(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tracked-model weights, first-sight-model weights), each on its own samples."""
    first = _first_sight(x)
    tracked = fit(x[~first], y[~first], _group_weights(groups[~first]))
    at_first = fit(x[first], y[first], _group_weights(groups[first]), only=STATIC_FEATURES)
    return tracked, at_first


def _probability(x: np.ndarray, coef: np.ndarray, coef_first: np.ndarray) -> np.ndarray:
    z = np.where(_first_sight(x), x @ coef_first, x @ coef)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def accept_level(p: np.ndarray, y: np.ndarray, target: float = TARGET_PRECISION) -> float:
    """The lowest level at which the samples at or above it are at least ``target`` right."""
    order = np.argsort(-p)
    correct = np.cumsum(y[order])
    precision = correct / np.arange(1, p.size + 1)
    ok = np.flatnonzero(precision >= target)
    if ok.size == 0:
        return 1.0
    return float(max(p[order][ok[-1]], 0.5))


def calibration(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for lo, hi in itertools.pairwise(edges):
        inside = (p >= lo) & (p < hi if hi < 1.0 else p <= hi)
        if inside.any():
            out.append({"bin": f"{lo:.1f}-{hi:.1f}", "samples": int(inside.sum()),
                        "predicted": round(float(p[inside].mean()), 4),
                        "observed": round(float(y[inside].mean()), 4)})
    return out


def _group_weights(groups: np.ndarray) -> np.ndarray:
    names, counts = np.unique(groups, return_counts=True)
    per = dict(zip(names, 1.0 / counts, strict=True))
    weight = np.array([per[g] for g in groups])
    return weight * groups.size / weight.sum()


def save_samples(path: Path, train: Samples, test: Samples) -> None:
    arrays = {}
    for name, s in (("train", train), ("test", test)):
        x, y, g, a, w = s.arrays()
        arrays.update({f"{name}_x": x, f"{name}_y": y, f"{name}_group": g, f"{name}_active": a,
                       f"{name}_worked": w})
    np.savez_compressed(path, **arrays)


def load_samples(path: Path) -> tuple[Samples, Samples]:
    data = np.load(path)
    out = []
    for name in ("train", "test"):
        out.append(Samples(list(data[f"{name}_x"]), list(data[f"{name}_y"].astype(int)),
                           list(data[f"{name}_group"]), list(data[f"{name}_active"]),
                           list(data[f"{name}_worked"])))
    return out[0], out[1]


def by_group(p: np.ndarray, y: np.ndarray, groups: np.ndarray, level: float
             ) -> dict[str, dict[str, float]]:
    """Per condition: how many lines on no needle score at ``level`` or above, and how many
    lines on a needle do."""
    out = {}
    for g in np.unique(groups):
        inside = groups == g
        wrong = inside & (y == 0)
        right = inside & (y == 1)
        out[str(g)] = {"wrong_at_level": int(np.sum(p[wrong] >= level)),
                       "wrong": int(wrong.sum()),
                       "needle_at_level": int(np.sum(p[right] >= level)),
                       "needle": int(right.sum())}
    return out


def _array_line(name: str, values: np.ndarray) -> str:
    """``NAME = np.array([...])`` wrapped at 100 columns."""
    lines, line = [], f"{name} = np.array(["
    indent = " " * len(line)
    for i, value in enumerate(values):
        item = f"{value:.4g}" + (", " if i < len(values) - 1 else "])")
        if len(line) + len(item.rstrip()) > 100:
            lines.append(line.rstrip())
            line = indent
        line += item
    return "\n".join([*lines, line])


def write_weights(coef: np.ndarray, coef_first: np.ndarray, level: float) -> None:
    text = EVIDENCE.read_text()
    text, n1 = re.subn(r"^WEIGHTS = np\.array\(\[.*?\]\)$", _array_line("WEIGHTS", coef),
                       text, flags=re.M | re.S)
    text, n3 = re.subn(r"^WEIGHTS_FIRST = np\.array\(\[.*?\]\)$",
                       _array_line("WEIGHTS_FIRST", coef_first), text, flags=re.M | re.S)
    text, n2 = re.subn(r"^ACCEPT = .*$", f"ACCEPT = {level:.3f}", text, flags=re.M)
    if n1 != 1 or n2 != 1 or n3 != 1:
        raise SystemExit(f"{EVIDENCE}: WEIGHTS/ACCEPT lines not found")
    EVIDENCE.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-seeds", default="101,102,103")
    parser.add_argument("--test-seeds", default="201,202")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--write", action="store_true",
                        help="write the fitted weights and accept level into the tracker")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--samples", type=Path,
                        help="an .npz of samples collected before (skip collecting); "
                             "without it the samples collected are saved to OUT")
    args = parser.parse_args(argv)
    train_seeds = [int(s) for s in args.train_seeds.split(",")]
    test_seeds = [int(s) for s in args.test_seeds.split(",")]
    if args.samples is not None:
        train, test = load_samples(args.samples)
    else:
        progress = StageProgress()
        train = collect(train_seeds, args.size, args.frames, progress)
        test = collect(test_seeds, args.size, args.frames, progress)
        progress.close()
        args.out.mkdir(parents=True, exist_ok=True)
        save_samples(args.out / "needle_confidence_samples.npz", train, test)
    x, y, groups, _, worked = train.arrays()
    # live, the model decides only among lines that moved like a needle (worked factor above
    # 0); the first-sight model (one image, ``NeedleTracker.detect``) among all it sees
    gated = (worked > 0.0) | _first_sight(x)
    coef, coef_first = fit_both(x[gated], y[gated], groups[gated])
    xt, yt, groups_t, active_t, worked_t = test.arrays()
    pt = _probability(xt, coef, coef_first) * worked_t
    level = accept_level(pt[active_t], yt[active_t]) if active_t.any() else 0.5
    reported = active_t & (pt >= level)
    report = {
        "features": list(FEATURES),
        "weights": [round(float(c), 6) for c in coef],
        "weights_first": [round(float(c), 6) for c in coef_first],
        "accept": round(level, 4),
        "train": {"seeds": train_seeds, "samples": int(y.size), "on_needle": int(y.sum())},
        "test": {
            "seeds": test_seeds, "samples": int(yt.size), "on_needle": int(yt.sum()),
            "calibration": calibration(pt, yt),
            "reported_active": int(reported.sum()),
            "reported_active_precision": (round(float(yt[reported].mean()), 4)
                                          if reported.any() else None),
            "candidates_on_needle_accepted": (round(float(np.mean(pt[yt == 1] >= level)), 4)
                                              if (yt == 1).any() else None),
        },
        "size": args.size, "frames": args.frames,
        "test_by_condition_at_0.9": by_group(pt, yt, groups_t, 0.9),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "needle_confidence_fit.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("weights", "weights_first", "accept")}))
    print(json.dumps(report["test"], indent=1))
    if args.write:
        write_weights(coef, coef_first, level)
        print(f"written to {EVIDENCE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

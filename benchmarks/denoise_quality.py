"""Denoiser quality and speed against the baselines, same frames, same run, same scoring.

    .venv/bin/python benchmarks/denoise_quality.py [--frames 60] [--slow 8] [--size 1024]
        [--quanta 50] [--dicom ../shared/data/xray/xa_coronary_cine_512.dcm] [--json PATH]

For each source (simulated ``clean-spine`` and ``fusion-hardware``; the coronary cine with Poisson
noise at ``--quanta``) it runs ``fluoro.imaging.denoise.Denoiser`` over every frame and
``fluoro.bench.denoise_baselines.run_baselines`` (NLM on ``--slow`` frames), then prints one table
and, with ``--json``, writes every number. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fluoro.bench.add_noise import add_poisson_noise
from fluoro.bench.denoise_baselines import run_baselines
from fluoro.frame import Frame
from fluoro.imaging.denoise import Denoiser

DEFAULT_DICOM = Path(__file__).resolve().parents[2] / "shared/data/xray/xa_coronary_cine_512.dcm"


def progress(done: int, total: int, label: str) -> None:
    print(f"\r  {label}: {done}/{total}        ", end="", file=sys.stderr, flush=True)


def sim_frames(scenario: str, size: int, quanta: float, count: int) -> list[Frame]:
    from drivers.sim import open_sim

    url = (f"sim://spine?size={size}&fps=15&quanta={quanta:g}&realtime=0&clean=1"
           f"&scenario={scenario}&seed=1")
    source = open_sim(url)
    frames: list[Frame] = []
    try:
        while len(frames) < count:
            frame = source.read(1.0)
            if frame is not None:
                frames.append(frame)
                progress(len(frames), count, f"rendering {scenario}")
    finally:
        source.close()
    return frames


def dicom_frames(path: Path, quanta: float, count: int) -> list[Frame]:
    import pydicom

    ds = pydicom.dcmread(path)
    cine = ds.pixel_array
    if cine.ndim == 2:
        cine = cine[None]
    spacing = tuple(float(v) for v in ds.get("PixelSpacing", (0.25, 0.25)))
    frames = []
    for k, image in enumerate(cine[:count]):
        pixels = np.ascontiguousarray(image.astype(np.uint16))
        pixels.flags.writeable = False
        frames.append(Frame(pixels, k, k / 15.0, 0, spacing))  # type: ignore[arg-type]
    return add_poisson_noise(frames, quanta, seed=1)


def evaluate(label: str, frames: list[Frame], slow: int) -> dict:
    t0 = time.perf_counter()
    results = run_baselines(frames, slow, progress, stage_factory=Denoiser)
    den = Denoiser()
    den.warm_up(frames[0].shape)
    for frame in frames[:3]:
        den.process(frame.pixels)
    results["_meta"] = {"frames": len(frames), "shape": list(frames[0].shape),
                        "denoiser_state_bytes": den.state_bytes,
                        "seconds": round(time.perf_counter() - t0, 1)}
    print(f"\r{label}: done in {results['_meta']['seconds']} s" + " " * 30, file=sys.stderr)
    return results


def print_table(all_results: dict[str, dict]) -> None:
    head = (f"{'source':<18}{'method':<19}{'PSNR dB':>8}{'SSIM':>8}{'subset PSNR':>12}"
            f"{'subset SSIM':>12}{'ms/frame':>10}{'n':>5}{'needleCNR':>10}")
    print(head)
    print("-" * len(head))
    for source, results in all_results.items():
        psnr_in = next((r.get("psnr_in_db") for r in results.values() if "psnr_in_db" in r), None)
        print(f"{source:<18}{'(noisy input)':<19}{psnr_in if psnr_in is not None else '':>8}")
        for name, r in results.items():
            if name.startswith("_"):
                continue
            print(f"{'':<18}{name:<19}{r.get('psnr_out_db', ''):>8}{r.get('ssim_out', ''):>8}"
                  f"{r.get('psnr_out_db_subset', ''):>12}{r.get('ssim_out_subset', ''):>12}"
                  f"{r.get('ms_per_frame', ''):>10}{r.get('frames', ''):>5}"
                  f"{r.get('needle_cnr_retained', ''):>10}")
        print(f"{'':<18}state bytes: {results['_meta']['denoiser_state_bytes']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--slow", type=int, default=8, help="frames for the NLM baselines")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--quanta", type=float, default=50.0)
    parser.add_argument("--dicom", type=Path, default=DEFAULT_DICOM)
    parser.add_argument("--only", choices=("clean-spine", "fusion-hardware", "dicom"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    all_results: dict[str, dict] = {}
    for scenario in ("clean-spine", "fusion-hardware"):
        if args.only in (None, scenario):
            frames = sim_frames(scenario, args.size, args.quanta, args.frames)
            all_results[scenario] = evaluate(scenario, frames, args.slow)
            del frames
    if args.only in (None, "dicom"):
        if args.dicom.exists():
            frames = dicom_frames(args.dicom, args.quanta, args.frames)
            all_results["coronary_cine"] = evaluate("coronary cine", frames, args.slow)
        else:
            print(f"skipping the DICOM cine: {args.dicom} not found", file=sys.stderr)
    print_table(all_results)
    if args.json:
        args.json.write_text(json.dumps(all_results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""The ``fluoro`` command as a user runs it: a real process, real exit codes, real output."""

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import cv2
import pytest
from conftest import assert_one_error_line
from conftest import run_fluoro as fluoro

REPO = Path(__file__).resolve().parents[2]
FAST_SIM = "sim://spine?size=256&realtime=0"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "--source", "nosuch://thing"], ["nosuch://thing", "unknown source scheme"]),
        (["run", "--source", "just-a-word"], ["just-a-word", "expected"]),
        (["run", "--source", "sim://spine?fps=abc"], ["fps"]),
        (["run", "--source", "sim://spine?scenario=knee"], ["scenario", "knee"]),
        (["run", "--source", "sim://spine?colour=blue"], ["colour"]),
        (["run", "--frames", "-5"], ["--frames", "-5"]),
        (["run", "--frames", "ten"], ["--frames", "ten"]),
        (["run", "--seconds", "0"], ["--seconds"]),
        (["bench", "--size", "7"], ["--size"]),
        (["bench", "--fps", "-30"], ["--fps"]),
        (["run", "--no-such-option"], ["--no-such-option"]),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_2(args, words):
    assert_one_error_line(fluoro(*args), *words)


def test_run_headless_summary_counts_frames_and_dose():
    result = fluoro("run", "--headless", "--frames", "40", "--source", FAST_SIM)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "40 frames received" in out
    kar = float(out.split("Ka,r ")[1].split()[0])
    assert kar > 0
    assert "BEAM" in result.stderr or "ENDED" in result.stderr  # the live line was shown


def test_run_says_it_is_headless_without_a_display():
    result = fluoro("run", "--frames", "5", "--source", FAST_SIM)
    assert result.returncode == 0
    assert "no display found; running headless" in result.stderr


@pytest.mark.slow
def test_default_run_90_frames_real_time():
    """The issue's acceptance command, on the default 1024² real-time simulated C-arm."""
    result = fluoro("run", "--headless", "--frames", "90")
    assert result.returncode == 0, result.stderr
    assert "90 frames received" in result.stdout
    assert float(result.stdout.split("Ka,r ")[1].split()[0]) > 0
    assert float(result.stdout.split("DAP ")[1].split()[0]) > 0


def test_seconds_bounds_a_run():
    result = fluoro("run", "--headless", "--seconds", "1.5",
                    "--source", "sim://spine?size=256&realtime=1")
    assert result.returncode == 0, result.stderr
    received = int(result.stdout.split(" frames received")[0].split()[-1])
    assert 0 < received < 60  # 1.5 s of a 15 pulses/s source, beam-off gaps included


def test_bench_passthrough_json_contract(tmp_path):
    out = tmp_path / "bench.json"
    pictures = tmp_path / "pictures"
    result = fluoro("bench", "--size", "256", "--frames", "60", "--fps", "30", "--passthrough",
                    "--scenario", "fusion-hardware", "--json", str(out),
                    "--save-frames", str(pictures))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["size"] == [256, 256] and report["frames"] == 60
    assert report["scenario"] == "fusion-hardware" and report["fps_target"] == 30
    assert report["throughput_fps"] > 0
    assert set(report["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    assert {"dose", "passthrough"} <= set(report["stages_ms"])
    dose = report["dose"]
    assert dose["pulses_logged"] == dose["pulses_emitted"] > 0
    assert dose["kar_mgy"] == pytest.approx(dose["kar_truth_mgy"], rel=1e-3)
    assert dose["dap_gycm2"] == pytest.approx(dose["dap_truth_gycm2"], rel=1e-3)
    for absent in ("denoise", "tracking", "baselines"):  # not measured: not present
        assert absent not in report
    images = sorted(pictures.glob("*.png"))
    assert images, "bench --save-frames wrote no picture"
    assert cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE).shape == (256, 256)


def test_bench_scores_denoise_and_tracking_against_the_truth(tmp_path):
    out = tmp_path / "bench.json"
    result = fluoro("bench", "--size", "256", "--frames", "45", "--fps", "15",
                    "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert {"denoise", "track", "dose"} <= set(report["stages_ms"])
    denoise = report["denoise"]
    assert denoise["psnr_out_db"] > denoise["psnr_in_db"] + 3  # it really denoises
    assert 0 < denoise["ssim_in"] < denoise["ssim_out"] <= 1
    # estimate (float32) + counts (uint8) + the previous frame (uint16) + a 128² float32 grid
    assert denoise["state_bytes"] == 256 * 256 * 7 + 128 * 128 * 4
    assert "denoise: PSNR" in result.stdout + result.stderr
    tracking = report["tracking"]
    # scored against the truth both ways: frames with the needle and frames without it. No
    # detection rate is claimed here (today this run detects none): at 256² the pixels are
    # 1 mm and the 0.72 mm needle is about a pixel wide; tests/fluoro/imaging/test_needle_sim.py
    # scores the tracker at 0.5 mm pixels. What must hold at any size: it invents no needle
    assert tracking["frames_visible"] > 0 and tracking["frames_without_needle"] > 0, tracking
    assert tracking["false_positive_rate"] <= 0.05
    assert "baselines" not in report  # not asked for: not present


def test_bench_adds_noise_to_a_real_cine_and_scores_baselines(tmp_path, shared_data):
    out = tmp_path / "bench.json"
    cine = shared_data / "xray" / "xa_coronary_cine_512.dcm"
    result = fluoro("bench", "--source", f"dicom:{cine}", "--quanta", "50", "--frames", "12",
                    "--baselines", "--baseline-frames", "2", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["denoise"]["psnr_out_db"] > report["denoise"]["psnr_in_db"]
    assert {"recursive_a0.25", "opencv_nlm_multi"} <= set(report["baselines"])
    assert report["baselines"]["opencv_nlm_multi"]["ms_per_frame"] > 0
    # the stage's own entry runs it as the pipeline does, so it scores as the quality pass
    assert report["baselines"]["denoise"]["psnr_out_db"] == report["denoise"]["psnr_out_db"]


def test_the_installed_fluoro_command_is_the_cli_main():
    """The console script (what `make run` starts) and `python -m fluoro` are one command."""
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "fluoro"]
    from fluoro.cli.main import main

    assert script.load() is main
    result = subprocess.run([str(Path(sys.executable).parent / "fluoro"), "--version"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("fluoro "), result.stderr


def test_bench_never_loads_qt():
    code = ("import sys; from fluoro.cli.main import main; "
            "rc = main(['bench', '--size', '128', '--frames', '10', '--fps', '30']); "
            "assert 'PySide6' not in sys.modules and 'pyqtgraph' not in sys.modules, 'Qt loaded'; "
            "sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=240, cwd=REPO)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_screenshot_renders_the_window_offscreen_and_closes_the_procedure(tmp_path):
    from fluoro.doselog import DoseLog

    png = tmp_path / "live.png"
    db = tmp_path / "dose.sqlite"
    result = fluoro("run", "--frames", "40", "--source", "sim://spine?size=512&realtime=0",
                    "--screenshot", str(png), "--dose-log", str(db))
    assert result.returncode == 0, result.stderr
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] >= 600 and image.shape[1] >= 1000
    assert image.std() > 20  # not a blank window
    with DoseLog.open_readonly(db) as log:
        (procedure,) = log.procedures()
    assert procedure.complete and procedure.pulses > 30

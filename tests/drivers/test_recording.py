"""Recording and replay: bit-exact, readable after a crash, open to other programs' streams."""

import json
import time

import numpy as np
import pytest
from conftest import read_all, run_fluoro

from drivers import open_source
from drivers.recording import Recorder
from fluoro.errors import InputError, SourceError
from fluoro.frame import Frame, NeedleTruth, Truth


def test_300_simulated_frames_replay_bit_exactly(tmp_path):
    url = "sim://spine?size=128&realtime=0&frames=300&clean=1&lose=0.02&scenario=fusion-hardware"
    original = read_all(open_source(url))
    recorder = Recorder(tmp_path / "rec")
    for frame in original:
        recorder.put(frame, block=True)
    recorder.close()
    assert recorder.frames_written == 300 and recorder.frames_skipped == 0
    replayed = read_all(open_source(f"replay:{tmp_path / 'rec'}?realtime=0"))
    assert len(replayed) == len(original) == 300
    for a, b in zip(original, replayed, strict=True):
        assert np.array_equal(a.pixels, b.pixels) and b.pixels.dtype == np.uint16
        assert (a.seq, a.t_s, a.pixel_spacing_mm, a.exposure) == (b.seq, b.t_s,
                                                                   b.pixel_spacing_mm, b.exposure)
        assert (a.truth.needle_visible, a.truth.tip_px, a.truth.hub_px, a.truth.kar_mgy,
                a.truth.dap_gycm2) == (b.truth.needle_visible, b.truth.tip_px, b.truth.hub_px,
                                       b.truth.kar_mgy, b.truth.dap_gycm2)
        assert np.array_equal(a.truth.clean, b.truth.clean)


def test_fluoro_run_records_and_the_recording_replays_with_the_same_dose(tmp_path):
    rec = tmp_path / "session"
    first = run_fluoro("run", "--headless", "--frames", "60", "--source",
                       "sim://spine?size=128&realtime=0", "--record", str(rec),
                       "--dose-log", str(tmp_path / "a.sqlite"))
    assert first.returncode == 0, first.stderr
    assert "60 frames in" in first.stdout
    again = run_fluoro("run", "--headless", "--source", f"replay:{rec}?realtime=0",
                       "--dose-log", str(tmp_path / "b.sqlite"))
    assert again.returncode == 0, again.stderr
    def dose_line(out):
        return [s for s in out.splitlines() if "Ka,r" in s]

    assert dose_line(first.stdout) and dose_line(first.stdout) == dose_line(again.stdout)


def test_a_stream_written_by_another_program_replays_with_its_timing(tmp_path):
    frames = np.arange(4 * 6 * 5, dtype=np.uint16).reshape(4, 6, 5)
    np.save(tmp_path / "frames.npy", frames)
    with (tmp_path / "frames.jsonl").open("w") as f:
        for i in range(4):
            f.write(json.dumps({"seq": 10 + i, "t_s": 0.1 * i, "pixel_spacing_mm": [0.2, 0.3],
                                "exposure": None, "truth": None}) + "\n")
    source = open_source(f"replay:{tmp_path}")
    assert source.info.nominal_fps == pytest.approx(10.0)
    t0 = time.monotonic()
    got = read_all(source)
    assert time.monotonic() - t0 >= 0.27  # original timing: 3 intervals of 0.1 s
    assert [f.seq for f in got] == [10, 11, 12, 13] and got[2].pixel_spacing_mm == (0.2, 0.3)
    assert np.array_equal(got[3].pixels, frames[3])


def test_a_recording_cut_short_by_a_crash_still_replays_what_was_written(tmp_path):
    frames = read_all(open_source("sim://spine?size=128&realtime=0&frames=40&clean=0"))
    recorder = Recorder(tmp_path / "rec")
    for frame in frames:
        recorder.put(frame, block=True)
    recorder.close()
    # a crash after the header was rewritten but before the last metadata line was flushed
    meta = (tmp_path / "rec" / "frames.jsonl").read_text().splitlines()
    (tmp_path / "rec" / "frames.jsonl").write_text("\n".join(meta[:-3]) + "\n")
    replayed = read_all(open_source(f"replay:{tmp_path / 'rec'}?realtime=0"))
    assert len(replayed) == 37


def test_bad_recordings_are_refused_with_a_clear_line(tmp_path):
    with pytest.raises(SourceError, match="no such recording folder"):
        open_source(f"replay:{tmp_path / 'nope'}")
    with pytest.raises(SourceError, match=r"missing frames\.npy"):
        open_source(f"replay:{tmp_path}")
    (tmp_path / "frames.npy").write_bytes(b"not numpy")
    (tmp_path / "frames.jsonl").write_text("{}\n")
    with pytest.raises(SourceError, match="unreadable recording"):
        open_source(f"replay:{tmp_path}")
    with pytest.raises(SourceError, match="speed"):
        open_source(f"replay:{tmp_path}?speed=2")
    Recorder(tmp_path / "taken").close()
    with pytest.raises(InputError, match="already holds a recording"):
        Recorder(tmp_path / "taken")


def test_several_needles_in_the_truth_replay_and_a_single_needle_stays_in_the_old_format(
        tmp_path):
    pixels = np.zeros((8, 8), np.uint16)
    pixels.flags.writeable = False
    several = Truth(True, (5.0, 4.0), (0.0, 4.0), 0.1, 0.01, None,
                    (NeedleTruth((2.0, 7.0), None), NeedleTruth((6.5, 1.5), (7.0, 0.0))))
    single = Truth(True, (5.0, 4.0), None, 0.1, 0.01)
    recorder = Recorder(tmp_path / "rec")
    for seq, truth in enumerate((several, single)):
        recorder.put(Frame(pixels, seq, seq / 15, 0, (0.2, 0.2), None, truth), block=True)
    recorder.close()
    lines = (tmp_path / "rec" / "frames.jsonl").read_text().splitlines()
    assert "others" in json.loads(lines[0])["truth"]
    assert "others" not in json.loads(lines[1])["truth"]  # as every earlier recording
    got = read_all(open_source(f"replay:{tmp_path / 'rec'}?realtime=0"))
    assert got[0].truth.others == several.others and got[1].truth.others == ()

"""fluoro run with the emulated DIAMENTOR on a real pseudo-terminal: the meter's DAP is logged
through injected garbage and a disconnect/reconnect, and the gap is recorded."""

import json
import subprocess
import sys
import time

import pytest
from conftest import REPO, assert_one_error_line, run_fluoro

from drivers.diamentor.emulator import Emulator

pytestmark = pytest.mark.slow


def test_meter_dap_is_logged_within_0_1_percent_through_faults(tmp_path):
    db = tmp_path / "dose.sqlite"
    with Emulator(0.02, beam_on=True, link_path=str(tmp_path / "ttyDIAMENTOR"), seed=3) as meter:
        child = subprocess.Popen(
            [sys.executable, "-m", "fluoro", "run", "--headless", "--seconds", "9",
             "--source", "sim://spine?size=128", "--dose-log", str(db),
             "--dose-source", f"serial:{meter.port_path}?protocol=diamentor&poll_hz=10"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(4.0)  # start-up (kernels from cache) and a few readings
            meter.inject("garbage", 3)
            meter.inject("partial", 1)
            time.sleep(1.0)
            meter.disconnect(1.0)
            time.sleep(3.0)
            meter.set_beam(False)  # the total is final before the session ends
            out, err = child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
        delivered = meter.delivered_dap_gycm2
    assert child.returncode == 0, err
    assert "gap" in out
    report = json.loads(run_fluoro("dose", "report", "--db", str(db), "--json").stdout)
    (procedure,) = report["procedures"]
    record = procedure["meter"]
    assert record["gaps"] >= 1 and record["events"].get("disconnected", 0) >= 1
    assert record["events"].get("garbage", 0) >= 1
    assert delivered > 0.05
    assert record["dap_total_gycm2"] == pytest.approx(delivered, rel=1e-3)


def test_a_bad_dose_source_is_one_line(tmp_path):
    result = run_fluoro("run", "--headless", "--frames", "5", "--source",
                        "sim://spine?size=128&realtime=0", "--dose-source",
                        f"serial:{tmp_path}/no-such-port?protocol=diamentor")
    assert_one_error_line(result, "no-such-port")

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_mirrored_two_replicas_match_one_device():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run(
        [sys.executable, str(HERE / "mirrored_parity.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == [1, 2]
    assert result["max_update"] > 1e-3  # the step really moved the weights
    assert result["max_weight_diff"] < 1e-5, result
    single, mirrored = result["single_logs"], result["mirrored_logs"]
    for key in ("loss", "ce_loss", "kd_loss", "feature_loss", "accuracy"):
        assert mirrored[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key

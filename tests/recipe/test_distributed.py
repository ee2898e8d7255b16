import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "scripts"


def test_mirrored_two_replicas_match_one_device():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "mirrored_parity.py")],
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


def test_mirrored_multi_teacher_gate_matches_one_device():
    """Two teachers combined by a learned gate: its auxiliary loss is replica-scaled like
    the terms, so one SGD step on 2 replicas equals one on 1 device."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "mirrored_parity.py"), "--multi-teacher"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == [1, 2]
    assert result["max_update"] > 1e-3 and result["max_gate_update"] > 1e-4, result
    assert result["max_weight_diff"] < 1e-5, result  # student and gate weights
    single, mirrored = result["single_logs"], result["mirrored_logs"]
    for key in ("loss", "ce_loss", "kd_loss", "gate_loss", "accuracy"):
        assert mirrored[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key


def test_kd_loss_family_reduces_correctly_on_two_replicas():
    """Each KD loss: one SGD step on 2 replicas equals one on 1 device (per-example losses),
    or the mean of the two half-batch steps (batch-relational RKD); see the script."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "loss_reduction_parity.py")],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.pop("replicas") == [1, 2]
    assert sorted(result) == ["at", "dkd", "kd", "kd_std", "nkd", "rkd_angle", "rkd_distance"]
    for name, outcome in result.items():
        assert outcome["max_update"] > 1e-2, name  # the step really moved the weights
        assert outcome["max_weight_diff"] < 1e-5, (name, outcome)
        expected, mirrored = outcome["expected_logs"], outcome["mirrored_logs"]
        for key in ("loss", "ce_loss", "term_loss"):
            assert mirrored[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), (name, key)
        if name.startswith("rkd"):
            # Relations within each replica's half, not across the global batch.
            assert abs(outcome["global_batch_term_loss"] - mirrored["term_loss"]) > 1e-3, name

import pytest
from helpers import SCRIPTS, last_json_line, run_python


@pytest.mark.slow  # a subprocess: TensorFlow start-up plus two fits
def test_mirrored_two_replicas_match_one_device():
    proc = run_python([SCRIPTS / "mirrored_parity.py"], timeout=300, check=True)
    result = last_json_line(proc.stdout)
    assert result["replicas"] == [1, 2]
    assert result["max_update"] > 1e-3  # the step really moved the weights
    assert result["max_weight_diff"] < 1e-5, result
    single, mirrored = result["single_logs"], result["mirrored_logs"]
    for key in ("loss", "ce_loss", "kd_loss", "feature_loss", "accuracy"):
        assert mirrored[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key


@pytest.mark.slow  # a subprocess: TensorFlow start-up plus two fits
def test_mirrored_multi_teacher_gate_matches_one_device():
    """Two teachers combined by a learned gate: its auxiliary loss is replica-scaled like
    the terms, so one SGD step on 2 replicas equals one on 1 device."""
    proc = run_python([SCRIPTS / "mirrored_parity.py", "--multi-teacher"], timeout=300, check=True)
    result = last_json_line(proc.stdout)
    assert result["replicas"] == [1, 2]
    assert result["max_update"] > 1e-3 and result["max_gate_update"] > 1e-4, result
    assert result["max_weight_diff"] < 1e-5, result  # student and gate weights
    single, mirrored = result["single_logs"], result["mirrored_logs"]
    for key in ("loss", "ce_loss", "kd_loss", "gate_loss", "accuracy"):
        assert mirrored[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key


@pytest.mark.slow  # 21 s on 2 cores
def test_kd_loss_family_reduces_correctly_on_two_replicas():
    """Each KD loss: one SGD step on 2 replicas equals one on 1 device (per-example losses,
    also with unlabelled rows split unevenly), or the mean of the two half-batch steps
    (batch-relational RKD); see the script."""
    proc = run_python([SCRIPTS / "loss_reduction_parity.py"], timeout=400, check=True)
    result = last_json_line(proc.stdout)
    assert result.pop("replicas") == [1, 2]
    assert sorted(result) == [
        "at",
        "dkd",
        "dkd+unlabelled",  # rows without a label, 4 on one replica and 1 on the other
        "kd",
        "kd+unlabelled",
        "kd_std",
        "logit_mse",
        "multi_label+unlabelled",  # a multi-label Distiller: rows of UNLABELLED
        "multi_label_kd",
        "nkd",
        "regression+unlabelled",  # a regression Distiller: NaN rows
        "regression_bounded+unlabelled",  # the teacher-bounded loss, which reads labels
        "regression_huber",
        "rkd_angle",
        "rkd_distance",
    ]
    for name, outcome in result.items():
        assert outcome["max_update"] > 1e-2, name  # the step really moved the weights
        assert outcome["max_weight_diff"] < 1e-5, (name, outcome)
        expected, mirrored = outcome["expected_logs"], outcome["mirrored_logs"]
        for key in ("loss", "ce_loss", "term_loss"):
            assert mirrored[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), (name, key)
        if name.startswith("rkd"):
            # Relations within each replica's half, not across the global batch.
            assert abs(outcome["global_batch_term_loss"] - mirrored["term_loss"]) > 1e-3, name

"""Every loss resolves by name (``losses.get``) and round-trips its config."""

import pytest
from helpers import run_serialization_test

import kdzoo
from kdzoo import losses


def test_losses_serialise_and_resolve_by_name():
    loss = losses.SoftTargetKLDivergence(temperature=3.0)
    clone = run_serialization_test(loss)
    assert isinstance(clone, losses.SoftTargetKLDivergence) and clone.temperature == 3.0
    assert isinstance(losses.get("kd", temperature=2.0), losses.SoftTargetKLDivergence)
    with pytest.raises(
        ValueError,
        match="Valid names: at, ce, dkd, feature_cosine, feature_mse, kd, kd_multi_label, kd_std, "
        "logit_mse, nkd, rkd_angle, rkd_distance, teacher_bounded, teacher_huber, teacher_mse.",
    ):
        losses.get("dkd_v9")


NEW = {
    "at": (losses.AttentionTransfer, {"power": 1.0}),
    "rkd_distance": (losses.RKDDistance, {}),
    "rkd_angle": (losses.RKDAngle, {}),
    "dkd": (losses.DecoupledKD, {"alpha": 0.5, "beta": 4.0, "temperature": 3.0}),
    "kd_std": (losses.LogitStandardizedKLDivergence, {"temperature": 1.5}),
    "nkd": (losses.NonTargetKLDivergence, {"temperature": 3.0}),
    "logit_mse": (losses.LogitMSE, {}),
    "kd_multi_label": (losses.MultiLabelKLDivergence, {"temperature": 3.0}),
    "teacher_bounded": (losses.TeacherBoundedRegression, {"margin": 0.5}),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_every_new_loss_resolves_by_name_and_round_trips_its_config(name):
    cls, kwargs = NEW[name]
    assert name in losses.names()
    loss = losses.get(name, **kwargs)
    assert type(loss) is cls
    clone = run_serialization_test(loss)  # same class and config, via JSON and from_config
    for key, value in kwargs.items():
        assert clone.get_config()[key] == value
    term = kdzoo.LossTerm(name, weight=1.0)
    assert isinstance(term.loss, cls)

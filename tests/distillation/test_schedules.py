"""Schedules and the DistillationScheduler callback."""

import json

import numpy as np
import pytest
import tensorflow as tf
from helpers import av_pair, run_serialization_test

import kdzoo
from kdzoo.distillation import (
    Constant,
    Cosine,
    DistillationScheduler,
    Exponential,
    Linear,
    default_terms,
)


def test_schedule_values_and_serialisation():
    warm = Linear(0.0, 0.5, epochs=4)
    assert [warm(e) for e in range(6)] == pytest.approx([0, 0.125, 0.25, 0.375, 0.5, 0.5])
    decay = Exponential(8.0, 2.0, epochs=2)
    assert [decay(e) for e in range(4)] == pytest.approx([8.0, 4.0, 2.0, 2.0])
    cos = Cosine(1.0, 0.0, epochs=2)
    assert [cos(e) for e in range(3)] == pytest.approx([1.0, 0.5, 0.0])
    assert Constant(3)(7) == 3.0
    for schedule in (warm, decay, cos, Constant(2.0)):
        run_serialization_test(schedule)  # via JSON: same class and config
    with pytest.raises(ValueError, match="epochs"):
        Linear(0, 1, epochs=0)
    with pytest.raises(ValueError, match="> 0"):
        Exponential(0.0, 1.0, epochs=3)
    # NumPy numbers (e.g. from a config array) work and serialise as Python numbers.
    numpy_made = Linear(np.float32(0.0), 0.5, epochs=np.int64(4))
    assert type(numpy_made.epochs) is int and numpy_made(2) == warm(2)
    json.dumps(numpy_made.get_config())
    scheduler = DistillationScheduler(weights={"kd": np.float32(0.5)})
    assert scheduler.weights["kd"](3) == 0.5
    for bad in (True, 2.5, "4"):
        with pytest.raises(ValueError, match="epochs"):
            Linear(0, 1, epochs=bad)


def test_scheduler_sets_weights_and_temperature_inside_a_traced_step(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    terms = default_terms(temperature=4.0, ce_weight=1.0, kd_weight=1.0)
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="sgd")
    scheduler = DistillationScheduler(
        weights={"kd": Linear(0.0, 0.5, epochs=2)}, temperature=Exponential(8.0, 2.0, epochs=2)
    )
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    history = distiller.fit(data, epochs=3, verbose=0, callbacks=[scheduler])
    assert scheduler.history["kd_weight"] == pytest.approx([0.0, 0.25, 0.5])
    assert scheduler.history["temperature"] == pytest.approx([8.0, 4.0, 2.0])
    assert history.history["temperature"] == pytest.approx([8.0, 4.0, 2.0])
    kd_term = [t for t in distiller.loss_terms if t.name == "kd"][0]
    assert float(kd_term.loss.temperature_variable.numpy()) == pytest.approx(2.0)
    # The reported total equals ce + weight * kd with the scheduled weight, epoch by epoch.
    h = history.history
    for epoch, w in enumerate([0.0, 0.25, 0.5]):
        expected = 1.0 * h["ce_loss"][epoch] + w * h["kd_loss"][epoch]  # ce_weight=1
        assert h["loss"][epoch] == pytest.approx(expected, rel=1e-4)
    # The config round-trips through JSON.
    config = json.loads(json.dumps(scheduler.get_config()))
    again = DistillationScheduler.from_config(config)
    assert again.weights["kd"].get_config() == scheduler.weights["kd"].get_config()
    assert np.isclose(again.temperature(1), 4.0)


def test_scheduler_rejects_unknown_terms(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = av_pair()
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    distiller.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"No loss term\(s\) \['kdd'\]"):
        distiller.fit(
            x, y, epochs=1, verbose=0, callbacks=[DistillationScheduler(weights={"kdd": 0.1})]
        )

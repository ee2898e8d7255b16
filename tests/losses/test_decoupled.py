"""The published KD loss family (AT, RKD, DKD, logit-standardised KD, non-target KD) against
independent NumPy references written from the papers' formulas, plus their composition in
a Distiller. Distributed reduction is checked by tests/loss_reduction_parity.py."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import kdzoo
from kdzoo import losses, models
from kdzoo.models.layers import feature_model

RNG = np.random.default_rng(7)
TEACHER = RNG.normal(0, 2.0, (5, 4)).astype("float32")
STUDENT = RNG.normal(0, 1.0, (5, 4)).astype("float32")
LABELS = np.array([0, 3, 1, 1, 2])
WEIGHTS = np.array([1.0, 0.0, 2.0, 0.5, 1.5], "float32")


def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_kl(p, q):
    return float(np.sum(p * np.log(p / q)))


def huber(x):
    return 0.5 * x * x if abs(x) <= 1 else abs(x) - 0.5


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------- references from the papers
def ref_dkd(t, s, y, alpha, beta, tau):
    """Zhao et al. 2022, eq. (1)-(4): binary target/rest KL plus the non-target KL."""
    out = []
    for ti, si, yi in zip(t.astype("float64"), s.astype("float64"), y, strict=True):
        p, q = np_softmax(ti / tau), np_softmax(si / tau)
        b_t, b_s = np.array([p[yi], 1 - p[yi]]), np.array([q[yi], 1 - q[yi]])
        rest = [k for k in range(len(p)) if k != yi]
        p_hat, q_hat = p[rest] / p[rest].sum(), q[rest] / q[rest].sum()
        out.append(tau**2 * (alpha * np_kl(b_t, b_s) + beta * np_kl(p_hat, q_hat)))
    return np.array(out)


def ref_non_target(t, s, y, tau):
    """Softmax over the non-target logits only (the target dropped before the softmax)."""
    out = []
    for ti, si, yi in zip(t.astype("float64"), s.astype("float64"), y, strict=True):
        keep = np.arange(len(ti)) != yi
        out.append(tau**2 * np_kl(np_softmax(ti[keep] / tau), np_softmax(si[keep] / tau)))
    return np.array(out)


def ref_standardised_kd(t, s, tau):
    def z(v):
        return (v - v.mean()) / v.std()  # population std, as in Sun et al. 2024

    return np.array(
        [
            tau**2 * np_kl(np_softmax(z(ti) / tau), np_softmax(z(si) / tau))
            for ti, si in zip(t.astype("float64"), s.astype("float64"), strict=True)
        ]
    )


def ref_attention(t_map, s_map, p=2.0):
    """Zagoruyko & Komodakis 2017, eq. (2): ‖Q_S/‖Q_S‖ − Q_T/‖Q_T‖‖₂, Q = Σ_c |A_c|^p."""
    out = []
    for a_t, a_s in zip(t_map.astype("float64"), s_map.astype("float64"), strict=True):
        q = []
        for a in (a_s, a_t):
            flat = np.array(
                [
                    sum(abs(a[h, w, c]) ** p for c in range(a.shape[-1]))
                    for h in range(a.shape[0])
                    for w in range(a.shape[1])
                ]
            )
            q.append(flat / np.sqrt(np.sum(flat**2)))
        out.append(np.sqrt(np.sum((q[0] - q[1]) ** 2)))
    return np.array(out)


def ref_rkd_distance(t, s):
    """Park et al. 2019, eq. (4)-(5), averaged over ordered pairs of distinct examples."""
    t, s = t.astype("float64"), s.astype("float64")
    pairs = [(i, j) for i in range(len(t)) for j in range(len(t)) if i != j]

    def potentials(x):
        d = {(i, j): np.linalg.norm(x[i] - x[j]) for i, j in pairs}
        mu = np.mean(list(d.values()))
        return {k: v / mu for k, v in d.items()}

    pt, ps = potentials(t), potentials(s)
    return np.mean([huber(ps[k] - pt[k]) for k in pairs])


def ref_rkd_angle(t, s):
    """Park et al. 2019, eq. (6)-(7): cosine of the angle at x_j, over distinct triplets."""
    t, s = t.astype("float64"), s.astype("float64")

    def cos(x, i, j, k):
        e_ij = (x[i] - x[j]) / np.linalg.norm(x[i] - x[j])
        e_kj = (x[k] - x[j]) / np.linalg.norm(x[k] - x[j])
        return float(e_ij @ e_kj)

    triplets = list(itertools.permutations(range(len(t)), 3))
    return np.mean([huber(cos(s, *c) - cos(t, *c)) for c in triplets])


# ---------------------------------------------------------------- DKD
@pytest.mark.parametrize("alpha,beta,tau", [(1.0, 8.0, 4.0), (0.5, 2.0, 1.0), (1.0, 0.0, 2.0)])
def test_dkd_matches_numpy(alpha, beta, tau):
    ref = ref_dkd(TEACHER, STUDENT, LABELS, alpha, beta, tau)
    per_example = to_numpy(losses.decoupled_kd(TEACHER, STUDENT, LABELS, alpha, beta, tau))
    np.testing.assert_allclose(per_example, ref, rtol=1e-4, atol=1e-6)
    loss = losses.DecoupledKD(alpha=alpha, beta=beta, temperature=tau)
    target = losses.teacher_with_labels(TEACHER, LABELS)
    np.testing.assert_allclose(float(loss(target, STUDENT)), ref.mean(), rtol=1e-4)
    weighted = float(loss(target, STUDENT, sample_weight=WEIGHTS))
    np.testing.assert_allclose(weighted, np.sum(ref * WEIGHTS) / 5, rtol=1e-4)


def test_dkd_decomposes_classic_kd():
    # Zhao et al. eq. (3): KD = TCKD + (1 − p^T_y) · NCKD, per example.
    tau = 3.0
    tckd = to_numpy(losses.decoupled_kd(TEACHER, STUDENT, LABELS, 1.0, 0.0, tau))
    nckd = to_numpy(losses.decoupled_kd(TEACHER, STUDENT, LABELS, 0.0, 1.0, tau))
    p_target = np_softmax(TEACHER.astype("float64") / tau)[np.arange(5), LABELS]
    kd = to_numpy(losses.soft_target_kl_divergence(TEACHER, STUDENT, tau))
    np.testing.assert_allclose(tckd + (1 - p_target) * nckd, kd, rtol=1e-4)


def test_dkd_accepts_column_labels_and_rejects_bad_targets():
    loss = losses.DecoupledKD()
    flat = float(loss({"teacher": TEACHER, "labels": LABELS}, STUDENT))
    column = float(loss({"teacher": TEACHER, "labels": LABELS[:, None]}, STUDENT))
    assert flat == pytest.approx(column)
    with pytest.raises(ValueError, match="teacher_with_labels"):
        loss(TEACHER, STUDENT)
    with pytest.raises(ValueError, match=r"labels.*\(5, 4\)"):
        loss({"teacher": TEACHER, "labels": np.eye(4)[[0, 1, 2, 3, 0]]}, STUDENT)
    with pytest.raises(ValueError, match=r"\(5, 4\).*\(5, 3\)"):
        loss({"teacher": TEACHER, "labels": LABELS}, STUDENT[:, :3])
    for bad in ({"alpha": -1.0}, {"beta": "8"}, {"temperature": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            losses.DecoupledKD(**bad)


# ---------------------------------------------------------------- non-target KD
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_non_target_kl_matches_numpy_and_ignores_the_target_logit(tau):
    ref = ref_non_target(TEACHER, STUDENT, LABELS, tau)
    np.testing.assert_allclose(
        to_numpy(losses.non_target_kl_divergence(TEACHER, STUDENT, LABELS, tau)), ref, rtol=1e-4
    )
    loss = losses.NonTargetKLDivergence(temperature=tau)
    target = losses.teacher_with_labels(TEACHER, LABELS)
    np.testing.assert_allclose(
        float(loss(target, STUDENT, sample_weight=WEIGHTS)), np.sum(ref * WEIGHTS) / 5, rtol=1e-4
    )
    # The target logits (teacher's and student's) do not enter: change them, same loss.
    moved_s, moved_t = STUDENT.copy(), TEACHER.copy()
    moved_s[np.arange(5), LABELS] += 10.0
    moved_t[np.arange(5), LABELS] -= 5.0
    moved = float(loss(losses.teacher_with_labels(moved_t, LABELS), moved_s))
    assert moved == pytest.approx(ref.mean(), rel=1e-4)
    # ...whereas plain KD changes a lot.
    kd = losses.SoftTargetKLDivergence(tau)
    assert abs(float(kd(moved_t, moved_s)) - float(kd(TEACHER, STUDENT))) > 0.1


# ---------------------------------------------------------------- logit-standardised KD
@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_logit_standardized_kd_matches_numpy_and_is_scale_free(tau):
    ref = ref_standardised_kd(TEACHER, STUDENT, tau)
    per_example = to_numpy(losses.soft_target_kl_divergence(TEACHER, STUDENT, tau, True))
    np.testing.assert_allclose(per_example, ref, rtol=1e-4, atol=1e-6)
    loss = losses.LogitStandardizedKLDivergence(temperature=tau)
    np.testing.assert_allclose(float(loss(TEACHER, STUDENT)), ref.mean(), rtol=1e-4)
    option = losses.SoftTargetKLDivergence(temperature=tau, standardize=True)
    assert float(option(TEACHER, STUDENT)) == pytest.approx(float(loss(TEACHER, STUDENT)))
    # A student with the teacher's relations at another scale and offset costs nothing...
    rescaled = 0.1 * TEACHER + 3.0
    assert float(loss(TEACHER, rescaled)) == pytest.approx(0.0, abs=1e-5)
    # ...while plain KD penalises the scale gap.
    assert float(losses.SoftTargetKLDivergence(tau)(TEACHER, rescaled)) > 0.05
    z = to_numpy(losses.standardize_logits(TEACHER))
    np.testing.assert_allclose(z.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(-1), 1.0, rtol=1e-5)


# ---------------------------------------------------------------- attention transfer
def test_attention_transfer_matches_numpy_with_different_channels():
    t_map = RNG.normal(size=(3, 4, 5, 6)).astype("float32")
    s_map = RNG.normal(size=(3, 4, 5, 2)).astype("float32")
    for p in (2.0, 1.0):
        ref = ref_attention(t_map, s_map, p)
        np.testing.assert_allclose(
            to_numpy(losses.attention_transfer(t_map, s_map, p)), ref, rtol=1e-5
        )
    loss = losses.AttentionTransfer()
    ref = ref_attention(t_map, s_map)
    np.testing.assert_allclose(float(loss(t_map, s_map)), ref.mean(), rtol=1e-5)
    w = WEIGHTS[:3]
    np.testing.assert_allclose(
        float(loss(t_map, s_map, sample_weight=w)), np.sum(ref * w) / 3, rtol=1e-5
    )
    # Only the normalised map matters: rescaling the student's activations changes nothing.
    np.testing.assert_allclose(float(loss(t_map, 5.0 * s_map)), ref.mean(), rtol=1e-5)
    assert float(loss(t_map, t_map)) == pytest.approx(0.0, abs=1e-6)


def test_attention_transfer_gradient_is_finite_at_equal_maps_and_shapes_are_checked():
    t_map = tf.constant(RNG.normal(size=(2, 3, 3, 4)).astype("float32"))
    s_map = tf.Variable(t_map)
    with tf.GradientTape() as tape:
        value = losses.AttentionTransfer()(t_map, s_map)
    assert np.all(np.isfinite(tape.gradient(value, s_map).numpy()))
    with pytest.raises(ValueError, match=r"\(2, 3, 3, 4\).*\(2, 4, 3, 4\).*spatial"):
        losses.attention_transfer(t_map, np.zeros((2, 4, 3, 4)))
    with pytest.raises(ValueError, match="power"):
        losses.AttentionTransfer(power=0.5)


# ---------------------------------------------------------------- relational KD
def test_rkd_distance_and_angle_match_numpy_with_different_widths():
    t = RNG.normal(size=(6, 7)).astype("float32")
    s = RNG.normal(size=(6, 3)).astype("float32")
    for fn, cls, ref_fn in (
        (losses.rkd_distance, losses.RKDDistance, ref_rkd_distance),
        (losses.rkd_angle, losses.RKDAngle, ref_rkd_angle),
    ):
        ref = ref_fn(t, s)
        per_example = to_numpy(fn(t, s))
        # A batch value, repeated once per example.
        assert per_example.shape == (6,)
        np.testing.assert_allclose(per_example, np.full(6, ref), rtol=1e-4)
        np.testing.assert_allclose(float(cls()(t, s)), ref, rtol=1e-4)
        # sum_over_batch_size with weights: L_batch · mean(w).
        w = np.array([1.0, 0.0, 2.0, 0.5, 1.5, 1.0], "float32")
        np.testing.assert_allclose(float(cls()(t, s, sample_weight=w)), ref * w.mean(), rtol=1e-4)
        # Relations are invariant to scaling and translating the student's embedding.
        np.testing.assert_allclose(float(cls()(t, 4.0 * s + 1.0)), ref, rtol=1e-4)


def test_rkd_is_zero_for_a_matching_structure_and_refuses_small_batches():
    t = RNG.normal(size=(5, 4)).astype("float32")
    rotation, _ = np.linalg.qr(RNG.normal(size=(4, 4)))
    s = (2.0 * t @ rotation.astype("float32")) - 1.0  # same geometry, other basis and scale
    assert float(losses.RKDDistance()(t, s)) == pytest.approx(0.0, abs=1e-5)
    assert float(losses.RKDAngle()(t, s)) == pytest.approx(0.0, abs=1e-5)
    # Batches too small for any relation (tests/test_reliability_losses.py has the rest).
    with pytest.raises(ValueError, match="rkd_distance.*at least 3"):
        losses.RKDDistance()(t[:2], s[:2])
    with pytest.raises(ValueError, match="rkd_angle.*at least 3"):
        losses.RKDAngle()(t[:2], s[:2])
    with pytest.raises(ValueError, match="same batch size"):
        losses.RKDDistance()(t, s[:4])


def test_rkd_gradients_are_finite_with_duplicate_examples():
    t = tf.constant(RNG.normal(size=(4, 3)).astype("float32"))
    s = tf.Variable(np.repeat(RNG.normal(size=(2, 2)), 2, axis=0).astype("float32"))
    for loss in (losses.RKDDistance(), losses.RKDAngle()):
        with tf.GradientTape() as tape:
            value = loss(t, s)
        assert np.isfinite(float(value))
        assert np.all(np.isfinite(tape.gradient(value, s).numpy()))


# ---------------------------------------------------------------- temperature variable
@pytest.mark.parametrize("name", ["kd", "kd_std", "dkd", "nkd"])
def test_assigning_the_temperature_variable_changes_a_traced_loss_without_retracing(name):
    loss = losses.get(name, temperature=2.0)
    target = losses.teacher_with_labels(TEACHER, LABELS) if name in ("dkd", "nkd") else TEACHER
    step = tf.function(lambda: loss(target, STUDENT))
    at_two = float(step())
    loss.temperature_variable.assign(5.0)
    at_five = float(step())
    assert step.experimental_get_tracing_count() == 1
    assert loss.temperature == 5.0 and loss.get_config()["temperature"] == 5.0
    reference = losses.get(name, temperature=5.0)
    assert at_five == pytest.approx(float(reference(target, STUDENT)), rel=1e-5)
    assert abs(at_five - at_two) > 1e-3
    with pytest.raises(ValueError, match="temperature"):
        loss.temperature = -1.0


def test_one_temperature_variable_can_drive_several_losses():
    shared = keras.Variable(2.0, dtype="float32", trainable=False, name="kd_temperature")
    kd = losses.SoftTargetKLDivergence(temperature=shared)
    dkd = losses.DecoupledKD(temperature=shared)
    assert kd.temperature_variable is shared and dkd.temperature_variable is shared
    shared.assign(3.0)
    assert kd.temperature == dkd.temperature == 3.0
    with pytest.raises(ValueError, match="temperature"):
        losses.SoftTargetKLDivergence(temperature=keras.Variable(-1.0))


# ---------------------------------------------------------------- registry and serialisation
NEW = {
    "at": (losses.AttentionTransfer, {"power": 1.0}),
    "rkd_distance": (losses.RKDDistance, {}),
    "rkd_angle": (losses.RKDAngle, {}),
    "dkd": (losses.DecoupledKD, {"alpha": 0.5, "beta": 4.0, "temperature": 3.0}),
    "kd_std": (losses.LogitStandardizedKLDivergence, {"temperature": 1.5}),
    "nkd": (losses.NonTargetKLDivergence, {"temperature": 3.0}),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_every_new_loss_resolves_by_name_and_round_trips_its_config(name):
    cls, kwargs = NEW[name]
    assert name in losses.names()
    loss = losses.get(name, **kwargs)
    assert type(loss) is cls
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(clone) is cls and clone.get_config() == loss.get_config()
    for key, value in kwargs.items():
        assert clone.get_config()[key] == value
    assert cls.from_config(loss.get_config()).get_config() == loss.get_config()
    term = kdzoo.LossTerm(name, weight=1.0)
    assert isinstance(term.loss, cls)


def test_soft_target_kl_config_keeps_standardize():
    loss = losses.SoftTargetKLDivergence(temperature=3.0, standardize=True)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert clone.standardize is True and clone.temperature == 3.0
    with pytest.raises(ValueError, match="standardize"):
        losses.SoftTargetKLDivergence(standardize="yes")


def test_label_losses_refuse_a_labels_target():
    with pytest.raises(ValueError, match="target='teacher'"):
        kdzoo.LossTerm("dkd", target="labels")


# ---------------------------------------------------------------- composition in a Distiller
def _family_terms():
    return [
        kdzoo.LossTerm("ce", weight=0.5, target="labels"),
        kdzoo.LossTerm("dkd", weight=0.3),
        kdzoo.LossTerm("nkd", weight=0.2),
        kdzoo.LossTerm("kd_std", weight=0.4),
        kdzoo.LossTerm(
            "at", weight=2.0, teacher_output="audio_feature_map", student_output="feature_map"
        ),
        kdzoo.LossTerm(
            "rkd_distance", weight=1.5, teacher_output="embedding", student_output="embedding"
        ),
        kdzoo.LossTerm(
            "rkd_angle", weight=0.7, teacher_output="embedding", student_output="embedding"
        ),
    ]


def test_the_family_composes_in_a_distiller_with_per_term_weights(tiny_av_batch, tmp_path):
    x, y = tiny_av_batch
    teacher, student = models.build_pair("av_to_audio", num_classes=10)
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=_family_terms())
    assert distiller.adapters == {}  # AT and RKD compare different widths themselves
    distiller.compile(optimizer=keras.optimizers.SGD(0.05))
    names = [t.name for t in distiller.loss_terms]
    assert names == [
        "hard_label_crossentropy",
        "decoupled_kd",
        "non_target_kl_divergence",
        "logit_standardized_kl_divergence",
        "attention_transfer",
        "rkd_distance",
        "rkd_angle",
    ]

    # Reported values are the documented formulas, on the models' own outputs.
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    t_out = feature_model(teacher, ["audio_feature_map", "embedding"]).predict(x, verbose=0)
    s_out = feature_model(student, ["feature_map", "embedding"]).predict(
        {"audio": x["audio"]}, verbose=0
    )
    expected = {
        "decoupled_kd": ref_dkd(t_out["logits"], s_out["logits"], y, 1.0, 8.0, 4.0).mean(),
        "non_target_kl_divergence": ref_non_target(t_out["logits"], s_out["logits"], y, 4.0).mean(),
        "logit_standardized_kl_divergence": ref_standardised_kd(
            t_out["logits"], s_out["logits"], 2.0
        ).mean(),
        "attention_transfer": ref_attention(
            t_out["audio_feature_map"], s_out["feature_map"]
        ).mean(),
        "rkd_distance": ref_rkd_distance(t_out["embedding"], s_out["embedding"]),
        "rkd_angle": ref_rkd_angle(t_out["embedding"], s_out["embedding"]),
    }
    for key, value in expected.items():
        assert logs[f"{key}_loss"] == pytest.approx(value, rel=1e-3, abs=1e-6), key
    weights = [t.weight for t in distiller.loss_terms]
    total = sum(w * logs[f"{n}_loss"] for w, n in zip(weights, names, strict=True))
    assert logs["loss"] == pytest.approx(total, rel=1e-5)

    before = [np.array(v) for v in student.trainable_variables]
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    history = distiller.fit(dataset, epochs=1, verbose=0)
    for name in names:
        value = history.history[f"{name}_loss"][0]
        assert np.isfinite(value) and value > 0, name
    assert all(
        not np.allclose(a, np.array(b))
        for a, b in zip(before, student.trainable_variables, strict=True)
        if a.ndim > 1  # every kernel moved
    )

    # The objective, temperatures included, survives a .keras round trip.
    distiller.loss_terms[1].loss.temperature = 3.0
    path = tmp_path / "family.keras"
    distiller.save(path)
    loaded = keras.saving.load_model(path)
    assert [repr(t) for t in loaded.loss_terms] == [repr(t) for t in distiller.loss_terms]
    assert loaded.loss_terms[1].loss.temperature == 3.0
    assert loaded.loss_terms[4].loss.get_config() == distiller.loss_terms[4].loss.get_config()
    loaded_logs = loaded.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert loaded_logs["loss"] == pytest.approx(logs["loss"], rel=1e-5)


def test_a_schedule_can_change_the_temperature_of_a_compiled_distiller(tiny_av_batch):
    x, y = tiny_av_batch
    teacher, student = models.build_pair("av_to_audio", num_classes=10)
    terms = [kdzoo.LossTerm("dkd", name="dkd"), kdzoo.LossTerm("kd", name="kd")]
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=terms)
    distiller.compile(optimizer="sgd")
    first = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    traced = distiller.test_function
    for term in distiller.loss_terms:
        term.loss.temperature_variable.assign(1.5)
    second = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert distiller.test_function is traced
    t = teacher.predict(x, verbose=0)
    s = student.predict({"audio": x["audio"]}, verbose=0)
    assert second["dkd_loss"] == pytest.approx(ref_dkd(t, s, y, 1.0, 8.0, 1.5).mean(), rel=1e-3)
    assert abs(second["kd_loss"] - first["kd_loss"]) > 1e-4


def test_label_terms_need_labels_in_the_batch(tiny_av_batch):
    x, _ = tiny_av_batch
    teacher, student = models.build_pair("av_to_audio", num_classes=10)
    distiller = kdzoo.Distiller(teacher=teacher, student=student, terms=[kdzoo.LossTerm("nkd")])
    distiller.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="needs labels"):
        distiller.evaluate(x, verbose=0)

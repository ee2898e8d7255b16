"""``kdzoo.models.ensemble``: the mean of the members' predicted distributions (softmax and
sigmoid), save/load, its use as a teacher, and its errors."""

import keras
import numpy as np
import pytest

from kdzoo.models import build
from kdzoo.models.ensemble import MeanOfPredictions, average_of_models

TEXT = 12


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _member(outputs=3, length=TEXT):
    return build("text_lstm", "student", outputs, sequence_length=length, vocab_size=50)


def _members(outputs=3, n=3):
    keras.utils.set_random_seed(0)
    return [_member(outputs) for _ in range(n)]  # one preset, one name: wrapped, numbered


def _tokens(n=6):
    return {"text": np.random.default_rng(0).integers(0, 50, size=(n, TEXT)).astype("int32")}


def test_softmax_members_average_their_distributions(tmp_path):
    members = _members()
    model = average_of_models(members)
    assert [t.name for t in model.inputs] == ["text"]
    wrapped = [layer.name for layer in model.layers[1:4]]
    assert wrapped == [f"text_lstm_student_{i}" for i in range(3)]
    assert model.count_params() == sum(m.count_params() for m in members)  # shared weights
    x = _tokens()
    probs = [_softmax(m.predict(x, verbose=0)) for m in members]
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, np.log(np.mean(probs, axis=0)), atol=1e-5)
    assert not np.allclose(probs[0], probs[1])  # distinct members, so the mean is a mean
    # Saved and loaded as .keras (a registered layer: no Lambda, no pickle).
    model.save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), out, atol=1e-6)


@pytest.mark.parametrize("outputs", [1, 4])  # binary with one logit; multi-label
def test_sigmoid_members_average_each_units_probability(outputs):
    members = _members(outputs, n=2)
    activation = "auto" if outputs == 1 else "sigmoid"
    x = _tokens()
    out = average_of_models(members, activation=activation).predict(x, verbose=0)
    mean = np.mean([_sigmoid(m.predict(x, verbose=0)) for m in members], axis=0)
    np.testing.assert_allclose(_sigmoid(out), mean, atol=1e-5)


def test_confident_members_stay_finite():
    layer = MeanOfPredictions("sigmoid")
    out = np.asarray(layer([np.array([[200.0, -200.0]]), np.array([[300.0, -300.0]])]))
    # 1 − p is about (e^-200 + e^-300) / 2: the mean's logit is 200 + log 2, not inf.
    np.testing.assert_allclose(out, [[200.0 + np.log(2), -200.0 - np.log(2)]], rtol=1e-6)
    out = np.asarray(MeanOfPredictions()([np.array([[500.0, 0.0]]), np.array([[0.0, 500.0]])]))
    np.testing.assert_allclose(_softmax(out), [[0.5, 0.5]], atol=1e-6)


def test_an_ensemble_teaches_like_any_model():
    from kdzoo.distillation import Distiller

    members = _members(2)
    teacher = average_of_models(members)
    student = _member(2)
    distiller = Distiller(student=student, teacher=teacher)
    distiller.compile(optimizer="adam")
    x = _tokens(8)
    before = [w.copy() for w in teacher.get_weights()]
    distiller.fit(x, np.array([0, 1] * 4), epochs=1, batch_size=4, verbose=0)
    # The teacher is frozen inside the Distiller: its members learn nothing.
    for old, new in zip(before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_the_errors_name_what_is_wrong():
    members = _members(3, n=2)
    with pytest.raises(ValueError, match="at least two models; got 1"):
        average_of_models(members[:1])
    with pytest.raises(ValueError, match="A model is given twice"):
        average_of_models([members[0], members[0]])
    with pytest.raises(ValueError, match="must read the same inputs: 'text_lstm_student_0' reads"):
        average_of_models([members[0], _member(3, TEXT + 1)])
    wider = _member(4)
    with pytest.raises(ValueError, match="logits of one shape"):
        average_of_models([members[0], wider])
    with pytest.raises(ValueError, match="activation must be one of"):
        average_of_models(members, activation="tanh")
    with pytest.raises(ValueError, match="activation must be 'softmax' or 'sigmoid'"):
        MeanOfPredictions("auto")


@pytest.mark.parametrize("structure", ["tensor", "list"])
def test_members_built_on_a_tensor_or_a_list_are_called_as_built(structure):
    def member():
        a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
        if structure == "tensor":
            return keras.Model(a, keras.layers.Dense(3)(a))
        joined = keras.layers.Concatenate()([a, b])
        return keras.Model([a, b], keras.layers.Dense(3)(joined))

    keras.utils.set_random_seed(1)
    members = [member(), member()]
    model = average_of_models(members)
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(5, 4)), "b": rng.normal(size=(5, 2))}
    if structure == "tensor":
        x = {"a": x["a"]}
    args = x["a"] if structure == "tensor" else [x["a"], x["b"]]
    probs = [_softmax(m.predict(args, verbose=0)) for m in members]
    np.testing.assert_allclose(model.predict(x, verbose=0), np.log(np.mean(probs, 0)), atol=1e-5)

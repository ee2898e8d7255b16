"""kdzoo.evaluation: metrics and the robustness report, on a model with known behaviour."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kdzoo.evaluation import classification_metrics, metrics_from_logits, robustness_report


def test_binary_metrics_match_hand_counts():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    predicted = np.array([1, 1, 0, 0, 0, 1, 0, 0])  # tp=2 fn=2 fp=1 tn=3
    logits = np.eye(2)[predicted] * 3.0
    m = metrics_from_logits(logits, labels)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    f1_0 = 2 * 3 / (2 * 3 + 2 + 1)  # class 0: tp=3 fp=2 fn=1
    assert m["macro_f1"] == pytest.approx((f1_0 + m["f1"]) / 2, abs=1e-6)
    assert "precision" not in metrics_from_logits(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2]))
    # ROC AUC of class 1's score, by its definition: the share of (positive, negative)
    # pairs where the positive scores higher, ties counting half.
    score = logits[:, 1] - logits[:, 0]
    pos, neg = score[labels == 1], score[labels == 0]
    pairs = [(p > n) + 0.5 * (p == n) for p in pos for n in neg]
    assert m["roc_auc"] == pytest.approx(np.mean(pairs))
    assert np.isnan(metrics_from_logits(logits[:3], np.array([1, 1, 1]))["roc_auc"])


def test_macro_f1_averages_over_the_classes_that_occur():
    """As scikit-learn's ``f1_score(average="macro")``: a class neither labelled nor
    predicted is left out; one that is predicted only counts, with F1 0."""
    labels = np.array([0, 0, 1, 1])
    f1_0, f1_1 = 2 / 3, 0.8  # class 0: tp=1 fn=1; class 1: tp=2 fp=1
    logits = np.eye(4)[[0, 1, 1, 1]] * 3.0  # classes 2 and 3 never occur
    assert metrics_from_logits(logits, labels)["macro_f1"] == pytest.approx((f1_0 + f1_1) / 2)
    logits = np.eye(4)[[0, 2, 1, 1]] * 3.0  # class 2 predicted once, never labelled
    assert metrics_from_logits(logits, labels)["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_macro_f1_with_every_class_present_is_keras_macro():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((50, 5)).astype("float32")
    labels = rng.integers(0, 5, 50)
    assert set(labels) == set(range(5))
    keras_macro = keras.metrics.F1Score(average="macro")
    keras_macro.update_state(keras.ops.one_hot(labels, 5), keras.ops.softmax(logits))
    assert metrics_from_logits(logits, labels)["macro_f1"] == float(keras_macro.result())


def test_one_logit_models_are_sent_to_task_metrics():
    """A binary sigmoid model has one logit: a softmax over it is constant, so the argmax is
    class 0 and even a perfect model would score the share of negatives."""
    inputs = keras.Input((2,), name="x")
    model = keras.Model({"x": inputs}, keras.layers.Dense(1)(inputs), name="sigmoid")
    x = np.array([[1.0, 0.0], [-1.0, 0.0]], "float32")
    data = tf.data.Dataset.from_tensor_slices(({"x": x}, np.array([1, 0]))).batch(2)
    message = "the logits have one column .* Use kdzoo.evaluation.task_metrics"
    with pytest.raises(ValueError, match="metrics_from_logits: " + message):
        metrics_from_logits(np.array([[2.0], [-2.0]]), np.array([1, 0]))
    with pytest.raises(ValueError, match=r"classification_metrics\(model 'sigmoid'\): " + message):
        classification_metrics(model, data)
    with pytest.raises(ValueError, match=r"robustness_report\(model 'sigmoid'\): " + message):
        robustness_report(model, data)


def _image_only_model():
    """Reads image and audio; its logits depend on the image alone: class = argmax of the
    image's four quadrant means (audio enters with a zero kernel)."""
    image = keras.Input((4, 4, 1), name="image")
    audio = keras.Input((3, 2), name="audio")
    pooled = keras.layers.Flatten()(keras.layers.AveragePooling2D(2)(image))
    from_image = keras.layers.Dense(4, use_bias=False, kernel_initializer="identity")(pooled)
    from_audio = keras.layers.Dense(4, kernel_initializer="zeros")(keras.layers.Flatten()(audio))
    logits = keras.layers.Add()([keras.layers.Rescaling(10.0)(from_image), from_audio])
    return keras.Model({"image": image, "audio": audio}, logits)


def _data(n=200):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, n).astype("int32")
    image = np.full((n, 4, 4, 1), 0.2, "float32")
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        image[i, 2 * r : 2 * r + 2, 2 * q : 2 * q + 2] = 0.8
    audio = rng.standard_normal((n, 3, 2)).astype("float32")
    return tf.data.Dataset.from_tensor_slices(({"image": image, "audio": audio}, y)).batch(32)


def test_robustness_report_conditions_behave_as_the_model_implies():
    model, data = _image_only_model(), _data()
    assert classification_metrics(model, data)["accuracy"] == 1.0
    report = robustness_report(model, data, snr_db=(30.0, -10.0), fgsm_epsilon=(0.001, 0.5))
    acc = report.set_index("condition")["accuracy"]
    assert set(acc.index) == {
        "clean",
        "missing:image",
        "missing:audio",
        "noise:image@30dB",
        "noise:image@-10dB",
        "noise:audio@30dB",
        "noise:audio@-10dB",
        "fgsm@0.001",
        "fgsm@0.5",
    }
    assert acc["clean"] == 1.0 and acc["missing:audio"] == 1.0  # audio is ignored
    assert acc["missing:image"] < 0.4  # a constant prediction: one class of four
    assert acc["noise:audio@-10dB"] == 1.0
    assert acc["noise:image@30dB"] == 1.0 and acc["noise:image@-10dB"] < 0.8
    assert acc["fgsm@0.001"] == 1.0 and acc["fgsm@0.5"] < 0.5  # the attack uses the gradient
    assert set(report.columns) >= {"condition", "accuracy", "macro_f1"}


def test_token_inputs_are_not_perturbed():
    tokens = keras.Input((5,), dtype="int32", name="text")
    emb = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 3)(tokens))
    model = keras.Model({"text": tokens}, keras.layers.Dense(2)(emb))
    ds = tf.data.Dataset.from_tensor_slices(
        ({"text": np.arange(20).reshape(4, 5) % 10}, np.array([0, 1, 0, 1]))
    ).batch(2)
    assert list(robustness_report(model, ds)["condition"]) == ["clean"]

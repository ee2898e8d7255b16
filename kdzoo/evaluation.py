"""Metrics and robustness evaluation for zoo models on ``(features, label)`` datasets.

``classification_metrics`` gives accuracy and macro-F1 (plus precision, recall and F1 of
class 1 for binary tasks, e.g. SMS spam) with ``keras.metrics``; ``task_metrics`` gives a
``kdzoo.tasks.Task``'s report (AUC, MSE, MAE, R²...). ``robustness_report``
re-evaluates a model with each modality missing, under Gaussian noise at set SNRs, and
under FGSM perturbations of its continuous inputs.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from kdzoo.backend import require_tensorflow
from kdzoo.data.routing import input_names, select_inputs


def _route(model, x):
    return select_inputs(x, input_names(model), f"model {model.name!r}")


def predict_with_labels(model, dataset, transform=None):
    """Returns ``(logits, labels)`` as NumPy arrays from one pass over ``(x, y)`` batches.

    Args:
        model: a Keras model reading (a subset of) the batch's keys.
        dataset: ``(x, y)`` or ``(x, y, w)`` batches: a tf.data pipeline, or
            ``kdzoo.data.ArrayBatches`` (any backend).
        transform: optional ``fn(x, y) -> x`` applied to each batch first (perturbations,
            TensorFlow only).
    """
    if transform is None:  # a plain forward pass: eager, so no tf.function per model

        def step(x, y):
            return model(_route(model, x), training=False)

    else:
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def step(x, y):
            return model(_route(model, transform(x, y)), training=False)

    logits, labels = [], []
    for batch in dataset:
        x, y = batch[0], batch[1]
        logits.append(keras.ops.convert_to_numpy(step(x, y)))
        labels.append(keras.ops.convert_to_numpy(y))
    if not labels:
        raise ValueError("The dataset is empty.")
    return np.concatenate(logits), np.concatenate(labels)


def _check_softmax_width(width, where):
    """Refuses logits of one column: these metrics take the argmax of a softmax, which on a
    binary model's one sigmoid logit is always class 0 (a perfect model scores the share of
    negatives, e.g. 0.5)."""
    if width == 1:
        raise ValueError(
            f"{where}: the logits have one column (a binary model with one sigmoid output); "
            "these metrics need one logit per class (softmax). Use "
            "kdzoo.evaluation.task_metrics(model, dataset, kdzoo.tasks.Task.binary()) instead."
        )


def _output_width(model):
    """The width of a single-output model's logits, or None where it is not known before a
    forward pass (e.g. a subclassed model)."""
    outputs = getattr(model, "outputs", None)
    return outputs[0].shape[-1] if outputs and len(outputs) == 1 else None


def _macro_f1(labels, probabilities, num_classes):
    """Macro-F1 over the classes present in the labels or the predictions, as scikit-learn's
    ``f1_score(average="macro")``: Keras' ``F1Score(average="macro")`` also averages the 0
    of a class that is neither, so a rare class missing from a split lowers it."""
    f1 = keras.metrics.F1Score(average=None)
    f1.update_state(keras.ops.one_hot(labels, num_classes), probabilities)
    # F1Score's prediction (threshold=None): every class at the row's maximum.
    probabilities = keras.ops.convert_to_numpy(probabilities)
    predicted = (probabilities == probabilities.max(axis=-1, keepdims=True)).any(axis=0)
    labels = np.asarray(labels).reshape(-1)
    labels = labels[(labels >= 0) & (labels < num_classes)].astype(np.int64)
    present = np.flatnonzero(predicted | (np.bincount(labels, minlength=num_classes) > 0))
    # keras.ops.mean, as F1Score's own macro average: the same value when all are present.
    return float(keras.ops.mean(keras.ops.take(f1.result(), present)))


def metrics_from_logits(logits, labels, num_classes=None) -> dict:
    """Accuracy and macro-F1 (over the classes present in the labels or the predictions);
    for two classes also precision/recall/F1 of class 1 and the ROC AUC of class 1's score
    (``kdzoo.tasks.roc_auc`` of the logit difference, which ranks as the softmax probability
    does; NaN when the labels hold one class only).

    Raises:
        ValueError: logits of one column (a binary sigmoid model): use ``task_metrics``.
    """
    _check_softmax_width(np.shape(logits)[-1], "metrics_from_logits")
    num_classes = num_classes or logits.shape[-1]
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    accuracy.update_state(labels, logits)
    macro_f1 = _macro_f1(labels, keras.ops.softmax(logits), num_classes)
    out = {"accuracy": float(accuracy.result()), "macro_f1": macro_f1}
    if num_classes == 2:
        predicted = np.argmax(logits, axis=-1)
        precision, recall = keras.metrics.Precision(), keras.metrics.Recall()
        precision.update_state(labels, predicted)
        recall.update_state(labels, predicted)
        p, r = float(precision.result()), float(recall.result())
        out.update(precision=p, recall=r, f1=2 * p * r / (p + r) if p + r else 0.0)
        from kdzoo.tasks import roc_auc

        truth = np.asarray(labels).reshape(-1) == 1
        score = np.asarray(logits, np.float64)
        both = 0 < truth.sum() < len(truth)
        out["roc_auc"] = roc_auc(score[:, 1] - score[:, 0], truth) if both else float("nan")
    return out


def classification_metrics(model, dataset, num_classes=None) -> dict:
    """Accuracy and macro-F1 (``keras.metrics``) of ``model`` on ``dataset``; for binary
    tasks also precision, recall and F1 of class 1 (the positive class, e.g. spam).

    Raises:
        ValueError: a model with one output column (a binary sigmoid model): use
            ``task_metrics``.
    """
    _check_softmax_width(_output_width(model), f"classification_metrics(model {model.name!r})")
    logits, labels = predict_with_labels(model, dataset)
    return metrics_from_logits(logits, labels, num_classes)


def task_metrics(model, dataset, task) -> dict:
    """``task.report`` (``kdzoo.tasks.Task``) of ``model``'s outputs on ``dataset``: e.g.
    MSE, MAE and R² in the targets' own units for regression (the dataset's labels are
    de-normalised first), ROC and PR AUC for binary and multi-label tasks."""
    outputs, labels = predict_with_labels(model, dataset)
    return task.report(outputs, task.denormalise(labels))


def _continuous(model):
    return [t.name for t in model.inputs if t.dtype in ("float16", "bfloat16", "float32")]


def _missing(key):
    import tensorflow as tf

    def transform(x, y):
        return {**x, key: tf.zeros_like(x[key])}

    return transform


def _noise(key, snr_db, seed):
    import tensorflow as tf

    def transform(x, y):
        value = x[key]
        axes = list(range(1, value.shape.rank))
        rms = tf.sqrt(tf.reduce_mean(tf.square(value), axis=axes, keepdims=True))
        scale = rms / (10.0 ** (snr_db / 20.0))
        noise = tf.random.stateless_normal(tf.shape(value), [seed, int(snr_db * 1000)])
        return {**x, key: value + scale * noise}

    return transform


def _fgsm(model, keys, epsilon):
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def transform(x, y):
        routed = _route(model, x)
        with tf.GradientTape() as tape:
            for k in keys:
                tape.watch(routed[k])
            loss = loss_fn(y, model(routed, training=False))
        grads = tape.gradient(loss, [routed[k] for k in keys])
        return {
            **x,
            **{k: routed[k] + epsilon * tf.sign(g) for k, g in zip(keys, grads, strict=True)},
        }

    return transform


def robustness_report(
    model, dataset, *, snr_db=(20.0, 10.0, 0.0), fgsm_epsilon=(0.01, 0.05), seed=0
) -> pd.DataFrame:
    """Accuracy (and macro-F1) of ``model`` under input corruptions, one row per condition.

    Conditions, each on the model's inputs as the pipeline feeds them (normalised log-mel,
    [0, 1] pixels):

    - ``clean``;
    - ``missing:<m>`` for each input ``m`` of a multi-input model: that modality zeroed;
    - ``noise:<m>@<snr>dB`` for each continuous input: Gaussian noise with
      ``std = rms(x) / 10^(snr/20)`` per example, seeded;
    - ``fgsm@<eps>``: one fast-gradient-sign step (Goodfellow et al. 2015) of size ``eps``
      on all continuous inputs at once, against the model's own cross-entropy (white box).

    Integer inputs (token ids) are never perturbed by noise or FGSM. Needs Keras's
    TensorFlow backend (the perturbations are TensorFlow ops).

    Raises:
        ValueError: a model with one output column (a binary sigmoid model): its accuracy
            here would be meaningless (``metrics_from_logits``).
    """
    require_tensorflow("kdzoo.evaluation.robustness_report")
    _check_softmax_width(_output_width(model), f"robustness_report(model {model.name!r})")
    keys = list(input_names(model))
    conditions = [("clean", None)]
    if len(keys) > 1:
        conditions += [(f"missing:{k}", _missing(k)) for k in keys]
    for k in _continuous(model):
        conditions += [(f"noise:{k}@{snr:g}dB", _noise(k, snr, seed)) for snr in snr_db]
    if _continuous(model):
        keys_c = _continuous(model)
        conditions += [(f"fgsm@{eps:g}", _fgsm(model, keys_c, eps)) for eps in fgsm_epsilon]
    rows = []
    for name, transform in conditions:
        logits, labels = predict_with_labels(model, dataset, transform)
        metrics = metrics_from_logits(logits, labels)
        rows.append({"condition": name, **metrics})
    return pd.DataFrame(rows)

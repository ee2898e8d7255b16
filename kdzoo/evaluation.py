"""Classification metrics for zoo models on ``(features, label)`` datasets."""

from __future__ import annotations

import keras
import numpy as np


def predict_with_labels(model, dataset):
    """Returns ``(logits, labels)`` as NumPy arrays for a ``(x, y)`` tf.data dataset."""
    labels = np.concatenate([np.asarray(y) for _, y in dataset])
    logits = model.predict(dataset.map(lambda x, y: x), verbose=0)
    if len(logits) != len(labels):
        raise ValueError(f"Got {len(logits)} predictions for {len(labels)} labels.")
    return logits, labels


def classification_metrics(model, dataset, num_classes=None) -> dict:
    """Accuracy and macro-F1 (``keras.metrics``) of ``model`` on ``dataset``."""
    logits, labels = predict_with_labels(model, dataset)
    num_classes = num_classes or logits.shape[-1]
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    accuracy.update_state(labels, logits)
    f1 = keras.metrics.F1Score(average="macro")
    f1.update_state(keras.ops.one_hot(labels, num_classes), keras.ops.softmax(logits))
    return {"accuracy": float(accuracy.result()), "macro_f1": float(f1.result())}

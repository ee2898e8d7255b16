"""TF Serving requests: ``PredictRequest`` protos and the SavedModel warmup file.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` (a TFRecord of
``PredictionLog`` messages) when it loads a version, so the first real request does not pay
for graph initialisation. The protos come from ``tensorflow-serving-api``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import tensorflow as tf

from kdzoo.files import atomic_gfile

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"


def _serving_apis():
    from kdzoo.optional import require

    feature = "TF Serving requests and warmup files"
    return (
        require("tensorflow_serving.apis.predict_pb2", feature),
        require("tensorflow_serving.apis.prediction_log_pb2", feature),
    )


def _utf8(value):
    return value.encode("utf-8") if isinstance(value, str) else value


def proto_array(value):
    """``value`` as an array ``tf.make_tensor_proto`` takes; ``str`` become UTF-8 bytes.

    Lists of bytes become object arrays: NumPy's fixed-width ``S`` dtype would drop trailing
    NUL bytes (a wav file may end with some)."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "OU":
        return value
    if isinstance(value, list | tuple) and value and isinstance(value[0], str | bytes):
        return np.array([_utf8(v) for v in value], dtype=object)
    array = np.asarray(value)
    if array.dtype.kind in "OU":
        flat = [_utf8(v) for v in array.ravel().tolist()]
        return np.array(flat, dtype=object).reshape(array.shape)
    return array


def predict_request(inputs: dict, model_name: str, signature_name="serving_default"):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` for ``inputs``.

    Args:
        inputs: ``{input name: array}``; ``str`` values are sent as UTF-8 bytes.
        model_name: the served model's name (``MODEL_NAME`` of the container).
        signature_name: the signature to run. Defaults to ``"serving_default"``.
    """
    predict_pb2, _ = _serving_apis()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(proto_array(value)))
    return request


def write_warmup(export_dir, requests) -> Path:
    """Writes ``PredictRequest``s as ``PredictionLog``s to ``export_dir``'s warmup file.

    The file is replaced whole (``kdzoo.files.atomic_gfile``): a failed write leaves the
    old file, or none, never a truncated TFRecord that TF Serving would fail to load."""
    _, prediction_log_pb2 = _serving_apis()
    logs = [
        prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        ).SerializeToString()
        for request in requests
    ]
    path = Path(export_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_gfile(path, "wb") as f:
        f.write(_tfrecords(logs))
    return path


def _tfrecords(records) -> bytes:
    """``records`` in the TFRecord format (length, CRC32C checksums), built in memory by
    ``tf.io.TFRecordWriter`` on TF's ``ram://`` file system."""
    memory = f"ram://kdzoo-warmup-{uuid.uuid4().hex}"
    try:
        with tf.io.TFRecordWriter(memory) as writer:
            for record in records:
                writer.write(record)
        with tf.io.gfile.GFile(memory, "rb") as f:
            return f.read()
    finally:
        if tf.io.gfile.exists(memory):
            tf.io.gfile.remove(memory)


def read_warmup(export_dir) -> list:
    """The ``PredictionLog`` messages of ``export_dir``'s warmup file."""
    _, prediction_log_pb2 = _serving_apis()
    path = Path(export_dir) / WARMUP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No warmup file at {path}.")
    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs

"""Loads a serving export the way a bare TensorFlow runtime would, in a fresh process.

Run as a script (``python -I fresh_check.py EXPORT_DIR INPUTS_DIR OUT_DIR``) by
``kdzoo.serving.check.check_export``; it must not import kdzoo, only ``tensorflow``
(which itself imports ``keras`` in TF 2.21), and ``tensorflow_text`` only if ``tensorflow``
alone leaves some op of the graph unregistered. ``-I`` keeps the script's folder off
``sys.path``. It writes ``OUT_DIR/result.json`` and the ``serving_default`` outputs as
``OUT_DIR/<key>.npy``.

Steps: (1) which graph ops ``tensorflow`` alone does not register; (2) load with
``tf.saved_model.load`` and run ``serving_default`` on the inputs ``INPUTS_DIR/<key>.npy``;
(3) run ``serving_default`` on the raw inputs of the export's reference file (written by
kdzoo at export with the Keras student's outputs on them) and record how far the served
outputs are from the recorded ones; (4) replay the warmup ``PredictionLog``s through the
TF1 session loader, the API TF Serving and ``saved_model_cli`` use (this step imports the
``tensorflow_serving`` protos, after the module check of step 2); (5) feed inputs of the
wrong dtype, rank or content and record the errors.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"


def graph_ops(export_dir):
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    ops, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        library = meta_graph.graph_def.library
        functions |= {f.signature.name for f in library.function}
        ops |= {n.op for n in meta_graph.graph_def.node}
        for function in library.function:
            ops |= {n.op for n in function.node_def}
    return sorted(ops - functions)


def _error(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [ln for ln in lines if not ln.startswith(("[[", "{{", "Detected at", "<stack"))]
    message = " ".join(useful or lines)
    return {"type": type(err).__name__, "message": message[:400]}


def _signature_specs(function):
    _, kwargs = function.structured_input_signature
    return {k: (s.dtype.name, s.shape.as_list()) for k, s in kwargs.items()}


def run_default(loaded, inputs_dir, out_dir, metadata):
    """Runs ``serving_default`` on ``INPUTS_DIR/<key>.npy``, saves its outputs, and checks
    them (``output_problems``)."""
    signature = loaded.signatures["serving_default"]
    specs = _signature_specs(signature)
    inputs = {k: np.load(Path(inputs_dir) / f"{k}.npy", allow_pickle=False) for k in specs}
    raw = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    outputs = {k: v.numpy() for k, v in raw.items()}
    for key, value in outputs.items():
        np.save(Path(out_dir) / f"{key}.npy", value)
    batch = len(next(iter(inputs.values())))
    return {
        "signatures": {name: _signature_specs(fn) for name, fn in loaded.signatures.items()},
        "batch": batch,
        "answer": _answer(outputs),
        "problems": output_problems(outputs, batch, metadata),
    }


def output_problems(outputs, batch, metadata) -> list:
    """What is wrong with ``serving_default``'s ``outputs`` (``{key: array}``, strings as
    bytes) for a batch of ``batch`` examples, against what ``kdzoo_export.json`` declares:
    the output keys, dtypes and shapes, finite floats, and what the task's outputs mean
    (``_task_problems``). Empty when nothing is."""
    declared = metadata["signatures"]["serving_default"]["outputs"]
    if sorted(outputs) != sorted(declared):
        return [f"outputs {sorted(outputs)}, expected {sorted(declared)}"]
    problems = []
    for key, spec in declared.items():
        value = outputs[key]
        shape = tuple(  # -1: any size (the batch, first)
            batch if i == 0 else value.shape[i] if d == -1 and i < value.ndim else d
            for i, d in enumerate(spec["shape"])
        )
        dtype = "string" if value.dtype.kind in "OS" else value.dtype.name
        if value.shape != shape or dtype != spec["dtype"]:
            problems.append(
                f"{key} is {dtype} {list(value.shape)}, declared {spec['dtype']} {list(shape)}"
            )
        elif value.dtype.kind == "f" and not np.isfinite(value).all():
            row = int(np.flatnonzero(~np.isfinite(value.reshape(len(value), -1)).all(1))[0])
            problems.append(f"{key} is not finite at row {row}: {_short(value[row])}")
    return problems or _task_problems(outputs, metadata)


def max_relative_diff(value, expected) -> float:
    """The largest ``|value - expected| / max(1, |expected|)`` over all entries: absolute
    below 1, relative above (0.0 for no entries; NaN where either holds a NaN, which fails
    every ``<=`` tolerance check)."""
    value = np.asarray(value, np.float64)
    expected = np.asarray(expected, np.float64)
    return float(np.max(np.abs(value - expected) / np.maximum(1.0, np.abs(expected)), initial=0))


def _short(value, limit=160) -> str:
    """``value`` (an array, rounded to 4 decimals if float) as text of at most ``limit``."""
    value = np.asarray(value)
    if value.dtype.kind in "OS":
        shown = [v.decode("utf-8", "replace") for v in value.ravel().tolist()]
    elif value.dtype.kind == "f":
        shown = np.round(value.astype(np.float64), 4).tolist()
    else:
        shown = value.tolist()
    text = str(shown)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _answer(outputs) -> str:
    """The served answer, shortened for the report: ``class_name``, ``labels`` or
    ``values``."""
    key = next((k for k in ("class_name", "labels", "values") if k in outputs), None)
    if key is None:
        return f"outputs {sorted(outputs)}"
    return f"{key} {_short(outputs[key])}"


#: The outputs of each task kind (``kdzoo.serving.export.TASK_OUTPUTS``; this script must
#: not import kdzoo).
KIND_OUTPUTS = {
    "classification": ("class_id", "class_name", "probabilities"),
    "binary": ("class_id", "class_name", "probabilities"),
    "multi_label": ("labels", "probabilities"),
    "regression": ("values",),
}


def _task_problems(outputs, metadata):
    """What the outputs of the export's task must satisfy: probabilities of one class out
    of K sum to 1 and ``class_id`` is their argmax (a binary task's is the positive one
    above the threshold); ``class_name`` names ``class_id``; multi-label ``labels`` are the
    probabilities above the task's threshold. Regression ``values`` need only be finite.
    A probability within 1e-6 of the threshold may go either way, and ``class_id`` may be
    any class within 1e-6 of the most probable."""
    task = metadata.get("task") or {}
    kind = task.get("kind", "classification")
    if kind not in KIND_OUTPUTS:
        return [f"kdzoo_export.json names an unknown task kind {kind!r}"]
    if sorted(outputs) != sorted(KIND_OUTPUTS[kind]):
        return [f"a {kind} task outputs {list(KIND_OUTPUTS[kind])}, not {sorted(outputs)}"]
    threshold = task.get("threshold")
    if kind in ("binary", "multi_label") and not isinstance(threshold, (int, float)):
        return [f"kdzoo_export.json gives the {kind} task no threshold ({threshold!r})"]
    problems = []
    probs = outputs.get("probabilities")
    if probs is not None and ((probs < 0).any() or (probs > 1).any()):
        row = int(np.flatnonzero(((probs < 0) | (probs > 1)).any(axis=1))[0])
        problems.append(f"probabilities outside [0, 1] at row {row}: {_short(probs[row])}")
    if kind == "multi_label":
        labels = outputs["labels"]
        undecided = np.abs(probs - threshold) <= 1e-6
        wrong = ((labels == 1) != (probs > threshold)) & ~undecided
        if not np.isin(labels, (0, 1)).all():
            problems.append(f"labels are not 0 or 1: {_short(labels)}")
        elif wrong.any():
            row, column = (int(i) for i in np.argwhere(wrong)[0])
            problems.append(
                f"labels are not the probabilities above the threshold {threshold} of "
                f"kdzoo_export.json: row {row}, label {column} is {labels[row, column]} at "
                f"probability {probs[row, column]:.6g}"
            )
    if kind in ("classification", "binary"):
        sums = probs.sum(-1)
        if not np.allclose(sums, 1.0, atol=1e-4):
            problems.append(f"probabilities rows sum to {_short(sums)}, not 1")
        ids = outputs["class_id"]
        if kind == "binary":
            expected = (probs[:, 1] > threshold).astype(np.int64)
            undecided = np.abs(probs[:, 1] - threshold) <= 1e-6
            rule = f"the positive probability above the threshold {threshold} of kdzoo_export.json"
        else:  # within 1e-6 of a tie, either of the tied classes
            expected = probs.argmax(-1)
            known = np.clip(ids, 0, probs.shape[-1] - 1)[:, None]
            picked = np.take_along_axis(probs, known, axis=-1)[:, 0]
            undecided = (ids == known[:, 0]) & (picked >= probs.max(-1, initial=0) - 1e-6)
            rule = "the most probable class"
        wrong = np.flatnonzero((ids != expected) & ~undecided)
        if len(wrong):
            row = int(wrong[0])
            problems.append(
                f"class_id is not {rule}: row {row} has class_id {ids[row]}, probabilities "
                f"{_short(probs[row])} ({len(wrong)} of {len(ids)} rows)"
            )
        names = metadata["class_names"] or ["negative", "positive"]
        if ((ids < 0) | (ids >= len(names))).any():
            problems.append(f"class_id {_short(ids)} outside 0..{len(names) - 1}")
        else:
            served = [n.decode("utf-8", "replace") for n in outputs["class_name"]]
            wrong = [i for i, n in enumerate(served) if n != names[ids[i]]]
            if wrong:
                row = wrong[0]
                problems.append(
                    f"class_name does not match class_id: row {row} has class_id {ids[row]} "
                    f"and class_name {served[row]!r}; kdzoo_export.json names it "
                    f"{names[ids[row]]!r}"
                )
    return problems


def _unpack_strings(data, offsets):
    ends = offsets.tolist()
    starts = [0, *ends[:-1]]
    raw = data.tobytes()
    return [raw[a:b] for a, b in zip(starts, ends, strict=True)]


def _read_reference(path, reference):
    """The reference file's inputs (as tensors) and recorded outputs; ``ValueError`` naming
    the file when it is missing or damaged."""
    name = reference["file"]
    if not path.is_file():
        raise ValueError(f"the reference file {name} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            inputs = {}
            for i, key in enumerate(reference["inputs"]):
                if f"input_{i}_offsets" in data.files:
                    value = _unpack_strings(data[f"input_{i}"], data[f"input_{i}_offsets"])
                    inputs[key] = tf.constant(value, tf.string)
                else:
                    inputs[key] = tf.constant(data[f"input_{i}"])
            recorded = {key: data[f"output_{key}"] for key in reference["outputs"]}
    except Exception as err:  # noqa: BLE001 - zip, npy and key errors alike
        raise ValueError(f"the reference file {name} is damaged ({type(err).__name__})") from None
    return inputs, recorded


def compare_reference(loaded, export_dir, reference):
    """Runs the reference file's inputs through the recorded signature, on the CPU in full
    float32 as they were recorded; returns the largest |served - recorded| / max(1,
    |recorded|) of each recorded float output (``problems`` for a missing or damaged
    file, or an output of another shape)."""
    try:
        inputs, recorded = _read_reference(Path(export_dir) / reference["file"], reference)
    except ValueError as err:
        return {"file_problem": str(err), "max_diff": {}, "problems": []}
    tf.config.experimental.enable_tensor_float_32_execution(False)
    with tf.device("/CPU:0"):
        served = loaded.signatures[reference["signature"]](**inputs)
    out = {"rows": int(reference["rows"]), "max_diff": {}, "problems": []}
    for key, expected in recorded.items():
        value = served[key].numpy()
        if value.shape != expected.shape:
            out["problems"].append(
                f"{key} has shape {list(value.shape)}, recorded {list(expected.shape)}"
            )
            continue
        out["max_diff"][key] = max_relative_diff(value, expected)
    return out


def replay_warmup(export_dir):
    from tensorflow_serving.apis import prediction_log_pb2

    path = Path(export_dir) / WARMUP_FILE
    if not path.is_file():
        return {"requests": 0, "problems": [f"no warmup file at {WARMUP_FILE}"], "ran": []}
    graph = tf.Graph()
    ran, problems = [], []
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(export_dir))
        for i, record in enumerate(tf.compat.v1.io.tf_record_iterator(str(path))):
            log = prediction_log_pb2.PredictionLog()
            log.ParseFromString(record)
            request = log.predict_log.request
            name = request.model_spec.signature_name or "serving_default"
            if name not in meta_graph.signature_def:
                problems.append(f"request {i}: no signature {name!r}")
                continue
            signature = meta_graph.signature_def[name]
            if sorted(request.inputs) != sorted(signature.inputs):
                problems.append(
                    f"request {i}: inputs {sorted(request.inputs)} but {name} takes "
                    f"{sorted(signature.inputs)}"
                )
                continue
            for key, proto in request.inputs.items():
                if proto.dtype != signature.inputs[key].dtype:
                    problems.append(f"request {i}: {key!r} has dtype enum {proto.dtype}")
            feed = {signature.inputs[k].name: tf.make_ndarray(v) for k, v in request.inputs.items()}
            fetch = {k: v.name for k, v in signature.outputs.items()}
            try:
                out = session.run(fetch, feed)
            except Exception as err:  # noqa: BLE001 - reported, not raised
                problems.append(f"request {i} ({name}): {_error(err)['message']}")
                continue
            ran.append({"signature": name, "batch": int(len(next(iter(out.values()))))})
    return {"requests": len(ran) + len(problems), "ran": ran, "problems": problems}


def bad_inputs(loaded):
    """Wrong dtype, rank and content for each input of ``serving_default``; the other
    inputs are valid."""
    signature = loaded.signatures["serving_default"]
    specs = _signature_specs(signature)
    valid = {
        "image": tf.io.encode_png(tf.zeros([1, 1, 1], tf.uint8))[None],
        "audio": tf.zeros([1, 400], tf.float32),
        "text": tf.constant([b"x"]),
    }
    # Other names are a table's columns: numbers float64 [batch], categories string [batch].
    good = {
        k: valid.get(k, tf.constant([b"x"]) if d == "string" else tf.zeros([1], d))
        for k, (d, _) in specs.items()
    }
    cases = []
    for key, (dtype, shape) in specs.items():
        if dtype == "string":
            cases.append((f"{key}: float32 instead of string", key, tf.zeros([1], tf.float32)))
            cases.append((f"{key}: rank 2 instead of 1", key, tf.constant([[b"x"]])))
        elif len(shape) == 1:  # a numeric column
            cases.append((f"{key}: string instead of {dtype}", key, tf.constant([b"x"])))
            cases.append((f"{key}: rank 2 instead of 1", key, tf.zeros([1, 1], dtype)))
            cases.append((f"{key}: NaN", key, tf.constant([float("nan")], dtype)))
        else:
            cases.append((f"{key}: int32 instead of float32", key, tf.zeros([1, 400], tf.int32)))
            cases.append((f"{key}: string instead of float32", key, tf.constant([b"x"])))
            cases.append((f"{key}: rank 1 instead of 2", key, tf.zeros([400], tf.float32)))
            cases.append((f"{key}: NaN samples", key, tf.fill([1, 400], float("nan"))))
            cases.append((f"{key}: 0 samples", key, tf.zeros([1, 0], tf.float32)))
        if key == "image":
            cases.append((f"{key}: bytes that are not an image", key, tf.constant([b"hello"])))
        if key == "text":
            cases.append((f"{key}: whitespace only", key, tf.constant([b" \t"])))
            cases.append((f"{key}: not UTF-8", key, tf.constant([b"\xff film"])))
    results = []
    for label, key, value in cases:
        try:
            signature(**{**good, key: value})
            results.append({"case": label, "raised": False})
        except Exception as err:  # noqa: BLE001 - the point is which error comes back
            results.append({"case": label, "raised": True, **_error(err)})
    return results


def main(argv):
    export_dir, inputs_dir, out_dir = (Path(a) for a in argv[1:4])
    result = {}
    try:
        ops = graph_ops(export_dir)
        missing = [op for op in ops if op_def_registry.get(op) is None]
        result["unregistered_ops"] = missing
        if missing:  # only then: the op report names them
            import tensorflow_text  # noqa: F401

            result["unregistered_after_tensorflow_text"] = [
                op for op in missing if op_def_registry.get(op) is None
            ]
        metadata = json.loads((export_dir / "kdzoo_export.json").read_text(encoding="utf-8"))
        loaded = tf.saved_model.load(str(export_dir))
        result["default"] = run_default(loaded, inputs_dir, out_dir, metadata)
        result["modules"] = {
            m: m in sys.modules for m in ("kdzoo", "keras", "tensorflow_text", "tensorflow")
        }
    except Exception as err:  # noqa: BLE001 - the parent reports it
        result["fatal"] = {**_error(err), "traceback": traceback.format_exc()[-2000:]}
    else:  # the last steps are independent: one failing does not hide the others
        reference = metadata.get("reference")
        steps = {
            "reference": lambda: compare_reference(loaded, export_dir, reference),
            "warmup": lambda: replay_warmup(export_dir),
            "bad_inputs": lambda: bad_inputs(loaded),
        }
        if not reference:  # the parent reports an export that records none
            del steps["reference"]
        for key, step in steps.items():
            try:
                result[key] = step()
            except Exception as err:  # noqa: BLE001 - the parent reports it
                result[key] = {"error": _error(err)}
    (out_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

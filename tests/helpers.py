"""What several test files share, written once: tiny teacher/student pairs, NumPy references
of the losses, KerasHub-style round trips, serving calls and a fresh-interpreter runner.

Fixtures stay in ``conftest.py``; these are plain functions (``import helpers``: the
conftest beside this file puts ``tests/`` on ``sys.path`` for every test folder).
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kdzoo import models
from kdzoo.models.layers import Feature

#: The repository root and the scripts that tests run in a fresh interpreter.
REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "scripts"


# ---------------------------------------------------------------- teacher/student pairs
def av_pair(num_classes=10):
    """The zoo's ``av_to_audio`` pair: an image+audio teacher and an audio-only student."""
    return models.build_pair("av_to_audio", num_classes=num_classes)


def tiny_model(name, width, seed, classes=10):
    """``{"x": [batch, 6]}`` → Dense(width) → Feature("embedding") → Dense(classes) logits."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,), name="x")
    hidden = keras.layers.Dense(width, activation="tanh", name="hidden")(inputs)
    embedding = Feature(name="embedding")(hidden)
    logits = keras.layers.Dense(classes, name="head")(embedding)
    return keras.Model({"x": inputs}, logits, name=name)


def tiny_pair(classes=10):
    """A teacher (width 16) and a student (width 4) of ``tiny_model``, seeded."""
    return tiny_model("teacher", 16, 0, classes), tiny_model("student", 4, 1, classes)


def batched(x, y, batch=4, sample_weight=None):
    """``(x, y[, sample_weight])`` arrays as a ``tf.data`` pipeline of ``batch``-sized batches."""
    parts = (x, y) if sample_weight is None else (x, y, sample_weight)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch)


# ---------------------------------------------------------------- NumPy references
def random_logits():
    """A fixed batch of 5 examples, 4 classes: teacher and student logits (float32), labels
    and sample weights."""
    rng = np.random.default_rng(7)
    teacher = rng.normal(0, 2.0, (5, 4)).astype("float32")
    student = rng.normal(0, 1.0, (5, 4)).astype("float32")
    labels = np.array([0, 3, 1, 1, 2])
    weights = np.array([1.0, 0.0, 2.0, 0.5, 1.5], "float32")
    return teacher, student, labels, weights


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def kl(p, q):
    """KL(p ‖ q) of two distributions, summed over every element."""
    return float(np.sum(p * np.log(p / q)))


def huber(x):
    return 0.5 * x * x if abs(x) <= 1 else abs(x) - 0.5


def ref_kd(t, s, tau):
    """Hinton et al. 2015: τ² · KL(softmax(t/τ) ‖ softmax(s/τ)), per example."""
    p, q = softmax(t / tau), softmax(s / tau)
    return tau**2 * np.sum(p * np.log(p / q), axis=-1)


def ref_dkd(t, s, y, alpha, beta, tau):
    """Zhao et al. 2022, eq. (1)-(4): binary target/rest KL plus the non-target KL."""
    out = []
    for ti, si, yi in zip(t.astype("float64"), s.astype("float64"), y, strict=True):
        p, q = softmax(ti / tau), softmax(si / tau)
        b_t, b_s = np.array([p[yi], 1 - p[yi]]), np.array([q[yi], 1 - q[yi]])
        rest = [k for k in range(len(p)) if k != yi]
        p_hat, q_hat = p[rest] / p[rest].sum(), q[rest] / q[rest].sum()
        out.append(tau**2 * (alpha * kl(b_t, b_s) + beta * kl(p_hat, q_hat)))
    return np.array(out)


def ref_non_target(t, s, y, tau):
    """Softmax over the non-target logits only (the target dropped before the softmax)."""
    out = []
    for ti, si, yi in zip(t.astype("float64"), s.astype("float64"), y, strict=True):
        keep = np.arange(len(ti)) != yi
        out.append(tau**2 * kl(softmax(ti[keep] / tau), softmax(si[keep] / tau)))
    return np.array(out)


def ref_standardised_kd(t, s, tau):
    def z(v):
        return (v - v.mean()) / v.std()  # population std, as in Sun et al. 2024

    return np.array(
        [
            tau**2 * kl(softmax(z(ti) / tau), softmax(z(si) / tau))
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


# ---------------------------------------------------------------- round trips
def run_serialization_test(instance):
    """KerasHub's serialisation check: ``serialize_keras_object`` → JSON →
    ``deserialize_keras_object`` gives the same class and config, and so does
    ``from_config(get_config())``. Returns the revived object."""
    config = instance.get_config()
    serialized = keras.saving.serialize_keras_object(instance)
    revived = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(revived) is type(instance)
    assert revived.get_config() == config
    assert type(instance).from_config(config).get_config() == config
    return revived


def _assert_same_outputs(got, expected, atol):
    got, expected = keras.tree.flatten(got), keras.tree.flatten(expected)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol)


def run_model_saving_test(model, x, path, *, atol=1e-6, predict=None):
    """KerasHub's saving check: ``model.save(path)`` (a ``.keras`` file) and
    ``keras.saving.load_model`` (safe mode: no Lambda, no pickles) give the same predictions
    on ``x``. ``predict(model)`` replaces ``model.predict(x)``. Returns the loaded model."""

    def outputs(m):
        return m.predict(x, verbose=0) if predict is None else predict(m)

    expected = outputs(model)
    model.save(path)
    loaded = keras.saving.load_model(path)
    _assert_same_outputs(outputs(loaded), expected, atol)
    return loaded


def run_model_config_test(model, x, *, atol=1e-6):
    """``from_config(get_config())`` with the original weights gives the same predictions."""
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    _assert_same_outputs(clone.predict(x, verbose=0), model.predict(x, verbose=0), atol)
    return clone


# ---------------------------------------------------------------- serving
def audio_student(data):
    """The audio student preset sized for ``data``'s log-mel features."""
    return models.build("audio_crnn", "student", audio_shape=data.audio_config.feature_shape)


def serve(path, signature="serving_default", **inputs):
    """Load a SavedModel as TF Serving would and run one signature on numpy ``inputs``."""
    loaded = tf.saved_model.load(str(path))
    outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


# ---------------------------------------------------------------- fresh interpreters
def python_env(**extra):
    """The environment of a child interpreter: quiet TF, the TF backend, no inherited
    ``TF_CONFIG`` (a cluster spec would turn any run into a worker), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow", **extra}


def run_python(args, *, cwd=None, env=None, timeout=300, check=False):
    """``python *args`` in a fresh interpreter with ``python_env(**env)``; text output.

    With ``check=True`` a non-zero exit fails the test with the end of its stderr.
    """
    proc = subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=python_env(**(env or {})),
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    return proc


def last_json_line(text):
    """The JSON object a script prints on its last line."""
    return json.loads(text.strip().splitlines()[-1])


# ---------------------------------------------------------------- gradients
def gradient(fn, *args):
    """The gradient of ``sum(fn(*args))`` with respect to each of ``args``, on the current
    Keras backend: ``tf.GradientTape`` on TensorFlow, ``jax.grad`` on JAX, autograd on
    PyTorch. ``args`` are float arrays; anything ``fn`` should not be differentiated with
    respect to is closed over. A non-scalar ``fn`` is summed first, as ``tape.gradient``
    does, and an argument ``fn`` does not use gets zeros, as with ``jax.grad``. Returns a
    NumPy array for one argument, a tuple of them for several."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        tensors = [tf.convert_to_tensor(np.asarray(a, "float32")) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            total = tf.reduce_sum(fn(*tensors))
        zero = tf.UnconnectedGradients.ZERO
        grads = [g.numpy() for g in tape.gradient(total, tensors, unconnected_gradients=zero)]
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        tensors = [jnp.asarray(a, "float32") for a in args]
        argnums = tuple(range(len(tensors)))
        grads = jax.grad(lambda *xs: jnp.sum(fn(*xs)), argnums=argnums)(*tensors)
        grads = [np.asarray(g) for g in grads]
    elif backend == "torch":
        import torch

        tensors = [
            keras.ops.convert_to_tensor(np.asarray(a, "float32")).requires_grad_(True) for a in args
        ]
        total = torch.sum(fn(*tensors))
        grads = torch.autograd.grad(total, tensors, allow_unused=True, materialize_grads=True)
        grads = [g.detach().cpu().numpy() for g in grads]
    else:
        raise NotImplementedError(f"no gradients on the {backend!r} backend")
    return grads[0] if len(grads) == 1 else tuple(grads)


def jit_compile(fn):
    """``fn`` compiled with XLA as the backend's trainer compiles a step with
    ``jit_compile=True``: ``tf.function(jit_compile=True)`` on TensorFlow, ``jax.jit`` on JAX.
    Skips the calling test on other backends."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        return tf.function(fn, jit_compile=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    import pytest

    pytest.skip(f"no XLA compilation of a step on the {backend!r} backend")

"""kdzoo's Distiller against Keras's own ``keras.distillation.Distiller``: speed and KD loss.

    python benchmarks/keras_peer.py [--family audio_crnn] [--rounds 7] [--steps 50]

**Speed.** One process trains four variants on identical models (the family's ``teacher``
and ``student`` presets; every variant gets clones of the same initial weights), identical
synthetic data (fixed seed, ``--rows`` rows, batch ``--batch``, in-memory ``tf.data``) and
the same optimizer (Adam) and ``jit_compile=False`` (what Keras's ``"auto"`` picks on a
CPU-only machine):

* *student only*: the student compiled with sparse categorical cross-entropy (logits);
* *kdzoo online*: ``kdzoo.distillation.Distiller``, ``default_terms(τ, 0.5, 0.5)``, the
  teacher run at every step;
* *kdzoo cached*: the same Distiller fed teacher logits cached once with
  ``kdzoo.distillation.cache_teacher_outputs`` and attached per row under the batch key
  ``TEACHER_OUTPUTS`` (``with_teacher_outputs``), so the teacher never runs;
* *Keras*: ``keras.distillation.Distiller`` with ``student_loss_weight=0.5`` and
  ``LogitsDistillation(temperature=τ, loss=keras.losses.KLDivergence())`` (its correct
  configuration, the same objective as kdzoo's), the student loss sparse CE from logits.

After a warm-up ``fit`` per variant (tracing), each round calls ``fit`` for ``--steps`` steps
on every variant in turn, the order rotated round by round so that load from other jobs
falls on all alike; steps/s is timed from the end of the first step to the end of the last
(iterator start-up excluded). Reported: the median over ``--rounds`` rounds (min-max), and
the ratios of the medians against student-only and against Keras (with the range of the
per-round ratios). Unless ``--check-steps 0``, fresh clones of kdzoo online, kdzoo cached
and Keras are then trained ``--check-steps`` SGD steps on the same batches and the largest
student-weight difference between them is reported: the speed comparison is of the same
computation.

**Loss.** On one known batch (logits ``scale · N(0, 1)`` from ``--seed``, ``--loss-batch``
rows, ``--classes`` classes; one column per ``--loss-scales`` entry) each library's KD loss
at ``τ = --temperature`` is compared with the exact ``τ² · KL(softmax(t/τ) ‖ softmax(s/τ))``
(batch mean) computed in float64 NumPy: ``kdzoo.losses.SoftTargetKLDivergence``, Keras's
``LogitsDistillation(temperature=τ)`` with its default ``loss`` and with
``loss=keras.losses.KLDivergence()``, each called as its Distiller calls it
(``loss(teacher, student)``; ``LogitsDistillation.compute_loss(teacher, student)``).

Prints Markdown and writes benchmarks/results/keras_peer.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kdzoo import models  # noqa: E402
from kdzoo.distillation import (  # noqa: E402
    TEACHER_OUTPUTS,
    Distiller,
    cache_teacher_outputs,
    default_terms,
    with_teacher_outputs,
)
from kdzoo.losses import SoftTargetKLDivergence  # noqa: E402
from kdzoo.results import Provenance, record_code, script_command  # noqa: E402

RESULTS = Path(__file__).parent / "results"

VARIANTS = (
    ("student", "student only (`fit`, sparse CE)"),
    ("kdzoo_online", "kdzoo Distiller, online teacher"),
    ("kdzoo_cached", "kdzoo Distiller, cached teacher outputs"),
    ("keras", "`keras.distillation.Distiller`, `LogitsDistillation(τ, KLDivergence())`"),
)

#: Single-input families (Keras's Distiller feeds the teacher and the student the same
#: inputs, so a cross-modal pair cannot run there) and the input shape each reads.
FAMILIES = {
    "audio_crnn": ("audio", (30, 32)),
    "image_cnn": ("image", (16, 16, 1)),
}


# ---------------------------------------------------------------------- provenance
def _made():
    made = Provenance.collect(script_command())
    record_code(RESULTS, made)
    return made


def _threads():
    threads = (
        tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        tf.config.threading.get_inter_op_parallelism_threads() or os.cpu_count(),
    )
    return f"TF intra/inter-op threads {threads[0]}/{threads[1]}."


# ---------------------------------------------------------------------- models and data
def _clone(model):
    """A new model with ``model``'s architecture, layer names and current weights."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _setup(args):
    """The base teacher and student, and ``(x, y, cached_x)`` as NumPy arrays."""
    key, shape = FAMILIES[args.family]
    keras.utils.set_random_seed(args.seed)
    teacher, student = models.build_pair(args.family, args.classes, **{f"{key}_shape": shape})
    rng = np.random.default_rng(args.seed)
    x = {key: rng.standard_normal((args.rows, *shape)).astype("float32")}
    y = rng.integers(0, args.classes, args.rows).astype("int32")
    ordered = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = cache_teacher_outputs(teacher, ordered, Path(tmp) / "teacher-cache")
        extras = with_teacher_outputs(cache_dir, labels=y)
    cached_x = {**x, TEACHER_OUTPUTS: extras[TEACHER_OUTPUTS]}
    return teacher, student, x, y, cached_x


def _dataset(x, y, batch):
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    return data.cache().repeat().prefetch(tf.data.AUTOTUNE)


def _sparse_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _build(name, teacher, student, temperature, optimizer):
    """The trainable model of variant ``name`` on fresh clones, compiled."""
    compile_args = {"optimizer": optimizer, "metrics": ["accuracy"], "jit_compile": False}
    if name == "student":
        model = _clone(student)
        model.compile(loss=_sparse_ce(), **compile_args)
    elif name in ("kdzoo_online", "kdzoo_cached"):
        model = Distiller(
            teacher=_clone(teacher),
            student=_clone(student),
            terms=default_terms(temperature=temperature, ce_weight=0.5, kd_weight=0.5),
        )
        model.compile(**compile_args)
    elif name == "keras":
        model = keras.distillation.Distiller(
            teacher=_clone(teacher),
            student=_clone(student),
            distillation_losses=keras.distillation.LogitsDistillation(
                temperature=temperature, loss=keras.losses.KLDivergence()
            ),
            student_loss_weight=0.5,
        )
        model.compile(loss=_sparse_ce(), **compile_args)
    else:
        raise ValueError(name)
    return model


class _StepTimer(keras.callbacks.Callback):
    """Seconds from the end of the first step to the end of the last, and the steps between."""

    def on_train_begin(self, logs=None):
        self.start = self.end = None
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.start is None:
            self.start = now
        else:
            self.steps += 1
        self.end = now


def _steps_per_s(model, data, steps):
    timer = _StepTimer()
    model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=[timer], shuffle=False, verbose=0)
    return timer.steps / (timer.end - timer.start)


# ---------------------------------------------------------------------- speed
def measure_speed(args, teacher, student, x, y, cached_x):
    """``{variant: [steps/s per round]}``, the variants interleaved round by round."""
    plain = _dataset(x, y, args.batch)
    data = {name: plain for name, _ in VARIANTS}
    data["kdzoo_cached"] = _dataset(cached_x, y, args.batch)
    trained = {}
    for name, _ in VARIANTS:
        optimizer = keras.optimizers.Adam(learning_rate=args.learning_rate)
        trained[name] = _build(name, teacher, student, args.temperature, optimizer)
        trained[name].fit(
            data[name], epochs=1, steps_per_epoch=args.warmup, shuffle=False, verbose=0
        )
    names = [name for name, _ in VARIANTS]
    speeds = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            speeds[name].append(_steps_per_s(trained[name], data[name], args.steps))
        print(
            f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {speeds[n][-1]:.1f}" for n in names),
            file=sys.stderr,
        )
    return speeds


def check_same_steps(args, teacher, student, x, y, cached_x):
    """Largest |Δ| between the students' weights after ``--check-steps`` SGD steps on the
    same batches: ``{(a, b): value}``, and each variant's final loss."""
    plain = _dataset(x, y, args.batch)
    cached = _dataset(cached_x, y, args.batch)
    weights, losses = {}, {}
    for name, data in (("kdzoo_online", plain), ("kdzoo_cached", cached), ("keras", plain)):
        model = _build(
            name, teacher, student, args.temperature, keras.optimizers.SGD(learning_rate=0.05)
        )
        history = model.fit(
            data, epochs=1, steps_per_epoch=args.check_steps, shuffle=False, verbose=0
        )
        weights[name] = model.student.get_weights()
        losses[name] = history.history["loss"][-1]

    def gap(a, b):
        return max(
            float(np.max(np.abs(u - v))) for u, v in zip(weights[a], weights[b], strict=True)
        )

    gaps = {
        ("kdzoo_online", "keras"): gap("kdzoo_online", "keras"),
        ("kdzoo_cached", "kdzoo_online"): gap("kdzoo_cached", "kdzoo_online"),
    }
    moved = max(
        float(np.max(np.abs(u - v)))
        for u, v in zip(weights["kdzoo_online"], student.get_weights(), strict=True)
    )
    return gaps, moved, losses


# ---------------------------------------------------------------------- loss
def exact_kd(teacher_logits, student_logits, tau):
    """``τ² · mean_batch KL(softmax(t/τ) ‖ softmax(s/τ))`` in float64."""

    def log_softmax(z):
        z = np.asarray(z, dtype=np.float64) / tau
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    log_p, log_q = log_softmax(teacher_logits), log_softmax(student_logits)
    return tau**2 * float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)))


def _loss_name(fn):
    if isinstance(fn, keras.losses.Loss):
        return f"`{type(fn).__name__}()` instance"
    return f"function `{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', fn)}`"


def measure_losses(args):
    """Rows ``(label, [value per scale])``, the exact row first, and the name Keras's default
    ``loss="kl_divergence"`` resolves to."""
    tau = args.temperature
    default = keras.distillation.LogitsDistillation(temperature=tau)
    with_class = keras.distillation.LogitsDistillation(
        temperature=tau, loss=keras.losses.KLDivergence()
    )
    kdzoo_loss = SoftTargetKLDivergence(temperature=tau)
    rows = {
        "exact": [],
        "kdzoo": [],
        "keras_default": [],
        "keras_class": [],
    }
    for scale in args.loss_scales:
        rng = np.random.default_rng(args.seed)
        shape = (args.loss_batch, args.classes)
        t = (scale * rng.standard_normal(shape)).astype("float32")
        s = (scale * rng.standard_normal(shape)).astype("float32")
        rows["exact"].append(exact_kd(t, s, tau))
        rows["kdzoo"].append(float(kdzoo_loss(t, s)))
        for key, fn in (("keras_default", default), ("keras_class", with_class)):
            fn.validate_outputs(t, s)
            rows[key].append(float(fn.compute_loss(t, s)))
    return rows, _loss_name(default.loss)


# ---------------------------------------------------------------------- report
def _range(values, fmt="{:.1f}"):
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"


def _ratio_cell(speeds, name, reference):
    if name == reference:
        return "(reference)"
    median = statistics.median(speeds[name]) / statistics.median(speeds[reference])
    per_round = [a / b for a, b in zip(speeds[name], speeds[reference], strict=True)]
    return f"{median:.2f}× ({_range(per_round, '{:.2f}')})"


def report(args, params, speeds, check, loss_rows, default_name):
    tau = args.temperature
    median = {name: statistics.median(v) for name, v in speeds.items()}
    lines = [
        "# kdzoo vs `keras.distillation`: step speed and KD loss",
        "",
        _made().markdown(),
        "",
        _threads(),
        "",
        "## Steps per second",
        "",
        f"`{args.family}` presets: teacher {params['teacher']:,} params, student "
        f"{params['student']:,} params; synthetic data ({args.rows} rows, seed {args.seed}), "
        f"batch {args.batch}, {args.classes} classes, τ = {tau:g}, CE/KD weights 0.5/0.5, Adam "
        f"(lr {args.learning_rate:g}), `jit_compile=False`. Per variant: the median of "
        f"{args.rounds} rounds (min-max), each a `fit` of {args.steps} steps timed from the end "
        f"of the first step, the variants in rotated order round by round after a "
        f"{args.warmup}-step warm-up. Ratios: of the medians (range of the per-round "
        f"ratios). Load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| variant | steps/s | examples/s | vs student only | vs Keras |",
        "|---|---|---|---|---|",
    ]
    for name, label in VARIANTS:
        lines.append(
            f"| {label} | {median[name]:.1f} ({_range(speeds[name])}) | "
            f"{median[name] * args.batch:.0f} | {_ratio_cell(speeds, name, 'student')} | "
            f"{_ratio_cell(speeds, name, 'keras')} |"
        )
    if check:
        gaps, moved, losses = check
        lines += [
            "",
            f"Same computation: fresh clones trained {args.check_steps} SGD steps (lr 0.05) on "
            f"the same batches; largest student-weight difference kdzoo online vs Keras "
            f"{gaps[('kdzoo_online', 'keras')]:.1e}, kdzoo cached vs kdzoo online "
            f"{gaps[('kdzoo_cached', 'kdzoo_online')]:.1e} (the weights moved by up to "
            f"{moved:.1e}); mean training loss kdzoo online {losses['kdzoo_online']:.6f}, "
            f"cached {losses['kdzoo_cached']:.6f}, Keras {losses['keras']:.6f}.",
        ]
    exact = loss_rows["exact"]
    scales = args.loss_scales
    lines += [
        "",
        f"## KD loss on one known batch (τ = {tau:g})",
        "",
        f"Teacher and student logits `scale · N(0, 1)`, {args.loss_batch}×{args.classes}, "
        f"NumPy seed {args.seed}; exact: τ²·KL(softmax(t/τ) ‖ softmax(s/τ)), batch mean, "
        "float64. Each cell: value (relative error vs exact). Keras's default `loss` "
        f'(`"kl_divergence"`) resolves to the {default_name}.',
        "",
        "| loss | " + " | ".join(f"scale {s:g}" for s in scales) + " |",
        "|---|" + "---|" * len(scales),
        "| exact (NumPy, float64) | " + " | ".join(f"{v:.4f}" for v in exact) + " |",
    ]
    labels = {
        "kdzoo": f"kdzoo `SoftTargetKLDivergence(temperature={tau:g})`",
        "keras_default": f"Keras `LogitsDistillation(temperature={tau:g})` (default loss)",
        "keras_class": f"Keras `LogitsDistillation(temperature={tau:g}, "
        "loss=keras.losses.KLDivergence())`",
    }
    for key, label in labels.items():
        cells = [
            f"{v:.4f} ({(v - e) / e:+.1e})" for v, e in zip(loss_rows[key], exact, strict=True)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Measured facts", "", *_facts(args, median, speeds, check, loss_rows)]
    return "\n".join(lines)


def _facts(args, median, speeds, check, loss_rows):
    tau = args.temperature
    exact, first = loss_rows["exact"], 0
    facts = [
        f"- kdzoo's online Distiller ran at {median['kdzoo_online'] / median['keras']:.2f}× "
        f"Keras's steps/s ({median['kdzoo_online']:.1f} vs {median['keras']:.1f}); with "
        f"cached teacher outputs at {median['kdzoo_cached'] / median['student']:.2f}× "
        f"student-only and {median['kdzoo_cached'] / median['keras']:.2f}× Keras.",
        f"- Keras's default `LogitsDistillation(temperature={tau:g})` gave "
        f"{loss_rows['keras_default'][first]:.2f} where the exact value is "
        f"{exact[first]:.2f} (scale {args.loss_scales[first]:g}); with "
        f"`loss=keras.losses.KLDivergence()` {loss_rows['keras_class'][first]:.2f}, kdzoo "
        f"{loss_rows['kdzoo'][first]:.2f}.",
    ]
    if len(exact) > 1:
        last = len(exact) - 1
        facts.append(
            f"- At logit scale {args.loss_scales[last]:g}: exact {exact[last]:.1f}, kdzoo "
            f"{loss_rows['kdzoo'][last]:.1f}, Keras with `KLDivergence()` "
            f"{loss_rows['keras_class'][last]:.1f}, Keras default "
            f"{loss_rows['keras_default'][last]:.1f}."
        )
    if check:
        gaps = check[0]
        facts.append(
            f"- After {args.check_steps} identical SGD steps the kdzoo and Keras students "
            f"differ by at most {gaps[('kdzoo_online', 'keras')]:.1e} per weight: the two "
            "Distillers compute the same step."
        )
    return facts


def _floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="audio_crnn")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed fit")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rows", type=int, default=512, help="synthetic training rows")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--check-steps", type=int, default=8, help="0 skips the check")
    parser.add_argument("--loss-batch", type=int, default=64)
    parser.add_argument("--loss-scales", type=_floats, default=[3.0, 100.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "keras_peer.md"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 2 or args.rows < args.batch:
        parser.error("need --rounds >= 1, --steps >= 2 and --rows >= --batch")

    loss_rows, default_name = measure_losses(args)
    teacher, student, x, y, cached_x = _setup(args)
    params = {"teacher": teacher.count_params(), "student": student.count_params()}
    speeds = measure_speed(args, teacher, student, x, y, cached_x)
    check = check_same_steps(args, teacher, student, x, y, cached_x) if args.check_steps else None
    text = report(args, params, speeds, check, loss_rows, default_name)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

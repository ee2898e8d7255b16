r"""Steps per second of student-only training, online KD and cached KD on Keras's JAX backend,
with and without bfloat16 and XLA: the benchmark for a GPU machine without TensorFlow.

**On the device machine** (JAX with CUDA; no TensorFlow, and no Keras: Keras and the two
packages it needs that the image lacks travel as wheels). Once, here, in the repository root::

    echo /.whl/ >> .git/info/exclude
    .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 namex optree

Then one ``run`` call with ``carry=[".whl"]``, ``timeout_s=560`` and this command, with
``<commit>`` replaced by ``git rev-parse --short=10 HEAD`` here (the copy there has no
``.git``), and ``--dirty`` added if ``git status --porcelain kdzoo benchmarks`` prints
anything::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
    nvidia-smi -L
    timeout -s INT 500 python3 benchmarks/gpu.py --budget-s 360 --commit <commit> \
      --out-dir benchmarks/results 2>&1 | tee $OUT/gpu.log
    cp benchmarks/results/gpu.md benchmarks/results/gpu.csv benchmarks/results/code.json $OUT/

The results are rewritten after each pair (the large-teacher pair first), so a run stopped by
the time limit still returns the pairs it finished; ``--budget-s`` skips the pairs that would
end past it, and the table names them. ``code.json`` comes back with the committed entries
and this run's: copy the three files into ``benchmarks/results/`` and run ``make stale``.

On a CPU (the script needs neither TensorFlow nor pandas, though Keras imports them where they
are installed and the table says so; ``--tiny`` is the test's smoke run)::

    KERAS_BACKEND=jax python benchmarks/gpu.py --tiny --out-dir /tmp/gpu-tiny
    KERAS_BACKEND=jax python benchmarks/gpu.py --pairs image_cnn_large,image_cnn --batch 64

**What is measured.** For each pair (``--pairs``: the zoo pairs, i.e. the registered pairs and
every model family's ``teacher``/``student`` presets, at their default input shapes, plus
``image_cnn_large``, an ``image_cnn`` teacher with filters (128, 256, 512) and a 1,024-unit
head on 32×32×3 images against the zoo's ``image_cnn`` student, at least 20× the student's
forward FLOPs) and each setting (``--precisions``: float32 and ``mixed_bfloat16``, set with
``keras.config.set_dtype_policy`` before the models are built; ``--jit``: ``compile(...,
jit_compile=True/False)``; off, Keras's JAX backend runs the step op by op) it trains:

* *student only*: the student compiled alone with the task's label loss
  (``Task.classification(...).label_loss()``, sparse cross-entropy on logits);
* *online KD*: ``kdzoo.Distiller(teacher=..., student=...)`` with the default terms, the
  teacher run at every step;
* *cached KD*: the same Distiller fed ``arrays_with_teacher_outputs(distiller.ensemble, x)``,
  so the teacher never runs.

All on random NumPy inputs of the models' shapes and dtypes (token ids below the smallest
embedding's vocabulary), ``--batch`` rows per step, Adam, the task's accuracy metric, no
shuffling. Every model of a pair (settings × variants) is built from the same seed and
warmed up with ``--warmup`` steps (the first ``fit`` compiles); then each round calls
``fit`` for ``--steps`` steps on every model in turn, the order rotated round by round so
drift falls on all alike. Without XLA, ``--eager-steps`` steps in the first
``--eager-repeats`` rounds only: an op-by-op step of a recurrent pair took 1-5 s on a 2-core
CPU. Steps/s is timed from the start of the second step to the end of the epoch (Keras
syncs the device there), with Keras's asynchronous dispatch left on. Reported per (pair,
setting): the median over the rounds (min-max), the ratios cached/student-only and
online/student-only (ratio of the medians, range of the per-round ratios), and
bfloat16/float32 per variant.

Writes ``gpu.md`` (table, goals of issue 17, provenance) and ``gpu.csv`` (one row per pair
and setting, provenance in columns) to ``--out-dir``, and the code's digests to its
``code.json``; prints the table.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BACKEND = "jax"

if os.environ.setdefault("KERAS_BACKEND", BACKEND) != BACKEND:
    sys.exit(
        f"benchmarks/gpu.py measures Keras's JAX backend; KERAS_BACKEND is "
        f"{os.environ['KERAS_BACKEND']!r}. Run it with KERAS_BACKEND=jax (or unset)."
    )

# This checkout's kdzoo, whatever else is installed: the provenance fingerprints its files.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.config.backend() != BACKEND:  # keras was imported before this script set the variable
    sys.exit(
        f"benchmarks/gpu.py measures Keras's JAX backend; Keras runs on "
        f"{keras.config.backend()!r}. Run it with KERAS_BACKEND=jax in a fresh process."
    )

import kdzoo  # noqa: E402
from kdzoo import models, results  # noqa: E402
from kdzoo.distillation import Distiller, arrays_with_teacher_outputs  # noqa: E402
from kdzoo.tasks import Task  # noqa: E402

VARIANTS = ("student", "online", "cached")
PRECISIONS = ("float32", "mixed_bfloat16")
JIT = {"on": True, "off": False}
MODALITIES = {"image", "audio", "tabular", "text"}

#: The large-teacher pair: the zoo's image CNN builder, wide, on larger colour images.
LARGE = "image_cnn_large"
LARGE_CONFIG = {
    "full": {"image_shape": (32, 32, 3), "filters": (128, 256, 512), "hidden_units": 1024},
    "tiny": {"image_shape": (16, 16, 3), "filters": (32, 64, 128), "hidden_units": 128},
}
#: The teacher's forward FLOPs over the student's that ``LARGE`` must reach.
LARGE_MIN_FLOPS_RATIO = 20.0

#: Goals of issue 17, graded on the rows with ``jit_compile=True`` (Keras's default for JAX).
CACHED_GOAL = 0.9
BF16_GOAL = 1.3

#: The run's settings when not given on the command line: a GPU run, and ``--tiny`` (the
#: test's smoke run: a few steps, one round, two cheap pairs).
DEFAULTS = {
    "full": {
        "pairs": f"{LARGE},image_cnn,tabular_mlp,av_to_audio,text_lstm,audio_crnn",
        "batch": 256,
        "steps": 100,
        "eager_steps": 3,
        "warmup": 2,
        "repeats": 5,
        "eager_repeats": 2,
    },
    "tiny": {
        "pairs": f"{LARGE},tabular_mlp",
        "batch": 8,
        "steps": 3,
        "eager_steps": 3,
        "warmup": 1,
        "repeats": 1,
        "eager_repeats": 1,
    },
}


# ---------------------------------------------------------------------- provenance
# kdzoo.results' Provenance.collect imports TensorFlow to read its version, so this script
# writes the same provenance itself, with kdzoo.results' fingerprint helpers (which need
# neither TensorFlow nor pandas): the fields of kdzoo.results.Provenance in the same JSON
# comment, CSV columns and code.json digests (tests/test_gpu_benchmark.py reads them back
# with kdzoo.results).
_MD_MARK = "<!-- kdzoo-provenance "
_CODE_FILE = "code.json"


def _version(distribution: str) -> str:
    """The installed version, read from package metadata (nothing is imported)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def _devices() -> str:
    kinds = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    return ", ".join(f"{n}× {k}" for k, n in {k: kinds.count(k) for k in kinds}.items())


def _on_gpu() -> bool:
    return any(d.platform == "gpu" for d in jax.devices())


def _command(argv) -> str:
    import shlex

    return " ".join(["python", "benchmarks/gpu.py", *map(shlex.quote, argv)])


@dataclasses.dataclass(frozen=True)
class Made:
    """What made the results: ``fields`` are ``kdzoo.results.Provenance``'s; ``extra`` the
    JAX run's own (device, JAX versions, whether TensorFlow or pandas was imported)."""

    fields: dict
    extra: dict
    digests: dict

    @classmethod
    def collect(cls, argv, args) -> Made:
        files = sorted({*results.loaded_files(ROOT), "benchmarks/gpu.py"})
        digests = results.file_digests(files, ROOT)
        # The device machine's copy may carry a .git of another commit than its files:
        # --commit, when given, is what the run measured.
        commit = args.commit or _git("rev-parse", "--short=10", "HEAD")
        if args.commit or commit is None:
            commit, dirty = commit or "unknown", bool(args.dirty)
        else:
            dirty = bool(_git("status", "--porcelain", "--", *files))
        fields = {
            "command": _command(argv),
            "seeds": str(args.seed),
            "date": time.strftime("%Y-%m-%d"),
            "kdzoo": kdzoo.__version__,
            "commit": commit,
            "dirty": dirty,
            "code": results.code_fingerprint(digests),
            "python": platform.python_version(),
            "tensorflow": _version("tensorflow"),
            "keras": keras.__version__,
            "numpy": np.__version__,
            "machine": results.machine(),
            "accelerator": _devices(),
            "op_determinism": "not checked",
        }
        extra = {
            "backend": keras.config.backend(),
            "jax": jax.__version__,
            "jaxlib": _version("jaxlib"),
            "devices": str(jax.devices()),
            "tensorflow_imported": "tensorflow" in sys.modules,
            "pandas_imported": "pandas" in sys.modules,
        }
        return cls(fields, extra, digests)

    def markdown(self) -> str:
        f, e = self.fields, self.extra
        tree = "dirty tree" if f["dirty"] else "clean tree"
        imported = [n for n in ("tensorflow", "pandas") if e[f"{n}_imported"]]
        imports = (
            f"imported, being installed: {', '.join(imported)}"
            if imported
            else "neither it nor pandas imported"
        )
        return (
            f"{_MD_MARK}{json.dumps(f, ensure_ascii=False)} -->\n"
            f"Made by `{f['command']}` (seed {f['seeds']}) on {f['date']}: kdzoo {f['kdzoo']} "
            f"at commit {f['commit']} ({tree}, code {f['code']}); Python {f['python']}, "
            f"Keras {f['keras']} on JAX {e['jax']} (jaxlib {e['jaxlib']}), NumPy {f['numpy']}; "
            f"TensorFlow {f['tensorflow']} ({imports}); {f['machine']}; devices {e['devices']}."
        )

    def record_code(self, out_dir: Path) -> None:
        """Adds this run's digests to ``out_dir/code.json`` (read, merged, replaced whole)."""
        path = out_dir / _CODE_FILE
        lock = open(out_dir / f".{_CODE_FILE}.lock", "a")  # noqa: SIM115 - closed below
        try:
            try:
                import fcntl

                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:  # not POSIX: no lock
                pass
            manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            manifest[self.fields["code"]] = self.digests
            partial = path.with_name(f".{path.name}.partial")
            partial.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
            os.replace(partial, path)
        finally:
            lock.close()


# ---------------------------------------------------------------------- pairs and data
def zoo_pairs() -> list[str]:
    """The registered pairs and every family whose inputs are image/audio/tabular/text."""
    families = [
        name for name in models.list_models() if set(models.get_spec(name).modalities) <= MODALITIES
    ]
    return [*models.list_pairs(), *families]


def build_pair(name, classes, size):
    """``(teacher, student)`` of pair ``name`` under the current dtype policy."""
    if name == LARGE:
        config = dict(LARGE_CONFIG[size])
        shape = config.pop("image_shape")
        teacher = models.build("image_cnn", "teacher", classes, image_shape=shape, **config)
        return teacher, models.build("image_cnn", "student", classes, image_shape=shape)
    return models.build_pair(name, classes)


def _inputs(model) -> dict:
    """``{batch key: KerasTensor}`` of a model's inputs."""
    spec = model.input
    if isinstance(spec, dict):
        return dict(spec)
    return {t.name: t for t in (spec if isinstance(spec, list | tuple) else [spec])}


def random_inputs(teacher, student, rows, seed) -> dict:
    """Random NumPy arrays for every key the two models read: normal floats, and token ids
    in ``[1, vocabulary)`` for integer inputs (the smallest embedding's vocabulary)."""
    rng = np.random.default_rng(seed)
    vocab = [
        layer.input_dim
        for model in (teacher, student)
        for layer in model.layers
        if isinstance(layer, keras.layers.Embedding)
    ]
    x = {}
    for key, tensor in {**_inputs(teacher), **_inputs(student)}.items():
        shape = (rows, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            x[key] = rng.integers(1, min(vocab or [2]), shape).astype(tensor.dtype)
        else:
            x[key] = rng.standard_normal(shape).astype(tensor.dtype)
    return x


def forward_flops(model) -> float | None:
    """Forward FLOPs per example (XLA's cost analysis of the float32 inference pass), or
    None for a recurrent model, whose loop body XLA counts once."""
    # Lowered for the CPU wherever there is one: XLA's CPU analysis counts convolutions,
    # while a GPU's is empty before compiling and leaves cuDNN calls out after.
    cpu = jax.devices("cpu")[:1]
    where = {"sharding": jax.sharding.SingleDeviceSharding(cpu[0])} if cpu else {}

    def like(shape, dtype):
        return jax.ShapeDtypeStruct(tuple(shape), str(dtype), **where)

    spec = {key: like((1, *t.shape[1:]), t.dtype) for key, t in _inputs(model).items()}
    weights = [like(v.shape, v.dtype) for v in model.trainable_variables]
    state = [like(v.shape, v.dtype) for v in model.non_trainable_variables]

    def forward(weights, state, x):
        return model.stateless_call(weights, state, x, training=False)[0]

    try:
        lowered = jax.jit(forward).lower(weights, state, spec)
    except NotImplementedError:
        # On a GPU, Keras's LSTM picks JAX's cuDNN kernel as it traces, and that kernel has
        # no CPU lowering; such a model is recurrent, so it would count none anyway.
        return None
    if "while" in lowered.as_text():
        return None
    # The lowered module's analysis is XLA's CPU one; on a GPU it can come back empty, and
    # then the compiled module's is used (cuDNN calls in it may count as no FLOPs: a ratio
    # that comes out 0 or missing is reported as not measured, never as a number).
    for analyse in (lowered.cost_analysis, lambda: lowered.compile().cost_analysis()):
        cost = analyse()
        cost = cost[0] if isinstance(cost, list) and cost else cost
        if cost and float(cost.get("flops", 0.0)) > 0:
            return float(cost["flops"])
    return None


# ---------------------------------------------------------------------- models
class StepTimer(keras.callbacks.Callback):
    """Seconds from the start of the second step to the end of the epoch: ``steps - 1``
    steps.

    Both ends are read in the training loop's thread. The second step starts once the
    first is dispatched, and the epoch ends once every step's results are on the host (the
    epoch's metrics depend on them). Keras's asynchronous dispatch stays on (no
    ``on_train_batch_end``), so steps overlap as they do in any ``fit``; what remains of
    the first step on the device when the second starts (at most one step) is counted."""

    def on_train_begin(self, logs=None):
        self.start = self.end = None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 1:
            self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.end = time.perf_counter()


@dataclasses.dataclass
class Trainee:
    """One model to time: a (precision, jit) setting and a variant, with its data."""

    precision: str
    jit: bool
    variant: str
    model: keras.Model
    x: dict
    y: np.ndarray
    steps: int

    @property
    def key(self):
        return (self.precision, self.jit, self.variant)

    def fit(self, steps):
        timer = StepTimer()
        self.model.fit(
            self.x,
            self.y,
            batch_size=self.y.shape[0] // self.steps,
            epochs=1,
            steps_per_epoch=steps,
            shuffle=False,
            callbacks=[timer],
            verbose=0,
        )
        return timer

    def steps_per_s(self):
        timer = self.fit(self.steps)
        return (self.steps - 1) / (timer.end - timer.start)


def _keras_lstm_loop(model) -> None:
    """Sends ``model``'s LSTMs (those in a ``Bidirectional`` too) to Keras's own loop.

    JAX's cuDNN LSTM (``jax.experimental.rnn``), which Keras's ``use_cudnn="auto"`` picks on
    a GPU, takes float32 only: under ``mixed_bfloat16`` the first step failed on an H200
    ("Unknown output type bfloat16", JAX 0.11.2, Keras 3.15.1) instead of falling back.
    ``use_cudnn`` is read at each call, so setting it after the build is enough.
    """
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.LSTM):
            layer.use_cudnn = False


def build_trainees(name, args, precision, jit):
    """The three variants of one pair under one setting, compiled, on fresh models."""
    keras.config.set_dtype_policy(precision)
    try:
        task = Task.classification(num_classes=args.classes)
        built = {}
        for variant in VARIANTS:
            keras.utils.set_random_seed(args.seed)  # the same initial weights for each
            built[variant] = build_pair(name, args.classes, args.size)
            if keras.config.dtype_policy().compute_dtype != "float32" and _on_gpu():
                for model in built[variant]:
                    _keras_lstm_loop(model)
        steps = args.steps if jit else args.eager_steps
        rows = args.batch * steps
        teacher, student = built["student"]
        x = random_inputs(teacher, student, rows, args.seed)
        y = np.random.default_rng(args.seed + 1).integers(0, args.classes, rows).astype("int32")

        def optimizer():
            return keras.optimizers.Adam(learning_rate=args.learning_rate)

        student.compile(
            optimizer=optimizer(),
            loss=task.label_loss(),
            metrics=task.keras_metrics(),
            jit_compile=jit,
        )
        # Alone, the student reads only its own keys (a cross-modal teacher reads more).
        own = {key: x[key] for key in _inputs(student)}
        trainees = [Trainee(precision, jit, "student", student, own, y, steps)]
        for variant in ("online", "cached"):
            teacher, student = built[variant]
            distiller = Distiller(teacher=teacher, student=student)
            distiller.compile(optimizer=optimizer(), metrics=task.keras_metrics(), jit_compile=jit)
            data = x
            if variant == "cached":
                data = arrays_with_teacher_outputs(distiller.ensemble, x, batch_size=args.batch)
            trainees.append(Trainee(precision, jit, variant, distiller, data, y, steps))
        return trainees
    finally:
        keras.config.set_dtype_policy("float32")


# ---------------------------------------------------------------------- measuring
def measure_pair(name, args):
    """``(info, {(precision, jit, variant): [steps/s per round]})`` for one pair, every
    model warmed up first, then the rounds interleaved."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    teacher, student = build_pair(name, args.classes, args.size)
    info = {
        "pair": name,
        "teacher": teacher.name,
        "student": student.name,
        "inputs": "; ".join(
            f"{k} {tuple(t.shape[1:])} {t.dtype}"
            for k, t in sorted({**_inputs(teacher), **_inputs(student)}.items())
        ),
        "teacher_params": teacher.count_params(),
        "student_params": student.count_params(),
        "teacher_flops": forward_flops(teacher),
        "student_flops": forward_flops(student),
    }
    if name == LARGE and info["teacher_flops"] and info["student_flops"]:
        ratio = info["teacher_flops"] / info["student_flops"]
        if ratio < LARGE_MIN_FLOPS_RATIO:
            raise ValueError(
                f"{LARGE}: the teacher has {ratio:.1f}× the student's forward FLOPs; "
                f"LARGE_CONFIG must give at least {LARGE_MIN_FLOPS_RATIO:g}×."
            )
    del teacher, student
    trainees = []
    for precision in args.precisions:
        for jit in args.jit:
            trainees += build_trainees(name, args, precision, jit)
    for trainee in trainees:  # the first fit compiles
        trainee.fit(args.warmup)
    speeds = {t.key: [] for t in trainees}
    for r in range(args.repeats):
        shift = r % len(trainees)
        for trainee in trainees[shift:] + trainees[:shift]:
            if trainee.jit or r < args.eager_repeats:
                speeds[trainee.key].append(trainee.steps_per_s())
    del trainees
    gc.collect()
    return info, speeds


# ---------------------------------------------------------------------- rows and report
def _ratio(a, b):
    """The ratio of the medians and the range of the per-round ratios."""
    per_round = [x / y for x, y in zip(a, b, strict=True)]
    return statistics.median(a) / statistics.median(b), min(per_round), max(per_round)


def rows_of(info, speeds, args):
    """One row per setting of a pair: steps/s per variant and the ratios."""
    rows = []
    for precision in args.precisions:
        for jit in args.jit:
            row = {**info, "precision": precision, "jit_compile": jit, "batch": args.batch}
            row["steps"] = args.steps if jit else args.eager_steps
            row["repeats"] = args.repeats if jit else args.eager_repeats
            for variant in VARIANTS:
                values = speeds[(precision, jit, variant)]
                row[f"{variant}_steps_per_s"] = statistics.median(values)
                row[f"{variant}_min"] = min(values)
                row[f"{variant}_max"] = max(values)
                row[f"{variant}_per_round"] = " ".join(f"{v:.4g}" for v in values)
            for variant in ("cached", "online"):
                median, low, high = _ratio(
                    speeds[(precision, jit, variant)], speeds[(precision, jit, "student")]
                )
                row[f"{variant}_vs_student"] = median
                row[f"{variant}_vs_student_min"] = low
                row[f"{variant}_vs_student_max"] = high
            for variant in VARIANTS:
                reference = ("float32", jit, variant)
                key = f"bf16_vs_f32_{variant}"
                if precision != "float32" and reference in speeds:
                    row[key] = _ratio(speeds[(precision, jit, variant)], speeds[reference])[0]
                else:
                    row[key] = None
            rows.append(row)
    return rows


def _speed(row, variant):
    return (
        f"{row[f'{variant}_steps_per_s']:.1f} "
        f"({row[f'{variant}_min']:.1f}-{row[f'{variant}_max']:.1f})"
    )


def _ratio_cell(row, variant):
    return (
        f"{row[f'{variant}_vs_student']:.2f}× "
        f"({row[f'{variant}_vs_student_min']:.2f}-{row[f'{variant}_vs_student_max']:.2f})"
    )


def _times(value):
    return "—" if value is None else f"{value:.2f}×"


def _flops_ratio(row):
    if row["teacher_flops"] is None or row["student_flops"] is None:
        return "—"
    return f"{row['teacher_flops'] / row['student_flops']:.0f}×"


def table(rows) -> str:
    lines = [
        "| pair | precision | jit_compile | student only | online KD | cached KD | "
        "cached / student | online / student | bf16 / f32 (student, online, cached) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        bf16 = ", ".join(_times(row[f"bf16_vs_f32_{v}"]) for v in VARIANTS)
        lines.append(
            f"| {row['pair']} | {row['precision']} | {row['jit_compile']} | "
            f"{_speed(row, 'student')} | {_speed(row, 'online')} | {_speed(row, 'cached')} | "
            f"{_ratio_cell(row, 'cached')} | {_ratio_cell(row, 'online')} | "
            f"{bf16 if row['precision'] != 'float32' else '—'} |"
        )
    return "\n".join(lines)


def pairs_table(rows) -> str:
    lines = [
        "| pair | teacher | student | inputs | params (teacher / student) | "
        "forward FLOPs teacher / student |",
        "|---|---|---|---|---|---|",
    ]
    for row in {r["pair"]: r for r in rows}.values():
        lines.append(
            f"| {row['pair']} | {row['teacher']} | {row['student']} | {row['inputs']} | "
            f"{row['teacher_params']:,} / {row['student_params']:,} | {_flops_ratio(row)} |"
        )
    return "\n".join(lines)


def goals(rows) -> list[str]:
    """The issue's two goals, graded on the ``jit_compile=True`` rows."""
    on_gpu = _on_gpu()
    caveat = "" if on_gpu else " (measured without a GPU: the goals are for one)"
    jitted = [r for r in rows if r["jit_compile"]]
    lines = []
    if jitted:
        worst = min(jitted, key=lambda r: r["cached_vs_student"])
        status = "met" if worst["cached_vs_student"] >= CACHED_GOAL else "missed"
        lines.append(
            f"- Cached KD ≥ {CACHED_GOAL:g}× student-only steps/s, every pair and precision "
            f"with `jit_compile=True`: **{status}**{caveat}; lowest "
            f"{worst['cached_vs_student']:.2f}× ({worst['pair']}, {worst['precision']}) over "
            f"{len(jitted)} rows."
        )
    else:
        lines.append(f"- Cached KD ≥ {CACHED_GOAL:g}× student-only: not measured (no jit row).")
    large = [r for r in jitted if r["pair"] == LARGE and r["bf16_vs_f32_online"] is not None]
    if large:
        value = large[0]["bf16_vs_f32_online"]
        status = "met" if value >= BF16_GOAL else "missed"
        lines.append(
            f"- bfloat16 ≥ {BF16_GOAL:g}× float32 on the large-teacher pair ({LARGE}, online "
            f"KD, `jit_compile=True`): **{status}**{caveat}; {value:.2f}× (student only "
            f"{_times(large[0]['bf16_vs_f32_student'])}, cached KD "
            f"{_times(large[0]['bf16_vs_f32_cached'])})."
        )
    else:
        lines.append(
            f"- bfloat16 ≥ {BF16_GOAL:g}× float32 on {LARGE}: not measured (it needs {LARGE} "
            "in both precisions with `jit_compile=True`)."
        )
    return lines


def markdown(rows, made, args, skipped, pending, failed=()) -> str:
    eager = ""
    if args.eager_repeats < args.repeats and False in args.jit:
        eager = f" (without `jit_compile`, the first {args.eager_repeats})"
    lines = [
        "# kdzoo on Keras's JAX backend: steps/s of student-only, online KD and cached KD",
        "",
        made.markdown(),
        "",
        f"Batch {args.batch}; {args.steps} steps per timing with `jit_compile=True`, "
        f"{args.eager_steps} without; {args.repeats} interleaved round(s){eager} after a "
        f"{args.warmup}-step warm-up; Adam (lr {args.learning_rate:g}), {args.classes} "
        "classes, random NumPy inputs, no shuffling. Each timing runs from the start of the "
        "second step to the end of the epoch. Cells: median steps/s over the rounds "
        "(min-max); ratios: of the medians (range of the per-round ratios). Online KD runs the "
        "teacher every step; cached KD reads its outputs from `x['teacher_outputs']` "
        "(`arrays_with_teacher_outputs`). Without `jit_compile` Keras's JAX backend runs the "
        "step op by op.",
        "",
        "## Goals (issue 17)",
        "",
        *goals(rows),
        "",
        "## Steps per second",
        "",
        table(rows) if rows else "(no pair finished)",
        "",
        "## Pairs",
        "",
        pairs_table(rows) if rows else "",
        "",
        "Forward FLOPs: XLA's cost analysis of one float32 example. None is given (—) for a "
        "recurrent model, whose loop body would be counted once, or where the device's "
        "analysis counts none.",
        "",
        "LSTMs: in float32 Keras runs them on a GPU with JAX's cuDNN kernel; that kernel takes "
        "float32 only (under `mixed_bfloat16` the step failed), so under `mixed_bfloat16` "
        "the script sets `use_cudnn=False` and they run Keras's own loop. A recurrent pair's "
        "bf16/f32 ratio compares the two.",
    ]
    if pending:
        lines += [
            "",
            f"Still running when this was written; not yet measured: {', '.join(pending)}.",
        ]
    if skipped:
        lines += ["", f"Skipped (over `--budget-s {args.budget_s:g}`): {', '.join(skipped)}."]
    if failed:
        lines += ["", "Failed (not measured):", *(f"- {name}: {error}" for name, error in failed)]
    return "\n".join(lines) + "\n"


def write(out_dir, rows, made, args, skipped, pending, failed=()):
    out_dir.mkdir(parents=True, exist_ok=True)
    made.record_code(out_dir)
    columns = [*rows[0], *made.fields, *made.extra] if rows else []
    # Each file is written whole or not at all: a run stopped mid-write keeps the last one.
    partial = out_dir / ".gpu.csv.partial"
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **made.fields, **made.extra})
    os.replace(partial, out_dir / "gpu.csv")
    text = markdown(rows, made, args, skipped, pending, failed)
    partial = out_dir / ".gpu.md.partial"
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, out_dir / "gpu.md")
    return text


# ---------------------------------------------------------------------- main
def _names(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="smoke run: tiny sizes, one round")
    parser.add_argument("--pairs", help=f"comma-separated; 'all' for every zoo pair and {LARGE}")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--jit", default="on,off", help="jit_compile settings: on, off or both")
    parser.add_argument("--batch", type=int, help="rows per step (default 256; --tiny 8)")
    parser.add_argument("--steps", type=int, help="steps per timed fit with jit_compile")
    parser.add_argument("--eager-steps", type=int, help="steps per timed fit without it")
    parser.add_argument("--warmup", type=int, help="untimed steps per model (compiles)")
    parser.add_argument("--repeats", type=int, help="interleaved rounds (median)")
    parser.add_argument(
        "--eager-repeats", type=int, help="of those, the rounds that time the steps without XLA"
    )
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=0.0,
        help="skip the pairs that would end past it (0: none)",
    )
    parser.add_argument("--commit", help="recorded when git cannot read the checkout")
    parser.add_argument("--dirty", action="store_true", help="with --commit: the tree was dirty")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    args.size = "tiny" if args.tiny else "full"
    for key, value in DEFAULTS[args.size].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    known = [LARGE, *zoo_pairs()]
    args.pairs = known if args.pairs == "all" else _names(args.pairs)
    unknown = [p for p in args.pairs if p not in known]
    if unknown:
        parser.error(f"--pairs: unknown {unknown}; choose from {', '.join(known)} or 'all'")
    args.precisions = _names(args.precisions)
    if not set(args.precisions) <= set(PRECISIONS) or not args.precisions:
        parser.error(f"--precisions: choose from {', '.join(PRECISIONS)}")
    jit = _names(args.jit)
    if not set(jit) <= set(JIT) or not jit:
        parser.error("--jit: on, off or on,off")
    args.jit = [JIT[j] for j in jit]
    if (
        min(args.steps, args.eager_steps) < 2
        or min(args.repeats, args.eager_repeats, args.warmup) < 1
    ):
        parser.error(
            "need --steps and --eager-steps >= 2; --repeats, --eager-repeats, --warmup >= 1"
        )
    args.eager_repeats = min(args.eager_repeats, args.repeats)
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    out_dir = Path(args.out_dir)
    print(f"JAX {jax.__version__} on {_devices()}; pairs {', '.join(args.pairs)}", file=sys.stderr)
    start = time.perf_counter()
    rows, skipped, spent, failed = [], [], [], []
    text = ""
    for i, name in enumerate(args.pairs):
        elapsed = time.perf_counter() - start
        expected = statistics.mean(spent) if spent else 0.0
        if args.budget_s and elapsed + expected > args.budget_s:
            skipped = args.pairs[i:]
            break
        try:
            info, speeds = measure_pair(name, args)
        except Exception as error:  # one pair's failure must not lose the others' numbers
            traceback.print_exc()
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            failed.append((name, f"`{type(error).__name__}: {message}`"))
        else:
            rows += rows_of(info, speeds, args)
        spent.append(time.perf_counter() - start - elapsed)
        print(f"{name}: {spent[-1]:.0f} s", file=sys.stderr)
        text = write(
            out_dir, rows, Made.collect(argv, args), args, skipped, args.pairs[i + 1 :], failed
        )
    text = write(out_dir, rows, Made.collect(argv, args), args, skipped, [], failed)
    print(text)
    imported = [name for name in ("tensorflow", "pandas") if name in sys.modules]
    if imported:
        # Keras imports both on its own where they are installed (pandas in its array
        # slicing, for example), so this is a fact for the provenance, not a failure: that the
        # script *needs* neither is tests/test_gpu_benchmark.py's check, with both blocked.
        print(
            f"note: {', '.join(imported)} imported here (installed on this machine); the "
            "script needs neither.",
            file=sys.stderr,
        )
    if failed:
        print(f"error: not measured: {', '.join(name for name, _ in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

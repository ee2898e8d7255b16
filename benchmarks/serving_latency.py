"""Serving latency of the teacher and the distilled student SavedModels, on real inputs.

In one run it trains the AV-digits ``av_to_audio`` pair briefly (the image+audio
``multimodal_concat`` teacher, then the ``audio_crnn`` student distilled from it; latency
does not depend on the weights, so ``--epochs`` defaults to 1), exports both with
``kdzoo.serving.export_for_serving`` (raw inputs: PNG bytes + waveform for the teacher, the
waveform for the student; the preprocessing is inside both graphs), loads each SavedModel
with ``tf.saved_model.load`` and times ``serving_default`` on real AV-digits test inputs:

* latency at batch 1 and batch 32 of ``serving_default`` (raw inputs) and of
  ``serving_preprocessed`` (the model alone): median (and p90) of ``--repeats`` calls
  after ``--warmup`` calls, and the student / teacher ratio of the medians;
* parameters and on-disk size (the whole version folder) of both, and their ratios.

Goals: student latency <= 1/4 of the teacher's, parameters <= 1/8. Prints Markdown and
writes benchmarks/results/serving_latency.md.

    python benchmarks/serving_latency.py [--epochs 1] [--repeats 200]

Needs the real datasets under $KDZOO_DATA_DIR (the Makefile points it at ../shared/data).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from kdzoo import datasets, models  # noqa: E402
from kdzoo.recipe import phases  # noqa: E402
from kdzoo.results import Provenance, record_code, script_command  # noqa: E402
from kdzoo.serving import (  # noqa: E402
    RawPreprocessor,
    ServingPreprocessing,
    export_for_serving,
    raw_examples,
)

RESULTS = Path(__file__).parent / "results"
BATCHES = (1, 32)


def _train(data, epochs, seed):
    """The av_to_audio pair: teacher fitted on image+audio, student distilled from it (the
    recipe's phases with the default objective)."""
    keras.utils.set_random_seed(seed)
    shapes = {f"{m}_shape": tuple(s.shape) for m, s in data.input_specs.items()}
    teacher, student = models.build_pair("av_to_audio", data.num_classes, **shapes)
    train = data.splits["train"]
    phases.train_teacher(teacher, train, epochs=epochs, verbose=0)
    distiller = phases.distil_student(
        teacher,
        student,
        train,
        teacher_inputs=("image", "audio"),
        student_inputs=("audio",),
        epochs=epochs,
        verbose=0,
    )
    return teacher, distiller


def _latencies(cases, warmup, repeats):
    """Median and p90 milliseconds of each ``(signature, inputs)`` case. The cases are
    timed in turn, repeat after repeat, so load from other processes falls on all alike."""
    tensors = [(fn, {k: tf.constant(v) for k, v in inputs.items()}) for fn, inputs in cases]
    for fn, inputs in tensors:
        for _ in range(warmup):
            fn(**inputs)
    times = [[] for _ in cases]
    for _ in range(repeats):
        for i, (fn, inputs) in enumerate(tensors):
            start = time.perf_counter()
            fn(**inputs)["probabilities"].numpy()  # on the host, as a server returns it
            times[i].append(time.perf_counter() - start)
    out = []
    for t in times:
        t.sort()
        out.append((1000 * statistics.median(t), 1000 * t[int(0.9 * (len(t) - 1))]))
    return out


def _disk_bytes(folder):
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def run(epochs=3, repeats=200, warmup=20, seed=0):
    data = datasets.load("av_digits", batch_size=64, seed=seed)
    teacher, distiller = _train(data, epochs, seed)
    raw = raw_examples(data.arrays["test"], ("image", "audio"), count=max(BATCHES))
    rows, cases, keys = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for role, model, modalities in (
            ("teacher", teacher, ("image", "audio")),
            ("student", distiller.student, ("audio",)),
        ):
            preprocessing = ServingPreprocessing.from_dataset(data, modalities)
            path = export_for_serving(
                model,
                tmp,
                name=f"av_digits_{role}",
                preprocessing=preprocessing,
                teacher_name=teacher.name if role == "student" else None,
                warmup_inputs={m: raw[m][:4] for m in modalities},
            )
            loaded = tf.saved_model.load(str(path))
            rows[role] = {"params": model.count_params(), "disk": _disk_bytes(path)}
            features = RawPreprocessor(preprocessing, modalities)(
                {m: tf.constant(raw[m]) for m in modalities}
            )
            for b in BATCHES:
                cases.append(
                    (loaded.signatures["serving_default"], {m: raw[m][:b] for m in modalities})
                )
                keys.append((role, "raw", b))
                model_inputs = {m: v[:b].numpy() for m, v in features.items()}
                cases.append((loaded.signatures["serving_preprocessed"], model_inputs))
                keys.append((role, "model", b))
        for key, value in zip(keys, _latencies(cases, warmup, repeats), strict=True):
            rows[key[0]][key[1:]] = value
    return rows


def _made(command, seed):
    made = Provenance.collect(command, (seed,))
    record_code(RESULTS, made)
    return made


def markdown(rows, command, seed) -> str:
    t, s = rows["teacher"], rows["student"]
    lines = [
        "# Serving latency: teacher vs distilled student SavedModel",
        "",
        _made(command, seed).markdown(),
        "",
        "`tf.saved_model.load(...).signatures[...]` on real AV-digits test inputs; "
        "milliseconds, median (p90), the four cases timed in turn. *raw*: "
        "`serving_default` (PNG bytes / waveform in, preprocessing inside the graph); "
        "*model*: `serving_preprocessed` (log-mel and pixels in). Goals: student/teacher "
        "latency <= 0.25, params <= 0.125.",
        "",
        "| | params | on disk | batch 1 raw | batch 1 model | batch 32 raw | batch 32 model |",
        "|---|---|---|---|---|---|---|",
    ]
    cols = [(b, kind) for b in BATCHES for kind in ("raw", "model")]
    for role in ("teacher", "student"):
        r = rows[role]
        lat = [f"{r[(kind, b)][0]:.2f} ({r[(kind, b)][1]:.2f})" for b, kind in cols]
        lines.append(
            f"| {role} | {r['params']:,} | {r['disk'] / 1e6:.2f} MB | " + " | ".join(lat) + " |"
        )
    ratios = [f"**{s[(kind, b)][0] / t[(kind, b)][0]:.2f}**" for b, kind in cols]
    lines.append(
        f"| student / teacher | **{s['params'] / t['params']:.3f}** | "
        f"**{s['disk'] / t['disk']:.2f}** | " + " | ".join(ratios) + " |"
    )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="teacher and distiller epochs")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per batch size")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "serving_latency.md"))
    args = parser.parse_args()
    rows = run(args.epochs, args.repeats, args.warmup, args.seed)
    text = markdown(rows, script_command(), args.seed)  # every flag given, as given
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()

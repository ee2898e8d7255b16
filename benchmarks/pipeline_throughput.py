"""Input pipeline throughput against the student's training step, per modality.

For each modality's *training* pipeline (shuffled, augmented, batched, prefetched) it
measures, in one run:

* pipeline examples/s: full epochs of the pipeline alone, after a warm-up epoch that fills
  the cache (median of ``--repeats`` epochs);
* train-step examples/s: the registry's student model (``student`` preset) trained with
  ``fit`` on batches already in memory (a materialised, repeated dataset), so no input
  cost is included (median of ``--repeats`` epochs after a warm-up epoch);

and prints ratio = pipeline / train step. The goal is ratio >= 5: input is never the
bottleneck. Writes benchmarks/results/pipeline_throughput.{csv,md}.

    python benchmarks/pipeline_throughput.py [--batch-size 64] [--repeats 3]

Needs the real datasets under $KDZOO_DATA_DIR (the Makefile points it at ../shared/data).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from kdzoo import datasets, models  # noqa: E402
from kdzoo.data import AugmentConfig  # noqa: E402
from kdzoo.results import Provenance, record_code, script_command, with_provenance  # noqa: E402

RESULTS = Path(__file__).parent / "results"

# (row label, dataset, modalities, registry family, augment, what each epoch does)
WAVE = AugmentConfig.with_waveform()
CASES = [
    ("image", "mnist", ("image",), "image_cnn", True, "translate, rotate, zoom, contrast"),
    ("image", "mnist", ("image",), "image_cnn", False, "none (cached pixels)"),
    ("audio", "fsdd", ("audio",), "audio_crnn", True, "SpecAugment on cached log-mel"),
    ("audio", "fsdd", ("audio",), "audio_crnn", WAVE, "noise, gain, shift, log-mel, SpecAugment"),
    ("audio", "fsdd", ("audio",), "audio_crnn", False, "none (cached log-mel)"),
    ("text", "sst2", ("text",), "text_lstm", False, "none (cached token ids)"),
    ("image+audio", "av_digits", ("image", "audio"), "multimodal_concat", True, "defaults"),
]


def _epoch_seconds(ds):
    start = time.perf_counter()
    n = 0
    for _, y in ds:
        n += int(y.shape[0])
    return time.perf_counter() - start, n


def pipeline_rate(ds, repeats):
    _epoch_seconds(ds)  # warm-up: fills the cache, traces the maps
    rates = []
    for _ in range(repeats):
        seconds, n = _epoch_seconds(ds)
        rates.append(n / seconds)
    return statistics.median(rates), n


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def train_step_rate(model, batches, repeats):
    """Examples/s of ``fit`` on ``batches`` held in memory (first epoch: tracing, dropped)."""
    xs = {k: tf.stack([x[k] for x, _ in batches]) for k in batches[0][0]}
    ys = tf.stack([y for _, y in batches])
    data = tf.data.Dataset.from_tensor_slices((xs, ys)).cache().repeat()
    timer = _EpochTimer()
    model.fit(data, steps_per_epoch=len(batches), epochs=repeats + 1, verbose=0, callbacks=[timer])
    per_epoch = len(batches) * int(ys.shape[1])
    return statistics.median(per_epoch / s for s in timer.seconds[1:])


def run(batch_size=64, repeats=3, seed=0, max_batches=40):
    rows = []
    step_rates = {}
    for label, name, modalities, family, augment, work in CASES:
        keras.utils.set_random_seed(seed)
        data = datasets.load(
            name,
            batch_size=batch_size,
            seed=seed,
            modalities=modalities,
            augment=augment,
            split="train",
        )
        train = data.splits["train"]
        pipe_rate, n = pipeline_rate(train, repeats)
        shapes = {f"{m}_shape": tuple(s.shape) for m, s in data.input_specs.items()}
        kwargs = dict(shapes)
        if "text" in modalities:
            kwargs = {
                "sequence_length": shapes["text_shape"][0],
                "vocab_size": data.text_vectorizer.vocab_size,
            }
        if family == "multimodal_concat":
            kwargs["modalities"] = modalities
        if name not in step_rates:  # the same student and batches, augmented or not
            model = models.build(family, "student", num_classes=data.num_classes, **kwargs)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            model.compile(optimizer="adam", loss=loss)
            batches = [(x, y) for x, y in train.take(max_batches) if int(y.shape[0]) == batch_size]
            step_rates[name] = (train_step_rate(model, batches, repeats), model.count_params())
        step_rate, params = step_rates[name]
        rows.append(
            {
                "modality": label,
                "dataset": name,
                "per-epoch pipeline work": work,
                "student": f"{family} ({params:,} params)",
                "pipeline ex/s": round(pipe_rate),
                "train step ex/s": round(step_rate),
                "ratio": round(pipe_rate / step_rate, 1),
            }
        )
        print(rows[-1], flush=True)
        keras.backend.clear_session()
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (no tabulate dependency)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |"]
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = run(args.batch_size, args.repeats, args.seed)
    RESULTS.mkdir(exist_ok=True)
    made = Provenance.collect(script_command(), (args.seed,))
    record_code(RESULTS, made)
    with_provenance(table, made).to_csv(RESULTS / "pipeline_throughput.csv", index=False)
    header = (
        "# Pipeline throughput vs. student train step\n\n"
        f"{made.markdown()}\n\nMedians; CPU threads: "
        f"{tf.config.threading.get_inter_op_parallelism_threads() or os.cpu_count()} "
        f"(os.cpu_count()={os.cpu_count()}). Goal: ratio >= 5.\n\n"
    )
    markdown = header + markdown_table(table) + "\n"
    (RESULTS / "pipeline_throughput.md").write_text(markdown)
    print(markdown)
    missed = table[table["ratio"] < 5]
    if missed.empty:
        print("every pipeline meets the 5x goal")
    for row in missed.itertuples(index=False):
        print(f"MISSES the 5x goal: {row.modality} ({row[2]}): ratio {row.ratio}")


if __name__ == "__main__":
    main()

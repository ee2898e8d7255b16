"""Embedded dataset: generation time and per-modality accuracy ceilings.

Trains the teacher-size model of each modality, and the early-fusion model on image+audio
and on all three, on the same seeded split; prints test accuracy as a Markdown table and
writes it to benchmarks/results/embedded_ceilings.md.

    python benchmarks/embedded_dataset.py [--epochs 15] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pandas as pd  # noqa: E402

from kdzoo import models  # noqa: E402
from kdzoo.data import AudioConfig, TextVectorizer, from_arrays  # noqa: E402
from kdzoo.datasets import embedded  # noqa: E402
from kdzoo.datasets.catalog import CATALOG  # noqa: E402
from kdzoo.evaluation import classification_metrics  # noqa: E402
from kdzoo.results import Provenance, record_code, script_command  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def generation_seconds(repeats=3):
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        embedded.generate(5000, seed=i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ceilings(epochs, seed):
    arrays = embedded.generate(5000, seed=seed)
    splits = embedded.split(arrays, test_fraction=0.2)
    spec = CATALOG.get("embedded")
    vectorizer = TextVectorizer.adapt(
        splits["train"]["text"], spec.max_tokens, spec.sequence_length
    )
    text = {"vocab_size": vectorizer.vocab_size, "sequence_length": spec.sequence_length}
    rows = []
    runs = [
        ("image_cnn", ("image",), {}),
        ("audio_crnn", ("audio",), {}),
        ("text_lstm", ("text",), text),
        ("multimodal_concat", ("image", "audio"), {}),
        (
            "multimodal_concat",
            ("image", "audio", "text"),
            {"modalities": ("image", "audio", "text"), **text},
        ),
    ]
    for name, inputs, overrides in runs:
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)

        def pipeline(part, training, inputs=inputs):
            return from_arrays(
                splits[part],
                inputs,
                batch_size=64,
                training=training,
                seed=seed,
                audio_config=AudioConfig.embedded(),
                text_vectorizer=vectorizer,
            )

        train = pipeline("train", True)
        model = models.build(name, "teacher", **overrides)
        schedule = keras.optimizers.schedules.CosineDecay(
            2e-3, decay_steps=epochs * math.ceil(len(splits["train"]["label"]) / 64)
        )
        model.compile(
            keras.optimizers.Adam(schedule),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(train, epochs=epochs, verbose=0)
        metrics = classification_metrics(model, pipeline("test", False))
        rows.append({"model": f"{name}/teacher", "inputs": "+".join(inputs), **metrics})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seconds = generation_seconds()
    print(f"generate(5000): median {seconds:.2f} s over 3 runs")
    table = ceilings(args.epochs, args.seed)
    md = table.to_markdown(index=False, floatfmt=".3f") if _has_tabulate() else table.to_string()
    print(md)
    RESULTS.mkdir(exist_ok=True)
    made = Provenance.collect(script_command(), (args.seed,))
    record_code(RESULTS, made)
    (RESULTS / "embedded_ceilings.md").write_text(
        f"# Embedded set: generation time and ceilings\n\n{made.markdown()}\n\n"
        f"generate(5000): median {seconds:.2f} s\n\n{md}\n"
    )


def _has_tabulate():
    try:
        import tabulate  # noqa: F401

        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()

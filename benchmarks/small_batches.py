"""The global batch size on small training sets, on validation only: how ``distil()``'s
default batch (``global_batch_size=None``) was chosen.

The recipe's schedule counts epochs (early stopping after ``DEFAULTS.patience`` epochs
without a better validation accuracy, the learning rate halved after
``DEFAULTS.plateau_patience``), so a small training set in batches of 64 gets few updates
per epoch, and its models stop before they have learnt what they can. For each dataset,
training-set size, batch size and seed, ``distil()`` runs the recipe on a seeded subset of
the training split (``train_examples``) with the full validation split: the teacher, one
scratch try and one distillation candidate (``ce:0.5,kd:0.5@t=4``), each under the recipe's
rules. The table reports their validation accuracy (what a default may be chosen on) and,
beside it, their test accuracy (never used to choose). Writes
``benchmarks/results/small_batches.md`` and ``.csv``.

    python benchmarks/small_batches.py [--seeds 0 1 2] [--datasets mnist fsdd sst2]
        [--train-examples 400 1600] [--batches 64 32 16 8]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pandas as pd  # noqa: E402

from kdzoo.recipe import DistilConfig, distil  # noqa: E402
from kdzoo.results import (  # noqa: E402
    Provenance,
    markdown_table,
    record_code,
    script_command,
    with_provenance,
)

RESULTS = Path(__file__).parent / "results"
CANDIDATE = "ce:0.5,kd:0.5@t=4"


def one_run(dataset, train_examples, batch, seed) -> list[dict]:
    keras.backend.clear_session()
    start = time.perf_counter()
    result = distil(
        DistilConfig(
            dataset=dataset,
            train_examples=train_examples,
            global_batch_size=batch,
            seed=seed,
            candidates=(CANDIDATE,),
            scratch=("scratch",),
            distil_margin_se=0.0,
            strategy="default",
            verbose=0,
        )
    )
    seconds = time.perf_counter() - start
    common = {
        "dataset": dataset,
        "train_examples": train_examples,
        "batch": batch,
        "steps_per_epoch": train_examples // batch,
        "seed": seed,
    }
    table = result.table.set_index("model")
    rows = [
        {
            **common,
            "model": "teacher",
            "validation_accuracy": float(table.loc["teacher", "validation_accuracy"]),
            "test_accuracy": float(table.loc["teacher", "accuracy"]),
            "epochs": None,
        }
    ]
    for _, row in result.candidates.iterrows():
        rows.append(
            {
                **common,
                "model": "scratch" if row["kind"] == "scratch" else "distilled",
                "validation_accuracy": float(row["validation_accuracy"]),
                "test_accuracy": float(row["test_accuracy"]),
                "epochs": int(row["epochs"]),
            }
        )
    for row in rows:
        row["run_seconds"] = round(seconds, 1)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fsdd", "sst2"])
    parser.add_argument("--train-examples", type=int, nargs="+", default=[400, 1600])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 32, 16, 8])
    parser.add_argument("--name", default="small_batches", help="results file name")
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets:
        for n in args.train_examples:
            for batch in args.batches:
                for seed in args.seeds:
                    rows.extend(one_run(dataset, n, batch, seed))
                    print(rows[-3:], flush=True)
    per_seed = pd.DataFrame(rows)
    keys = ["dataset", "train_examples", "batch", "steps_per_epoch", "model"]
    summary = (
        per_seed.groupby(keys, sort=False)
        .agg(
            validation=("validation_accuracy", "mean"),
            validation_std=("validation_accuracy", "std"),
            test=("test_accuracy", "mean"),
            test_std=("test_accuracy", "std"),
            seeds=("seed", "count"),
        )
        .round(4)
        .reset_index()
    )
    wide = summary.pivot_table(
        index=["dataset", "train_examples", "batch", "steps_per_epoch"],
        columns="model",
        values="validation",
        sort=False,
    ).reset_index()
    made = Provenance.collect(script_command(), args.seeds)
    RESULTS.mkdir(exist_ok=True)
    record_code(RESULTS, made)
    with_provenance(per_seed, made).to_csv(RESULTS / f"{args.name}.csv", index=False)
    (RESULTS / f"{args.name}.md").write_text(
        "# The global batch size on small training sets (validation decides; test shown)\n\n"
        f"{made.markdown()}\n\n"
        "Validation accuracy, mean over seeds, by model (the recipe's teacher, one scratch "
        f"try, one distillation candidate `{CANDIDATE}`):\n\n{markdown_table(wide.round(4))}"
        f"\n\nMean ± std, validation and test:\n\n{markdown_table(summary)}\n",
        encoding="utf-8",
    )
    print(markdown_table(wide.round(4)))


if __name__ == "__main__":
    main()

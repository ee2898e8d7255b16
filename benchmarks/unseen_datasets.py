"""The default recipe on datasets kdzoo has never seen, run as a new user would.

scikit-learn's bundled classification sets (no download; ``pip install "kdzoo[sklearn]"``)
go through the user's path: a pandas DataFrame, ``kdzoo.datasets.from_dataframe`` with its
default splits (``test_fraction=0.2``, 10% of each class of the rest for validation, both
drawn with seed 0 and the same for every seed), and ``kdzoo.recipe.distil`` with every
setting left at its default: the family of the data's one modality (``tabular_mlp`` for
columns, ``image_cnn`` for images), its teacher and student presets, the default scratch
tries and distillation candidates, and the one-standard-error rule. Only the recipe's seed
changes between runs (initialisation and data order; the teacher is trained again for each
seed, as each user's run would).

Settings, fixed before any run:

- ``wine``: 178 rows, 13 numeric columns, 3 cultivars.
- ``breast-cancer``: 569 rows, 30 numeric columns, malignant or benign (as a two-class
  classification, the loader's default task).
- ``digits``: 1,797 handwritten digits as 64 numeric pixel columns, 10 classes.
- ``digits-images``: the same digits as 8 x 8 grey images (float pixels in [0, 1]).

Writes ``benchmarks/results/unseen-datasets.csv`` (per seed: the teacher, the tuned scratch
student and the recipe's student, then every student tried, validation and test side by
side) and ``.md`` (means over seeds). Test is shown, never used to choose.

    python benchmarks/unseen_datasets.py [--seeds 0 1 2 3 4] [--datasets wine digits ...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kdzoo.datasets import from_dataframe  # noqa: E402
from kdzoo.optional import require  # noqa: E402
from kdzoo.recipe import DistilConfig, distil  # noqa: E402
from kdzoo.results import (  # noqa: E402
    Provenance,
    markdown_table,
    record_code,
    script_command,
    with_provenance,
)

RESULTS = Path(__file__).parent / "results"
NAME = "unseen-datasets"
DATASETS = ("wine", "breast-cancer", "digits", "digits-images")
#: The loader's split seed: the same splits for every recipe seed.
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def frame(name: str) -> tuple[pd.DataFrame, dict]:
    """The dataset as a user would hand it to ``from_dataframe``: the frame and the columns."""
    sets = require("sklearn.datasets", "the unseen-datasets benchmark (kdzoo[sklearn])")
    if name == "digits-images":
        bunch = sets.load_digits()
        images = list(bunch.images.astype(np.float32) / 16.0)  # 8 x 8, pixels 0..16
        return pd.DataFrame({"image": images, "digit": bunch.target}), {
            "label": "digit",
            "image": "image",
        }
    loader = {
        "wine": sets.load_wine,
        "breast-cancer": sets.load_breast_cancer,
        "digits": sets.load_digits,
    }[name]
    bunch = loader(as_frame=True)
    table = bunch.frame.rename(columns={"target": "label"})
    features = [c for c in table.columns if c != "label"]
    if name == "breast-cancer":  # the class names, as a user's file would hold them
        table["label"] = np.asarray(bunch.target_names)[table["label"]]
    return table, {"label": "label", "numeric": features}


def one_run(name: str, seed: int) -> list[dict]:
    keras.backend.clear_session()
    table, columns = frame(name)
    data = from_dataframe(table, test_fraction=TEST_FRACTION, seed=SPLIT_SEED, **columns)
    sizes = {split: data.num_examples[split] for split in ("train", "validation", "test")}
    start = time.perf_counter()
    result = distil(DistilConfig(dataset=data, seed=seed, strategy="default", verbose=0))
    seconds = time.perf_counter() - start
    common = {
        "dataset": name,
        "seed": seed,
        **{f"{split}_examples": n for split, n in sizes.items()},
        "student_model": result.student.name,
        "run_seconds": round(seconds, 1),
    }
    shown = result.table.set_index("model")
    chosen = result.chosen.describe()
    rows = []
    for model, key in (
        ("teacher", "teacher"),
        ("scratch", "student (scratch, tuned)"),
        ("recipe", "student (recipe)"),
    ):
        rows.append(
            {
                **common,
                "model": model,
                "kind": "",
                "setting": chosen if model == "recipe" else shown.loc[key, "setting"],
                "chosen": chosen,
                "params": int(shown.loc[key, "params"]),
                "validation_accuracy": float(shown.loc[key, "validation_accuracy"]),
                "test_accuracy": float(shown.loc[key, "accuracy"]),
                "epochs": np.nan,
                "best_epoch": np.nan,
            }
        )
    for _, row in result.candidates.iterrows():
        rows.append(
            {
                **common,
                "model": "candidate",
                "kind": row["kind"],
                "setting": row["setting"],
                "chosen": chosen,
                "params": int(row["params"]),
                "validation_accuracy": float(row["validation_accuracy"]),
                "test_accuracy": float(row["test_accuracy"]),
                "epochs": int(row["epochs"]),
                "best_epoch": int(row["best_epoch"]),
            }
        )
    return rows


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset: means over seeds, the recipe's gain over tuned scratch (paired by
    seed, in points), its worst seed, and what the rule chose."""
    out = []
    for name, runs in per_seed.groupby("dataset", sort=False):
        test = runs.pivot_table(index="seed", columns="model", values="test_accuracy")
        gain = 100 * (test["recipe"] - test["scratch"])
        tried = runs[runs["model"] == "candidate"]
        is_scratch = tried["kind"] == "scratch"
        kd, scratch = tried[~is_scratch], tried[is_scratch]
        first = runs.iloc[0]
        out.append(
            {
                "dataset": name,
                "student": first["student_model"],
                "train / validation / test": f"{first['train_examples']} / "
                f"{first['validation_examples']} / {first['test_examples']}",
                "seeds": test.shape[0],
                "teacher": _mean_std(test["teacher"]),
                "scratch (tuned)": _mean_std(test["scratch"]),
                "recipe": _mean_std(test["recipe"]),
                "gain (points)": round(float(gain.mean()), 2),
                "worst seed": round(float(gain.min()), 2),
                "chosen": ", ".join(
                    f"{s} ({n})" if n > 1 else s
                    for s, n in runs[runs["model"] == "recipe"]["setting"].value_counts().items()
                ),
                "KD candidates, test": _mean_std(kd["test_accuracy"]),
                "scratch tries, test": _mean_std(scratch["test_accuracy"]),
                "scratch tries' best epoch": round(float(scratch["best_epoch"].mean()), 1),
                "seconds per run": round(float(runs["run_seconds"].mean()), 1),
            }
        )
    return pd.DataFrame(out)


def _mean_std(values) -> str:
    values = pd.Series(values, dtype=float)
    return f"{values.mean():.4f} ± {values.std(ddof=1) if len(values) > 1 else 0:.4f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the CSV and .md go")
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        for seed in args.seeds:
            rows.extend(one_run(name, seed))
            recipe = [r for r in rows if r["model"] == "recipe"][-1]
            print(
                f"{name} seed {seed}: recipe {recipe['test_accuracy']:.4f} "
                f"({recipe['setting']}), {recipe['run_seconds']} s",
                flush=True,
            )
    per_seed = pd.DataFrame(rows)
    summary = summarise(per_seed)
    made = Provenance.collect(script_command(), args.seeds)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record_code(out, made)
    with_provenance(per_seed, made).to_csv(out / f"{NAME}.csv", index=False)
    (out / f"{NAME}.md").write_text(
        "# The default recipe on datasets kdzoo has never seen (scikit-learn's bundled sets)\n"
        f"\n{made.markdown()}\n\n"
        "Each dataset as a pandas DataFrame through `from_dataframe` (test 20%, validation "
        "10% of each class of the rest, split seed 0) and `distil()` with every setting at "
        "its default; test accuracy, mean ± std over seeds; gain: recipe minus tuned "
        "scratch, paired by seed, in points. Validation chooses; test is never read before "
        "the choice.\n\n"
        f"{markdown_table(summary)}\n",
        encoding="utf-8",
    )
    print(markdown_table(summary))


if __name__ == "__main__":
    main()

"""Cross-view distillation on a table (``kdzoo bench tabular-views``).

A teacher reads several numeric views of each example; the student reads one cheap view,
as a model served where only one sensor or one cheap feature set is at hand. The data are
MNIST digits described by five mfeat-like views (``kdzoo.datasets.mnist_views``: 184
numbers), one table of numeric columns loaded with ``kdzoo.datasets.from_dataframe``.

The teacher (``tabular_mlp/teacher`` on every view) is trained once by the recipe's teacher
rules, with the student preset on every view as a reference ("supervised, every view").
Its logits for every row go to an NPZ file keyed by id, and each student is distilled from
that file by ``kdzoo.recipe.distil``, exactly as a user brings a teacher's outputs
(``kdzoo distil --teacher outputs.npz``): the student's table holds only its own view's
columns. Per seed and student view, the recipe (untouched defaults) reports the tuned
scratch student and its own student, both on that view. The student views are fixed here,
not chosen on results:

- ``mor``: 8 morphological numbers (the ink, its centroid and spread, the bounding box);
- ``prof``: 56 row and column ink profiles.

Training split: MNIST's 5,000 training digits (10% of each class held out for validation,
stratified, seeded); test: the 10,000 test digits.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from kdzoo.datasets.mnist_views import VIEWS, columns
from kdzoo.defaults import DEFAULTS
from kdzoo.results import bench_command, model_kind

NAME = "tabular-views"
STUDENT_VIEWS = ("mor", "prof")
FAMILY = "tabular_mlp"


@dataclasses.dataclass
class TabularViewsConfig:
    """Settings of the study.

    Attributes:
        student_views: views the students read (names of ``VIEWS``).
        seeds: student seeds; the teacher is trained once, with the first.
        teacher_epochs, epochs: the recipe's epoch budgets.
        out_dir: where ``tabular-views.csv`` / ``.md`` go; None writes nothing.
        tiny: the test suite's smoke size (300 training and 200 test digits).
        verbose: Keras ``fit`` verbosity.
    """

    student_views: tuple = STUDENT_VIEWS
    seeds: tuple = (0, 1, 2)
    teacher_epochs: int = DEFAULTS.teacher_epochs
    epochs: int = DEFAULTS.epochs
    out_dir: str | None = "benchmarks/results"
    tiny: bool = False
    verbose: int = 0


def command(config: TabularViewsConfig) -> str:
    """The ``kdzoo bench tabular-views`` command that runs ``config``."""
    views = tuple(config.student_views)
    return bench_command(NAME, config, *(["--datasets", *views] if views != STUDENT_VIEWS else []))


def _table(frame, view_columns, name):
    from kdzoo.datasets import from_dataframe

    return from_dataframe(
        frame,
        label="label",
        numeric=view_columns,
        split="split",
        id="id",
        class_names=[str(d) for d in range(10)],
        name=name,
    )


def write_teacher_outputs(teacher, data, path) -> Path:
    """The teacher's logits for every row of every split of ``data``, keyed by id, as the
    NPZ file ``kdzoo.distillation.read_teacher_outputs`` reads."""
    ids, logits = [], []
    for split in data.arrays:
        pipeline = data.pipeline(split, training=False)
        logits.append(teacher.predict(pipeline, verbose=0))
        ids.append(np.asarray(data.arrays[split]["id"], dtype=str))
    path = Path(path)
    np.savez(path, ids=np.concatenate(ids), logits=np.concatenate(logits).astype(np.float32))
    return path


def run(config: TabularViewsConfig | None = None):
    """Runs the study; returns ``(per_seed, summary)`` and, with ``config.out_dir``, writes
    ``tabular-views.csv`` and ``.md``."""
    from kdzoo.datasets.mnist_views import views_frame
    from kdzoo.determinism import seed_everything
    from kdzoo.recipe import DistilConfig, distil
    from kdzoo.recipe.candidates import scratch_tries
    from kdzoo.recipe.selection import RECIPE, SCRATCH, TEACHER
    from kdzoo.recipe.selection import run as recipe
    from kdzoo.results import table_row, write_study
    from kdzoo.studies import _build

    config = config or TabularViewsConfig()
    unknown = sorted(set(config.student_views) - set(VIEWS))
    if unknown:
        raise ValueError(f"Unknown view(s) {unknown}. Valid: {', '.join(VIEWS)}.")
    sizes = (300, 200) if config.tiny else (None, None)
    frame = views_frame(train_examples=sizes[0], test_examples=sizes[1])
    every = [c for view in VIEWS for c in columns(view)]
    data = _table(frame, every, "mnist_views")
    n_train = data.num_examples["train"]
    seed = config.seeds[0]
    seed_everything(seed)
    inputs = ("tabular",)
    teacher = _build((FAMILY, "teacher"), data, inputs)
    reference = _build((FAMILY, "student"), data, inputs)
    first = recipe(
        teacher,
        reference,
        data,
        candidates=(),
        scratch=scratch_tries(1),
        teacher_epochs=config.teacher_epochs,
        epochs=config.epochs,
        seed=seed,
        teacher_inputs=inputs,
        student_inputs=inputs,
        verbose=config.verbose,
    )
    table = first.table.set_index("model")
    everything = f"all views ({len(every)} numbers)"
    reads = {"student_view": "–", "features": int(first.teacher.input["tabular"].shape[-1])}
    rows = [
        {**reads, **table_row(f"teacher ({everything})", None, seed, table, TEACHER, n_train,
                              "mnist_views")},
        {**reads, **table_row(f"supervised student ({everything})", None, seed, table, SCRATCH,
                              n_train, "mnist_views")},
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kdzoo-tabular-views-") as folder:
        outputs = write_teacher_outputs(teacher, data, Path(folder) / "teacher_logits.npz")
        for view in config.student_views:
            view_data = _table(frame, columns(view), f"mnist_{view}")
            described = f"{view} ({VIEWS[view]} numbers)"
            for seed in config.seeds:
                result = distil(
                    DistilConfig(
                        dataset=view_data,
                        teacher=str(outputs),
                        student=f"{FAMILY}/student",
                        epochs=config.epochs,
                        seed=seed,
                        verbose=config.verbose,
                    )
                )
                table = result.table.set_index("model")
                features = int(result.student.input["tabular"].shape[-1])
                for model, which in (
                    (f"scratch ({described})", SCRATCH),
                    (f"distilled ({described}, the recipe's choice)", RECIPE),
                ):
                    row = table_row(model, None, seed, table, which, n_train, "mnist_views")
                    rows.append({"student_view": view, "features": features, **row})
                print(
                    f"{view} seed {seed}: scratch {rows[-2]['test_accuracy']:.4f}, distilled "
                    f"{rows[-1]['test_accuracy']:.4f} ({rows[-1]['setting']})",
                    flush=True,
                )
    per_seed = write_study(config.out_dir, NAME, rows, command(config), config.seeds, markdown)
    return per_seed, summarize(per_seed)


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of test accuracy per student view and kind of model."""
    frame = per_seed.assign(kind=per_seed["model"].map(model_kind))
    out = (
        frame.groupby(["student_view", "kind"], sort=False)["test_accuracy"]
        .agg(["mean", "std", "count"])
        .reset_index()
    )
    out["std"] = out["std"].fillna(0.0)
    return out


def gains(summary: pd.DataFrame) -> pd.DataFrame:
    """Per student view: distilled − scratch in points (means over seeds)."""
    rows = []
    for view, group in summary[summary["student_view"] != "–"].groupby("student_view", sort=False):
        mean = group.set_index("kind")["mean"]
        gap = 100 * (mean.get("distilled") - mean.get("scratch"))
        rows.append({"student_view": view, "gap_points": gap})
    return pd.DataFrame(rows)


def markdown(per_seed: pd.DataFrame) -> str:
    from kdzoo.results import markdown_table, runs_markdown

    summary = summarize(per_seed)
    checked = gains(summary).set_index("student_view")
    reference = summary[summary["student_view"] == "–"].set_index("kind")
    lines = [
        "# Cross-view distillation on a table: the teacher reads every view, the student one",
        "",
        runs_markdown(per_seed, "student_view"),
        "",
        "MNIST digits as five numeric views (`kdzoo.datasets.mnist_views`). Test accuracy on "
        "the 10,000 test digits, mean ± std over seeds. The students are distilled from a "
        "file of the teacher's logits keyed by id, as `kdzoo distil --teacher FILE` does.",
        "",
        f"- teacher (every view): {reference.at['teacher', 'mean']:.4f}",
        f"- the student preset on every view, trained on labels: "
        f"{reference.at['supervised', 'mean']:.4f}",
        "",
    ]
    table = []
    for view, group in summary[summary["student_view"] != "–"].groupby("student_view", sort=False):
        scores = {
            k: f"{m:.4f} ± {s:.4f}"
            for k, m, s in zip(group["kind"], group["mean"], group["std"], strict=True)
        }
        table.append(
            {
                "student view": f"{view} ({VIEWS[view]} numbers)",
                "scratch": scores.get("scratch", "–"),
                "distilled": scores.get("distilled", "–"),
                "distilled − scratch": f"{checked.at[view, 'gap_points']:+.1f} points",
            }
        )
    lines += [markdown_table(pd.DataFrame(table)), ""]
    return "\n".join(lines)

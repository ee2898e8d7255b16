"""Distillation beyond one label out of K (``kdzoo bench tasks``): regression and
multi-label students, each through the untouched default recipe of its task kind.

Settings, fixed here, not chosen on results:

- ``embedded-regression``: the embedded dataset's regression target (``"target"``, a
  function of the latent the class comes from), an image+audio teacher
  (``multimodal_concat``) and an audio student (``audio_crnn``): cross-modal, as the
  embedded classification setting of ``kdzoo bench default-recipe``;
- ``embedded-multi-label``: the same models on its four tags (``"tags"``);
- ``diabetes``: scikit-learn's bundled diabetes set (Efron et al. 2004: 442 patients, 10
  standardised measurements, a disease-progression score a year later), read offline from
  the ``scikit-learn`` package (``kdzoo[sklearn]``); a ``tabular_mlp`` teacher and student
  on every column, 20% of the rows held out for test (seeded);
- ``embedded-regression-scarce``, ``embedded-multi-label-scarce``: the label-scarce
  versions of the two embedded settings (as ``kdzoo bench label-scarce`` is of the
  classification one). Only ``SCARCE_LABELLED_ROWS`` training rows, drawn per seed, keep
  their label (``kdzoo.datasets.scarce_labels(labelled_rows=...)``); every other training
  row is an unlabelled transfer set, marked as the task marks a row without a label (NaN
  targets, rows of -1 tags). The teacher is the embedded setting's, trained on every
  training label: the labels exist on the teacher's side (SoundNet's setting, Aytar et al.
  2016), the student gets few. Scratch trains on the labelled rows; the distillation
  candidates also on the transfer rows, through the teacher's predictions there. As in
  ``kdzoo bench label-scarce``, both get the recipe's epoch budget and early stopping, so
  scratch takes about 4 steps an epoch and a candidate about 57; the validation split
  (about 400 rows) stays fully labelled, and the regression target keeps the
  standardisation fitted on every training target.

Per setting the teacher is trained once, with the first seed, by the recipe's teacher
rules (a ``-scarce`` setting reuses its embedded setting's, or trains the same one when run
alone); every seed then runs the recipe from its own student initialisation with that
teacher: tuned scratch (learning-rate tries for regression, label smoothing too for
multi-label), the task's distillation candidates (``DEFAULTS.regression_candidates``,
``DEFAULTS.multi_label_candidates``), and selection on validation MSE or macro ROC AUC
with the one-standard-error rule. Regression targets are standardised on the training rows
and reported in their own units.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from kdzoo.defaults import DEFAULTS
from kdzoo.results import bench_command, model_kind
from kdzoo.studies import _build

NAME = "tasks"
#: The suffix of a label-scarce setting, and its labelled training rows per seed (of
#: about 3,600; fixed before any run). The smoke size keeps ``_TINY_LABELLED_ROWS``.
SCARCE = "-scarce"
SCARCE_LABELLED_ROWS = 200
_TINY_LABELLED_ROWS = 64
SETTINGS = (
    "embedded-regression",
    "embedded-multi-label",
    "diabetes",
    "embedded-regression" + SCARCE,
    "embedded-multi-label" + SCARCE,
)
_AV = ("image", "audio")


@dataclasses.dataclass
class TasksConfig:
    """Settings of the study.

    Attributes:
        settings: which of ``SETTINGS`` to run.
        seeds: student seeds; each setting's teacher is trained once, with the first.
        teacher_epochs, epochs: the recipe's epoch budgets.
        out_dir: where ``tasks.csv`` / ``.md`` go; None writes nothing.
        tiny: the test suite's smoke size: a few hundred examples, the first distillation
            candidate and one scratch try.
        verbose: Keras ``fit`` verbosity.
    """

    settings: tuple = SETTINGS
    seeds: tuple = (0, 1, 2)
    teacher_epochs: int = DEFAULTS.teacher_epochs
    epochs: int = DEFAULTS.epochs
    out_dir: str | None = "benchmarks/results"
    tiny: bool = False
    verbose: int = 0


def command(config: TasksConfig) -> str:
    """The ``kdzoo bench tasks`` command that runs ``config``."""
    settings = tuple(config.settings)
    return bench_command(NAME, config, *(["--datasets", *settings] if settings != SETTINGS else []))


def diabetes_frame() -> pd.DataFrame:
    """scikit-learn's diabetes set as a DataFrame: ``age`` ... ``s6`` (standardised by
    scikit-learn) and ``target``, one row per patient, read from the installed package."""
    from kdzoo.optional import require

    sklearn_datasets = require("sklearn.datasets", "The diabetes regression set")
    return sklearn_datasets.load_diabetes(as_frame=True).frame


def _data(setting, tiny):
    """``(data, teacher (family, preset), student (family, preset), teacher inputs,
    student inputs)`` of ``setting``."""
    from kdzoo import datasets
    from kdzoo.tasks import Task

    if setting == "diabetes":
        frame = diabetes_frame()
        if tiny:
            frame = frame.iloc[:200]
        features = [c for c in frame.columns if c != "target"]
        data = datasets.from_dataframe(
            frame,
            label="target",
            numeric=features,
            task="regression",
            test_fraction=0.2,
            name="diabetes",
        )
        tabular = ("tabular",)
        return data, ("tabular_mlp", "teacher"), ("tabular_mlp", "student"), tabular, tabular
    options = {"num_examples": 400} if tiny else {}
    base = datasets.load(
        "embedded",
        batch_size=256,
        seed=0,
        modalities=_AV,
        validation_fraction=DEFAULTS.validation_fraction,
        **options,
    )
    if setting == "embedded-regression":
        data = datasets.with_task(base, Task.regression(["target"]), "target")
    else:
        tags = tuple(f"tag{j}" for j in range(base.arrays["train"]["tags"].shape[1]))
        data = datasets.with_task(base, Task.multi_label(tags), "tags")
    return data, ("multimodal_concat", "teacher"), ("audio_crnn", "student"), _AV, ("audio",)


def _rows(setting, seed, result, data, teacher_examples):
    """The teacher, tuned scratch and the recipe's student of one seed; the teacher's
    ``train_examples`` are the labelled rows it trained on (every training row, in a
    ``-scarce`` setting too)."""
    from kdzoo.recipe import RECIPE, SCRATCH, TEACHER

    table = result.table.set_index("model")
    task = data.task
    metric = task.selection
    rows = []
    for model, which in (
        ("teacher", TEACHER),
        ("scratch (tuned)", SCRATCH),
        ("distilled (the recipe's choice)", RECIPE),
    ):
        row = table.loc[which]
        rows.append(
            {
                "dataset": setting,
                "task": task.kind,
                "seed": seed,
                "model": model,
                "metric": metric,
                f"validation_{metric}": float(row[f"validation_{metric}"]),
                **{f"test_{m}": float(row[m]) for m in task.metric_names()},
                "setting": row.get("setting", "") or "",
                "params": int(row["params"]),
                "train_examples": int(
                    teacher_examples if which == TEACHER else data.num_examples["train"]
                ),
                "transfer_examples": int(
                    0 if which == TEACHER else data.num_examples.get("transfer", 0)
                ),
            }
        )
    selection = result.selection
    if selection is not None:
        rows[-1].update(validation_gain=selection.gain, validation_se=selection.standard_error)
    return rows


def run(config: TasksConfig | None = None):
    """Runs the study; returns ``(per_seed, summary)`` and, with ``config.out_dir``, writes
    ``tasks.csv`` and ``.md``."""
    from kdzoo import datasets
    from kdzoo.determinism import seed_everything
    from kdzoo.recipe.selection import default_candidates
    from kdzoo.recipe.selection import run as recipe
    from kdzoo.results import write_study

    config = config or TasksConfig()
    unknown = sorted(set(config.settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"Unknown setting(s) {unknown}. Valid: {', '.join(SETTINGS)}.")
    rows, teachers = [], {}
    labelled_rows = _TINY_LABELLED_ROWS if config.tiny else SCARCE_LABELLED_ROWS
    for setting in config.settings:
        base = setting.removesuffix(SCARCE)
        data, teacher_spec, student_spec, teacher_inputs, student_inputs = _data(base, config.tiny)
        for i, seed in enumerate(config.seeds):
            seed_everything(seed)
            # The teacher is built on the first seed only (as before the -scarce settings):
            # a student's initialisation then depends on its seed and position alone,
            # whichever settings ran before it.
            built = _build(teacher_spec, data, teacher_inputs) if i == 0 else None
            student = _build(student_spec, data, student_inputs)
            teacher = teachers.get(base)
            options = {
                "seed": seed,
                "teacher_inputs": teacher_inputs,
                "student_inputs": student_inputs,
                "verbose": config.verbose,
            }
            if config.tiny:
                options["candidates"] = default_candidates(data.task)[:1]
            if teacher is None and base != setting:  # the embedded setting's teacher
                # Trained as its own setting's first seed trains it (the same weights, data
                # order and rules); the one scratch epoch beside it is thrown away.
                only = {"candidates": (), "scratch": ("scratch",), "epochs": 1}
                trained = recipe(built, student, data, teacher_epochs=config.teacher_epochs,
                                 **{**options, **only})  # fmt: skip
                teacher = teachers[base] = trained.teacher
                seed_everything(seed)  # the student again, from the same random state
                _build(teacher_spec, data, teacher_inputs)
                student = _build(student_spec, data, student_inputs)
            setting_data = data
            if base != setting:
                setting_data = datasets.scarce_labels(data, labelled_rows=labelled_rows, seed=seed)
            result = recipe(
                built if teacher is None else teacher,
                student,
                setting_data,
                teacher_epochs=config.teacher_epochs if teacher is None else 0,
                epochs=config.epochs,
                batch_size=min(DEFAULTS.batch_size, setting_data.num_examples["train"]),
                **options,
            )
            teachers[base] = result.teacher
            rows += _rows(setting, seed, result, setting_data, data.num_examples["train"])
            metric = data.task.selection
            print(
                f"{setting} seed {seed}: scratch {rows[-2][f'test_{metric}']:.4f}, distilled "
                f"{rows[-1][f'test_{metric}']:.4f} ({rows[-1]['setting']})",
                flush=True,
            )
    per_seed = write_study(config.out_dir, NAME, rows, command(config), config.seeds, markdown)
    return per_seed, summarize(per_seed)


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per setting and kind of model: the mean and std over seeds of the setting's
    selection metric on test (MSE, or macro ROC AUC), and of the others it reports."""
    rows = []
    frame = per_seed.assign(kind=per_seed["model"].map(model_kind))
    for (setting, kind), group in frame.groupby(["dataset", "kind"], sort=False):
        metric = group["metric"].iloc[0]
        values = group[f"test_{metric}"]
        rows.append(
            {
                "dataset": setting,
                "kind": kind,
                "metric": metric,
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "count": len(values),
            }
        )
    return pd.DataFrame(rows)


def goals(summary: pd.DataFrame) -> pd.DataFrame:
    """Issue 16's goals per setting: regression, the distilled student's test MSE at most
    tuned scratch's; multi-label, its macro ROC AUC at least scratch's (means over seeds)."""
    rows = []
    for setting, group in summary.groupby("dataset", sort=False):
        mean = group.set_index("kind")["mean"]
        metric = group["metric"].iloc[0]
        lower = metric in ("mse", "mae")
        distilled, scratch = mean.get("distilled", np.nan), mean.get("scratch", np.nan)
        met = distilled <= scratch if lower else distilled >= scratch
        rows.append(
            {
                "dataset": setting,
                "metric": metric,
                "scratch": scratch,
                "distilled": distilled,
                "distilled − scratch": distilled - scratch,
                "goal": f"distilled {'≤' if lower else '≥'} scratch",
                "met": bool(met),
            }
        )
    return pd.DataFrame(rows)


def _scarce_note(per_seed: pd.DataFrame) -> str:
    """What the ``-scarce`` rows trained on, from the rows themselves."""
    scarce = per_seed[per_seed["dataset"].str.endswith(SCARCE) & (per_seed["model"] != "teacher")]
    if scarce.empty:
        return ""
    labelled = ", ".join(str(n) for n in sorted(scarce["train_examples"].unique()))
    transfer = ", ".join(str(n) for n in sorted(scarce["transfer_examples"].unique()))
    return (
        f" A `-scarce` setting uses its embedded setting's teacher (trained on every training "
        f"label) and keeps {labelled} labelled training rows per seed: scratch trains on them, "
        f"the distillation candidates also on the other {transfer} training rows, unlabelled "
        "(the teacher's predictions there). The validation split stays fully labelled, and "
        "the regression targets keep the standardisation fitted on every training target."
    )


def markdown(per_seed: pd.DataFrame) -> str:
    from kdzoo.results import markdown_table, runs_markdown

    summary = summarize(per_seed)
    table = []
    for setting, group in summary.groupby("dataset", sort=False):
        scores = {
            k: f"{m:.4f} ± {s:.4f}"
            for k, m, s in zip(group["kind"], group["mean"], group["std"], strict=True)
        }
        table.append(
            {
                "setting": setting,
                "test metric": group["metric"].iloc[0],
                "teacher": scores.get("teacher", "–"),
                "scratch (tuned)": scores.get("scratch", "–"),
                "distilled (recipe)": scores.get("distilled", "–"),
            }
        )
    checked = goals(summary)
    chosen = per_seed[per_seed["model"].map(model_kind) == "distilled"]
    lines = [
        "# Regression and multi-label students through the default recipe",
        "",
        runs_markdown(per_seed, "dataset"),
        "",
        "Test metric per setting (regression: MSE in the target's own units, lower is better; "
        "multi-label: macro ROC AUC, higher is better), mean ± std over seeds. The teacher is "
        "trained once per setting, with the first seed." + _scarce_note(per_seed),
        "",
        markdown_table(pd.DataFrame(table)),
        "",
        "## Issue 16's goals",
        "",
        markdown_table(checked.round(4)),
        "",
        "## The recipe's choice per seed",
        "",
        markdown_table(
            chosen[["dataset", "seed", "setting", "validation_gain", "validation_se"]].round(4)
            if "validation_gain" in chosen
            else chosen[["dataset", "seed", "setting"]]
        ),
        "",
    ]
    return "\n".join(lines)

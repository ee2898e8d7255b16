"""The recipe's report: tables a person reads and one figure, written to the run folder.

``write_report(result, run_dir, data=...)`` writes, and never writes anything else:

- ``summary.csv``: teacher, tuned scratch and the recipe's student (``RecipeResult.table``);
- ``candidates.csv``: every student tried, validation and test side by side;
- ``report.md``: what ran (the data, teacher and student), both tables and the chosen
  setting, in Markdown;
- ``report.png``: learning curves (validation accuracy per epoch) of the teacher, the best
  scratch try and the chosen student; validation accuracy per candidate; and the
  confusion matrices of the teacher and the recipe's student on the evaluated split (for
  a ``kdzoo.tasks.Task``: its selection metric, and ROC curves for binary and multi-label
  tasks or predicted-against-true values for regression, in place of the matrices).
  It needs matplotlib (``pip install 'kdzoo[plots]'``); without it the tables are written,
  ``report.md`` says the figure was not drawn and why, and a warning is logged.

Files are written to a temporary name and renamed (``kdzoo.files.atomic_file``). A
``run_dir`` that holds files and no kdzoo marker is refused before anything trains
(``claim_run_dir``); in one kdzoo marked (``.kdzoo-owned``) the report's files are written
over and other files are left as they are. In a
notebook, ``figure(result, data)`` returns the Matplotlib figure, which Jupyter shows
inline under the inline backend (``%matplotlib inline``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from kdzoo.files import atomic_file, check_replaceable, read_marker, write_marker

FIGURE = "report.png"  # drawn with kdzoo[plots] (matplotlib)
FILES = ("summary.csv", "candidates.csv", "report.md", FIGURE)
#: The names ``kdzoo run`` saves its experiment file's copy under, in the run folder.
EXPERIMENT_COPIES = ("experiment.yaml", "experiment.yml", "experiment.json")
KIND = "recipe-report"  # the ownership marker's kind

log = logging.getLogger("kdzoo")


def claim_run_dir(run_dir) -> Path:
    """Creates ``run_dir`` and marks it as a kdzoo run folder, before anything trains.

    Raises:
        kdzoo.files.NotOwnedError: ``run_dir`` holds files kdzoo did not write there.
    """
    if "://" in str(run_dir):  # Path would make gs://b/x the local folder gs:/b/x
        raise ValueError(
            f"run_dir {run_dir} is a URL; the report is written to this machine's file system."
        )
    folder = Path(run_dir)
    check_replaceable(folder, KIND, "run_dir")
    folder.mkdir(parents=True, exist_ok=True)
    _remove_experiment_copy(folder)
    write_marker(folder, KIND)
    return folder


def record_experiment_copy(run_dir, name: str) -> None:
    """Notes in ``run_dir``'s marker that kdzoo saved the experiment file copy ``name``
    there (``kdzoo.experiment.run_experiment``), so that the next run in the folder, which
    that copy does not describe, removes it (``claim_run_dir``)."""
    write_marker(Path(run_dir), KIND, experiment=name)


def _remove_experiment_copy(folder: Path) -> None:
    name = (read_marker(folder) or {}).get("experiment")
    if name in EXPERIMENT_COPIES:
        (folder / name).unlink(missing_ok=True)


def _logged_units(task, name: str) -> tuple[float, str]:
    """``(factor, note)``: what turns ``name``, a metric Keras logged on a regression
    model's standardised outputs, into the targets' own units, as the tables report it
    (MSE times std², MAE times std; R² has no units); where no factor can (several targets
    of different spreads, or the loss), ``note`` says the curve is in standardised units."""
    if task is None or task.kind != "regression" or not task.target_std:
        return 1.0, ""
    metric = name.removeprefix("val_")
    if metric == "r2":
        return 1.0, ""
    spreads = set(task.target_std)
    if metric in ("mse", "mae") and len(spreads) == 1:
        std = spreads.pop()
        return (std * std if metric == "mse" else std), ""
    return 1.0, " (standardised targets)"


def markdown(frame: pd.DataFrame, digits=4) -> str:
    """``frame`` as a Markdown table, floats rounded to ``digits``."""

    def cell(value):
        if isinstance(value, float | np.floating):
            return "—" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "|".join("---" for _ in frame.columns) + "|")
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def figure(result, data=None, split=None):
    """The report's figure (a ``matplotlib.figure.Figure``; the Agg backend, no display).

    Raises:
        kdzoo.optional.MissingExtraError: matplotlib is not installed (``kdzoo[plots]``).
    """
    from kdzoo.optional import require

    Figure = require("matplotlib.figure", "The recipe report's figure").Figure
    from matplotlib.ticker import MaxNLocator

    from kdzoo.recipe.phases import RECIPE, SCRATCH, TEACHER, monitor

    split = split or result.evaluated_on
    task, metric = result.task, result.metric
    shown = metric.replace("_", " ")
    with_confusion = data is not None
    fig = Figure(figsize=(15 if with_confusion else 10, 4.2), layout="constrained")
    axes = fig.subplots(1, 4 if with_confusion else 2)

    curves = axes[0]
    names = {TEACHER: "teacher"}
    settings = result.table.set_index("model")["setting"]
    by_setting = {
        c: n
        for n, c in zip(result.candidates["candidate"], result.candidates["setting"], strict=True)
    }
    names[SCRATCH] = by_setting.get(settings[SCRATCH])
    names[RECIPE] = by_setting.get(settings[RECIPE])
    factor, units = _logged_units(task, monitor(task))
    for label, phase in names.items():
        values = result.history.get(phase, {}).get(monitor(task))
        if values:
            values = np.asarray(values, dtype=np.float64) * factor
            curves.plot(range(1, len(values) + 1), values, marker=".", label=f"{label}")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    curves.set_xlabel("epoch")
    shown_monitor = monitor(task).removeprefix("val_").replace("_", " ")
    curves.set_ylabel(f"validation {shown_monitor}{units}")
    curves.set_title("Learning curves")
    curves.legend(fontsize=8)

    bars = axes[1]
    frame = result.candidates
    colors = ["tab:gray" if k == "scratch" else "tab:blue" for k in frame["kind"]]
    positions = np.arange(len(frame))
    column = frame[f"validation_{metric}"]
    drawn = bars.barh(positions, column, color=colors)
    # The axis is zoomed on the candidates' range, so each bar carries its value.
    bars.bar_label(drawn, fmt="%.4g", fontsize=7, padding=2)
    chosen = np.flatnonzero(frame["chosen"].to_numpy())
    for i in chosen:
        bars.barh(i, column.iloc[i], color="none", edgecolor="black", lw=2)
    bars.set_yticks(positions, frame["setting"], fontsize=7)
    low, high = float(column.min()), float(column.max())
    if task is None or task.kind != "regression":
        bars.set_xlim(max(0.0, low - 0.05), min(1.0, high + 0.02) + 0.03)  # room for labels
    bars.invert_yaxis()
    bars.set_xlabel(f"validation {shown}")
    bars.set_title("Candidates (grey: scratch; outlined: chosen)")

    if with_confusion:
        for ax, (label, model) in zip(
            axes[2:], ((TEACHER, result.teacher), (RECIPE, result.student)), strict=True
        ):
            if task is not None:
                _task_panel(ax, task, model, data, split, label)
                continue
            matrix = confusion_matrix(model, data, split)
            image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
            fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
            if len(matrix) <= 12:  # each cell's share, where it stays legible
                for (i, j), share in np.ndenumerate(matrix):
                    color = "white" if share > 0.5 else "black"
                    ax.text(j, i, f"{share:.2f}", ha="center", va="center", fontsize=6,
                            color=color)  # fmt: skip
            ax.set_title(f"{label}: {split}", fontsize=9)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ticks = range(len(data.class_names))
            ax.set_xticks(ticks, data.class_names, fontsize=6, rotation=90)
            ax.set_yticks(ticks, data.class_names, fontsize=6)
    return fig


def _task_panel(ax, task, model, data, split, label):
    """A task's panel in place of a confusion matrix: the ROC curve (binary; multi-label:
    every label's pairs pooled, the micro-average) or predicted against true values
    (regression, the first target, in its own units)."""
    from kdzoo.evaluation import predict_with_labels

    outputs, labels = predict_with_labels(model, data.pipeline(split, training=False))
    ax.set_title(f"{label}: {split}", fontsize=9)
    if task.kind == "regression":
        truth = task.denormalise(labels).reshape(len(labels), -1)[:, 0]
        guess = task.predict(outputs)[:, 0]
        ax.scatter(truth, guess, s=4, alpha=0.5)
        ends = [min(truth.min(), guess.min()), max(truth.max(), guess.max())]
        ax.plot(ends, ends, color="black", lw=0.8)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        return
    scores = np.asarray(outputs, np.float64).ravel()
    truth = np.asarray(labels).ravel() == 1
    order = np.argsort(-scores, kind="stable")
    tpr = np.concatenate([[0.0], np.cumsum(truth[order]) / max(truth.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(~truth[order]) / max((~truth).sum(), 1)])
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")


def confusion_matrix(model, data, split) -> np.ndarray:
    """Row-normalised confusion matrix (true × predicted) of ``model`` on ``split``."""
    from kdzoo.evaluation import predict_with_labels

    logits, labels = predict_with_labels(model, data.pipeline(split, training=False))
    k = data.num_classes
    counts = np.zeros((k, k))
    np.add.at(counts, (labels.astype(int), np.argmax(logits, axis=-1)), 1)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def _what_ran(result, data) -> str:
    """The report's first lines: the data (its name, examples per split, classes) and the
    teacher and student (their Keras names and parameters), so that a report read later,
    away from the command that made it, says what it measured. Empty when nothing is
    known (no ``data`` given, models without names)."""
    lines = []
    if data is not None and getattr(data, "name", None):
        counts = dict(getattr(data, "num_examples", {}))
        order = [k for k in ("train", "transfer", "validation", "test") if k in counts]
        order += [k for k in counts if k not in order]
        sizes = ", ".join(f"{k} {counts[k]:,}" for k in order)
        task = getattr(data, "task", None)
        names = tuple(map(str, getattr(data, "class_names", ())))
        shown = ", ".join(names) if len(names) <= 12 else f"{names[0]} … {names[-1]}"
        if task is not None:
            labels = f"; a {task.kind.replace('_', '-')} task ({shown})"
        elif names:
            labels = f"; {len(names)} classes ({shown})"
        else:
            labels = ""
        lines.append(f"- Data: `{data.name}`" + (f": {sizes}" if sizes else "") + f"{labels}.")
    for role, model in (("Teacher", getattr(result, "teacher", None)),
                        ("Student", getattr(result, "student", None))):  # fmt: skip
        if model is None or not getattr(model, "name", None):
            continue
        try:
            params = f" ({model.count_params():,} parameters)"
        except ValueError:  # a model that was never built has no count
            params = ""
        lines.append(f"- {role}: `{model.name}`{params}.")
    return "\n".join(lines) + "\n\n" if lines else ""


def write_report(result, run_dir, data=None, split=None) -> Path:
    """Writes ``FILES`` into ``run_dir`` (``claim_run_dir``); returns the folder."""
    folder = claim_run_dir(run_dir)
    with atomic_file(folder / "summary.csv", "w") as f:
        result.table.to_csv(f, index=False)
    with atomic_file(folder / "candidates.csv", "w") as f:
        result.candidates.to_csv(f, index=False)
    from kdzoo.optional import MissingExtraError

    try:
        fig = figure(result, data, split)
    except MissingExtraError as err:
        fig, note = None, f"The figure ({FIGURE}) was not drawn. {err}"
        log.warning("Recipe report in %s: %s", folder, note)
        # A figure of an earlier run in this kdzoo-owned folder would no longer match.
        (folder / FIGURE).unlink(missing_ok=True)
    else:
        note = f"Figure: {FIGURE}."
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    why = f" Why: {result.selection.describe()}." if result.selection else ""
    gains = f"{result.validation_gain:+.4f} (validation)"
    if result.evaluated_on != "validation":  # else it is the same number
        gains = f"{result.gain:+.4f} ({result.evaluated_on}), {gains}"
    positive = ""
    if data is not None and data.num_classes == 2 and "precision" in result.table:
        positive = (
            f" Precision, recall, F1 and ROC AUC are those of class "
            f"'{data.class_names[1]}' (the second class name; `class_names=` orders them)."
        )
    ran = _what_ran(result, data)
    text = (
        f"# Recipe report\n\n{ran}Chosen on validation: **{result.chosen.describe()}**. "
        f"Evaluated on: {result.evaluated_on}. Recipe minus tuned scratch ({result.metric}): "
        f"{gains}.{why}{positive}\n\n{markdown(result.table)}\n\n## Candidates\n\n"
        f"{markdown(result.candidates)}\n\nWall time: {seconds}.\n\n{note}\n"
    )
    with atomic_file(folder / "report.md", "w") as f:
        f.write(text)
    if fig is not None:
        with atomic_file(folder / FIGURE, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
    return folder

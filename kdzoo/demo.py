"""The embedded cross-modal demo: a teacher that sees image and audio, and an audio-only
student, trained by the recipe (``kdzoo.recipe.run``): the tuned scratch student, the
distillation candidates, the scratch student unless a distilled one leads it on validation
by more than one standard error, and the honest
comparison on the held-out test split; then the chosen student is exported.

By default labels are scarce, as they are where a cross-modal student is wanted: 150
training examples of each class keep their label and the other training examples are an
unlabelled transfer set (``kdzoo.datasets.scarce_labels``) that only the teacher labels.
``labels_per_class=None`` labels every training example."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from kdzoo import datasets, models, validation
from kdzoo.defaults import DEFAULTS
from kdzoo.determinism import seed_everything
from kdzoo.files import check_replaceable
from kdzoo.recipe.candidates import parse_candidates
from kdzoo.recipe.report import KIND as REPORT_KIND
from kdzoo.recipe.selection import RECIPE, SCRATCH, RecipeResult, run, with_validation
from kdzoo.serving import bundle_student, export_student
from kdzoo.serving.bundle import KIND as BUNDLE_KIND

TEACHER_INPUTS = ("image", "audio")
STUDENT_INPUTS = ("audio",)
#: With scarce labels, the share of each class's labelled examples held out for
#: validation: 30 of 150 per class, 300 in all (10% would leave 15 per class to choose on).
SCARCE_VALIDATION_FRACTION = 0.2


@dataclasses.dataclass
class DemoConfig:
    """Settings of ``run_demo``; the defaults are ``kdzoo.defaults.DEFAULTS``.

    ``dataset`` is ``"embedded"`` (generated, ``num_examples`` of them, 80/20 train/test)
    or ``"av_digits"`` (FSDD + MNIST from the data root). With ``labels_per_class`` (default
    150) only that many training examples of each class keep their label, a stratified
    ``SCARCE_VALIDATION_FRACTION`` of them is held out for validation, and the other
    training examples become the unlabelled transfer set that the distillation candidates
    train on through the teacher. With ``labels_per_class=None`` every training example is
    labelled and a stratified ``DEFAULTS.validation_fraction`` is held out. Every choice the
    recipe makes (epochs, learning rate, the candidate) is made on validation; the test
    split is read once, at the end.

    The recipe's student is exported for TF Serving to ``<export_dir>/<export_name>/<next
    int>/`` (raw waveforms in, probabilities out; ``kdzoo.serving.export_student``), and
    saved as a student bundle (``student.keras`` + ``serving.json``) to ``student_dir``,
    by default ``<export_dir>/bundles/<export_name>``: the input of ``kdzoo export``, e.g.
    for a ``--portable`` re-export. ``export_dir=None`` does neither. The report (tables and
    figure, ``kdzoo.recipe.report``) goes to ``run_dir``.
    """

    dataset: str = "embedded"
    num_examples: int = 5000
    labels_per_class: int | None = 150
    teacher_epochs: int = DEFAULTS.teacher_epochs
    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    learning_rate: float = DEFAULTS.learning_rate
    candidates: tuple = DEFAULTS.candidates
    seed: int = DEFAULTS.seed
    export_dir: str | None = "saved_models"
    export_name: str = "demo_audio_student"
    student_dir: str | None = None
    run_dir: str | None = "runs/demo"
    verbose: int | str = "auto"


@dataclasses.dataclass
class DemoResult:
    table: pd.DataFrame
    export_path: str | None
    student_path: str | None = None
    recipe: RecipeResult | None = None

    @property
    def gain(self) -> float:
        """The recipe's student minus tuned scratch, test accuracy."""
        accuracy = self.table.set_index("model")["accuracy"]
        return float(accuracy[RECIPE] - accuracy[SCRATCH])


def check_config(config: DemoConfig) -> None:
    """Raises ``ValueError`` naming the field for a setting ``run_demo`` cannot honour, and
    ``kdzoo.files.NotOwnedError`` for a ``student_dir`` that is not a kdzoo bundle or a
    ``run_dir`` kdzoo did not write, before anything is trained."""
    validation.check_settings(
        config,
        ints=(("teacher_epochs", 1), ("epochs", 1), ("batch_size", 1), ("num_examples", 1)),
        optional_ints=(("labels_per_class", 1),),
        positive=("learning_rate",),
    )
    try:
        parse_candidates(config.candidates)
    except ValueError as err:
        raise ValueError(f"`candidates`: {err}") from None
    for field in ("export_dir", "student_dir", "run_dir"):
        value = getattr(config, field)
        if value and Path(value).exists() and not Path(value).is_dir():
            raise ValueError(f"`{field}`: {value} is a file, not a folder.")
    if config.export_dir:
        check_replaceable(_student_dir(config), BUNDLE_KIND, "student_dir")
    if config.run_dir:
        check_replaceable(config.run_dir, REPORT_KIND, "run_dir")


def _student_dir(config):
    return config.student_dir or Path(config.export_dir) / "bundles" / config.export_name


def run_demo(config: DemoConfig | None = None) -> DemoResult:
    """Runs the demo and returns the comparison table (and where the student was exported)."""
    config = config or DemoConfig()
    check_config(config)
    seed_everything(config.seed)
    scarce = config.labels_per_class is not None
    data = datasets.load(
        config.dataset,
        batch_size=256,  # evaluation batches; the recipe trains with config.batch_size
        seed=config.seed,
        modalities=TEACHER_INPUTS,
        validation_fraction=0.0 if scarce else DEFAULTS.validation_fraction,
        num_examples=config.num_examples if config.dataset == "embedded" else None,
    )
    if scarce:
        data = with_validation(
            datasets.scarce_labels(data, config.labels_per_class, seed=config.seed),
            fraction=SCARCE_VALIDATION_FRACTION,
            seed=config.seed,
        )
    shapes = {f"{m}_shape": tuple(spec.shape) for m, spec in data.input_specs.items()}
    teacher, student = models.build_pair("av_to_audio", data.num_classes, **shapes)
    print(f"Dataset {data.name}: {describe_splits(data)}")
    print(
        f"Teacher on {'+'.join(TEACHER_INPUTS)}, then the student on "
        f"{'+'.join(STUDENT_INPUTS)}: {len(config.candidates)} scratch tries and "
        f"{len(config.candidates)} distillation candidates, each early-stopped on "
        f"validation (budget {config.teacher_epochs} / {config.epochs} epochs)"
    )
    result = run(
        teacher,
        student,
        data,
        candidates=config.candidates,
        teacher_epochs=config.teacher_epochs,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        teacher_inputs=TEACHER_INPUTS,
        student_inputs=STUDENT_INPUTS,
        run_dir=config.run_dir,
        verbose=config.verbose,
    )
    if not config.export_dir:
        return DemoResult(result.table, None, recipe=result)
    split = result.evaluated_on
    row = result.table.set_index("model").loc[RECIPE]
    metrics = {f"{split}_{k}": float(row[k]) for k in ("accuracy", "macro_f1")}
    export_path = export_student(
        result.student,
        config.export_dir,
        name=config.export_name,
        data=data,
        split=split,
        metrics=metrics,
        teacher_name=teacher.name,
    )
    student_path = bundle_student(
        result.student,
        _student_dir(config),
        data=data,
        name=config.export_name,
        split=split,
        metrics=metrics,
        teacher_name=teacher.name,
    )
    return DemoResult(result.table, str(export_path), str(student_path), recipe=result)


def describe_splits(data) -> str:
    """E.g. ``"train 1200 labelled + 2500 unlabelled (transfer), validation 300, test 1000"``."""
    counts = dict(data.num_examples)
    transfer = counts.pop("transfer", 0)
    order = {"train": 0, "validation": 1, "test": 2}
    parts = []
    for split, count in sorted(counts.items(), key=lambda item: order.get(item[0], 3)):
        if split == "train" and transfer:
            parts.append(f"train {count} labelled + {transfer} unlabelled (transfer)")
        else:
            parts.append(f"{split} {count}")
    return ", ".join(parts)


def format_table(table: pd.DataFrame) -> str:
    """The recipe's comparison table with its numbers to 3 decimals (4 significant digits
    for a task's errors such as MSE, whose scale is the target's)."""
    floats = {
        c: "{:.3f}".format if table[c].abs().max() <= 1 else "{:.4g}".format
        for c in table.columns
        if c not in ("params",) and pd.api.types.is_float_dtype(table[c])
    }
    return table.to_string(index=False, formatters=floats)


def format_candidates(
    candidates: pd.DataFrame, metric: str = "accuracy", splits=("validation", "test")
) -> str:
    """Every student tried, one line each: ``metric`` (accuracy, or a task's selection
    metric) on ``splits`` (``("validation",)`` for data without a test split), epochs,
    seconds."""
    columns = [f"{s}_{metric}" for s in splits]
    shown = candidates[["setting", *columns, "epochs", "seconds", "chosen"]].copy()
    shown["chosen"] = ["<- chosen" if c else "" for c in shown["chosen"]]
    number = "{:.3f}".format if metric != "mse" and metric != "mae" else "{:.4g}".format
    return shown.to_string(
        index=False,
        header=[
            "candidate",
            *(f"{s} {metric}".removesuffix(" accuracy") for s in splits),
            "epochs",
            "seconds",
            "",
        ],  # fmt: skip
        formatters={**dict.fromkeys(columns, number), "seconds": "{:.0f}".format},
    )

"""The embedded cross-modal demo: teacher (image+audio), audio student from scratch, and the
same student distilled from the teacher, compared on a held-out split. It is the recipe
(``kdzoo.recipe.run``) on the embedded set, plus the export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import pandas as pd

from kdzoo import datasets, models, validation
from kdzoo.defaults import DEFAULTS
from kdzoo.distillation import default_terms
from kdzoo.files import check_replaceable
from kdzoo.recipe import phases
from kdzoo.serving import bundle_student, export_student
from kdzoo.serving.bundle import KIND as BUNDLE_KIND

TEACHER_INPUTS = ("image", "audio")
STUDENT_INPUTS = ("audio",)


@dataclasses.dataclass
class DemoConfig:
    """Settings of ``run_demo``; the defaults are ``kdzoo.defaults.DEFAULTS``.

    ``dataset`` is ``"embedded"`` (generated, ``num_examples`` of them, 80/20 split) or
    ``"av_digits"`` (FSDD + MNIST from the data root). ``temperature``, ``ce_weight``,
    ``kd_weight`` and the epochs were chosen on the embedded set with
    ``evaluate_on="validation"``, which holds out 10% of the training split and reports on
    it; the test split was not used for any choice.

    The distilled student is exported for TF Serving to ``<export_dir>/<export_name>/<next
    int>/`` (raw waveforms in, probabilities out; ``kdzoo.serving.export_student``), and
    saved as a student bundle (``student.keras`` + ``serving.json``) to ``student_dir``,
    by default ``<export_dir>/bundles/<export_name>``: the input of ``kdzoo export``, e.g.
    for a ``--portable`` re-export. ``export_dir=None`` does neither.
    """

    dataset: str = "embedded"
    num_examples: int = 5000
    teacher_epochs: int = DEFAULTS.teacher_epochs
    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    learning_rate: float = DEFAULTS.learning_rate
    temperature: float = DEFAULTS.temperature
    ce_weight: float = DEFAULTS.ce_weight
    kd_weight: float = DEFAULTS.kd_weight
    seed: int = DEFAULTS.seed
    evaluate_on: str = "test"
    export_dir: str | None = "saved_models"
    export_name: str = "demo_audio_student"
    student_dir: str | None = None
    verbose: int | str = "auto"


@dataclasses.dataclass
class DemoResult:
    table: pd.DataFrame
    export_path: str | None
    student_path: str | None = None

    @property
    def gain(self) -> float:
        """Distilled minus scratch accuracy."""
        accuracy = self.table.set_index("model")["accuracy"]
        return float(accuracy[phases.DISTILLED] - accuracy[phases.SCRATCH])


def check_config(config: DemoConfig) -> None:
    """Raises ``ValueError`` naming the field for a setting ``run_demo`` cannot honour, and
    ``kdzoo.files.NotOwnedError`` for a ``student_dir`` that is not a kdzoo bundle, before
    anything is trained."""
    validation.check_settings(
        config,
        ints=(("teacher_epochs", 1), ("epochs", 1), ("batch_size", 1), ("num_examples", 1)),
        positive=("learning_rate", "temperature"),
        nonnegative=("ce_weight", "kd_weight"),
    )
    if config.evaluate_on not in ("test", "validation"):
        raise ValueError(
            f"`evaluate_on` must be 'test' or 'validation'; got {config.evaluate_on!r}."
        )
    if config.export_dir:
        check_replaceable(_student_dir(config), BUNDLE_KIND, "student_dir")


def _student_dir(config):
    return config.student_dir or Path(config.export_dir) / "bundles" / config.export_name


def run_demo(config: DemoConfig | None = None) -> DemoResult:
    """Runs the demo and returns the comparison table (and where the student was exported)."""
    config = config or DemoConfig()
    check_config(config)
    keras.utils.set_random_seed(config.seed)
    data = datasets.load(
        config.dataset,
        batch_size=config.batch_size,
        seed=config.seed,
        modalities=TEACHER_INPUTS,
        validation_fraction=0.1 if config.evaluate_on == "validation" else 0.0,
        num_examples=config.num_examples if config.dataset == "embedded" else None,
    )
    shapes = {f"{m}_shape": tuple(spec.shape) for m, spec in data.input_specs.items()}
    teacher, student = models.build_pair("av_to_audio", data.num_classes, **shapes)
    print(f"Dataset {data.name}: {data.num_examples}")
    print(
        f"Teacher on {'+'.join(TEACHER_INPUTS)} ({config.teacher_epochs} epochs), then the "
        f"student on {'+'.join(STUDENT_INPUTS)} from scratch and distilled "
        f"({config.epochs} epochs each)"
    )
    result = phases.run(
        teacher,
        student,
        data.splits["train"],
        data.splits[config.evaluate_on],
        terms=default_terms(
            temperature=config.temperature,
            ce_weight=config.ce_weight,
            kd_weight=config.kd_weight,
        ),
        teacher_epochs=config.teacher_epochs,
        epochs=config.epochs,
        teacher_inputs=TEACHER_INPUTS,
        student_inputs=STUDENT_INPUTS,
        learning_rate=config.learning_rate,
        verbose=config.verbose,
    )
    if not config.export_dir:
        return DemoResult(result.table, None)
    split = config.evaluate_on
    distilled_row = result.table.set_index("model").loc[phases.DISTILLED]
    metrics = {f"{split}_{k}": float(distilled_row[k]) for k in ("accuracy", "macro_f1")}
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
    return DemoResult(result.table, str(export_path), str(student_path))


def format_table(table: pd.DataFrame) -> str:
    return table.to_string(
        index=False, formatters={"accuracy": "{:.3f}".format, "macro_f1": "{:.3f}".format}
    )

"""The embedded cross-modal demo: teacher (image+audio), audio student from scratch, and the
same student distilled from the teacher, compared on a held-out split."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import pandas as pd

from kdzoo import datasets, models
from kdzoo.distiller import Distiller
from kdzoo.evaluation import classification_metrics
from kdzoo.export import export_for_serving
from kdzoo.files import check_replaceable
from kdzoo.serving.bundle import KIND as BUNDLE_KIND
from kdzoo.serving.bundle import save_student
from kdzoo.serving.preprocessing import ServingPreprocessing, raw_examples
from kdzoo.training import RaiseOnNonFinite, check_settings

TEACHER_INPUTS = ("image", "audio")
STUDENT_INPUTS = ("audio",)


@dataclasses.dataclass
class DemoConfig:
    """Settings of ``run_demo``; the defaults are the README's demo.

    ``dataset`` is ``"embedded"`` (generated, ``num_examples`` of them, 80/20 split) or
    ``"av_digits"`` (FSDD + MNIST from the data root). ``temperature``, ``ce_weight``,
    ``kd_weight`` and the epochs were chosen on the embedded set with
    ``evaluate_on="validation"``, which holds out 10% of the training split and reports on
    it; the test split was not used for any choice.

    The distilled student is exported for TF Serving to ``<export_dir>/<export_name>/<next
    int>/`` (raw waveforms in, probabilities out; ``kdzoo.export.export_for_serving``), and
    saved as a student bundle (``student.keras`` + ``serving.json``) to ``student_dir``,
    by default ``<export_dir>/bundles/<export_name>``: the input of ``kdzoo export``, e.g.
    for a ``--portable`` re-export. ``export_dir=None`` does neither.
    """

    dataset: str = "embedded"
    num_examples: int = 5000
    teacher_epochs: int = 15
    epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 2e-3
    temperature: float = 4.0
    ce_weight: float = 0.5
    kd_weight: float = 0.5
    seed: int = 0
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
        """Distilled minus scratch test accuracy."""
        acc = self.table.set_index("model")["accuracy"]
        return float(acc["student (distilled)"] - acc["student (scratch)"])


def _fit(model, data, epochs, config, phase):
    # The pipeline shuffles (seeded, per epoch); fit's own `shuffle` does not apply to tf.data.
    return model.fit(
        data,
        epochs=epochs,
        verbose=config.verbose,
        shuffle=False,
        callbacks=[RaiseOnNonFinite(phase)],  # no NaN model is compared or exported
    )


def check_config(config: DemoConfig) -> None:
    """Raises ``ValueError`` naming the field for a setting ``run_demo`` cannot honour, and
    ``kdzoo.files.NotOwnedError`` for a ``student_dir`` that is not a kdzoo bundle, before
    anything is trained."""
    check_settings(
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


def _compile(model, config, epochs, steps_per_epoch, **kwargs):
    # Cosine decay to zero: the final weights do not depend on where a noisy last epoch ends.
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(1, epochs * steps_per_epoch)
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule), metrics=["accuracy"], **kwargs)


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
    train, test = data.splits["train"], data.splits[config.evaluate_on]
    steps = int(train.cardinality())  # known: from_arrays asserts the pipeline's length
    shapes = {f"{m}_shape": tuple(spec.shape) for m, spec in data.input_specs.items()}

    def audio_only(ds):
        return ds.map(lambda x, y: ({k: x[k] for k in STUDENT_INPUTS}, y))

    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    print(f"Dataset {data.name}: {data.num_examples}")
    print(f"[1/3] Teacher on {'+'.join(TEACHER_INPUTS)} ({config.teacher_epochs} epochs)")
    teacher, student = models.build_pair("av_to_audio", data.num_classes, **shapes)
    _compile(teacher, config, config.teacher_epochs, steps, loss=ce)
    _fit(teacher, train, config.teacher_epochs, config, "teacher")

    initial = student.get_weights()  # scratch and distilled start from the same weights
    print(f"[2/3] Student on {'+'.join(STUDENT_INPUTS)} from scratch ({config.epochs} epochs)")
    _compile(student, config, config.epochs, steps, loss=ce)
    _fit(student, audio_only(train), config.epochs, config, "scratch")

    print(f"[3/3] Same student distilled from the teacher ({config.epochs} epochs)")
    distilled = keras.models.clone_model(student)  # same architecture, weights set next
    distilled.set_weights(initial)
    distiller = Distiller(
        teacher=teacher,
        student=distilled,
        teacher_inputs=TEACHER_INPUTS,
        student_inputs=STUDENT_INPUTS,
        temperature=config.temperature,
        ce_weight=config.ce_weight,
        kd_weight=config.kd_weight,
    )
    _compile(distiller, config, config.epochs, steps)
    _fit(distiller, train, config.epochs, config, "distil")

    rows = []
    for label, model, inputs, ds in (
        ("teacher", teacher, TEACHER_INPUTS, test),
        ("student (scratch)", student, STUDENT_INPUTS, audio_only(test)),
        ("student (distilled)", distiller.student, STUDENT_INPUTS, audio_only(test)),
    ):
        metrics = classification_metrics(model, ds)
        rows.append(
            {"model": label, "inputs": "+".join(inputs), "params": model.count_params(), **metrics}
        )
    table = pd.DataFrame(rows)

    if not config.export_dir:
        return DemoResult(table, None)
    split = config.evaluate_on
    distilled_row = table.set_index("model").loc["student (distilled)"]
    metrics = {f"{split}_{k}": float(distilled_row[k]) for k in ("accuracy", "macro_f1")}
    preprocessing = ServingPreprocessing.from_dataset(data, STUDENT_INPUTS)
    examples = raw_examples(data.arrays[split], STUDENT_INPUTS)
    export_path = export_for_serving(
        distiller,
        config.export_dir,
        name=config.export_name,
        preprocessing=preprocessing,
        metrics=metrics,
        warmup_inputs=examples,
    )
    student_path = save_student(
        distiller,
        _student_dir(config),
        preprocessing,
        name=config.export_name,
        metrics=metrics,
        examples=examples,
    )
    return DemoResult(table, str(export_path), str(student_path))


def format_table(table: pd.DataFrame) -> str:
    return table.to_string(
        index=False, formatters={"accuracy": "{:.3f}".format, "macro_f1": "{:.3f}".format}
    )

"""``distil()``'s settings and result, and the checks that run before anything trains."""

from __future__ import annotations

import dataclasses
import os

import keras
import pandas as pd

from kdzoo import validation
from kdzoo.datasets.catalog import CATALOG
from kdzoo.defaults import DEFAULTS

OPTIMIZERS = ("adam", "adamw", "sgd")


class DataConfigError(ValueError):
    """The data ``distil()`` loaded does not suit its ``DistilConfig``: fewer training
    examples than one global batch, fewer than ``train_examples``, no validation split, no
    input the models read, or no pair for its mix of modalities. Raised before anything
    trains or any backup is claimed for your own data; its message names the data
    (``kdzoo distil`` prints it as one line, in its flags)."""


@dataclasses.dataclass
class DistilConfig:
    """Settings of ``distil``; every field has a CLI flag of the same name.

    Attributes:
        dataset: a ``kdzoo.datasets`` name, or your own data as a ``LoadedDataset``
            (``kdzoo.datasets.from_csv``, ``from_dataframe``, ``from_folder``...) or a
            function that returns one (called after the strategy is made, which a TPU or
            multi-worker run needs before any TensorFlow op). Defaults to ``"embedded"``.
        pair: a ``kdzoo.models`` pair (or model family), which builds the teacher and the
            student that ``teacher`` and ``student`` do not give. Defaults to None: the
            data's family, as ``kdzoo distil --data`` picks it (``kdzoo.families``):
            ``tabular_mlp``, ``text_lstm``, ``image_cnn`` or ``audio_crnn`` for data of one
            modality, ``"av_to_audio"`` for your image with audio and for the catalog's AV
            sets (``embedded`` has text beside); other mixes must name it.
        teacher: a teacher to distil from instead of the pair's: a ``keras.Model``, a
            ``.keras`` file or a SavedModel folder (``kdzoo.distillation.load_teacher``),
            or a file of its outputs (``.npz``, ``.csv``, ``.parquet``: logits or
            probabilities keyed by the data's ids; ``read_teacher_outputs``). It is used as
            it is: not trained (``teacher_epochs`` must be left at its default or 0).
            Defaults to None (the pair's teacher, trained first).
        student: the student instead of the pair's: ``"family/preset"`` (e.g.
            ``"text_lstm/student"``) or an untrained ``keras.Model``. Defaults to None.
        teacher_inputs, student_inputs: the batch keys each model reads. Defaults to None:
            the models' input names.
        num_examples: size of the generated ``"embedded"`` set. Defaults to 5000.
        normalize_audio: per-mel-bin normalisation of the log-mel (``kdzoo.datasets.load``).
            Defaults to None (the dataset's default: off for ``"embedded"``).
        utterance_norm: per-utterance normalisation of the log-mel, ``"none"``, ``"mean"``,
            ``"mean_var"`` or ``"auto"`` (``kdzoo.datasets.load``). Defaults to None (the
            dataset's: ``"auto"`` for FSDD and AV digits, ``"none"`` for ``"embedded"``).
        train_examples: use only ``N`` training examples, a seeded random subset (quick
            runs). Defaults to None (all).
        global_batch_size: examples per step over all replicas; must be a multiple of the
            replica count. Defaults to None: ``auto_batch_size`` of the training split,
            ``DEFAULTS.batch_size`` (64) unless an epoch would then take fewer than
            ``AUTO_BATCH_MIN_STEPS`` steps (a small training set), where it is halved, down
            to ``SMALLEST_AUTO_BATCH`` examples per replica.
        teacher_epochs: the teacher's epoch budget; 0 distils from an untrained teacher.
            Defaults to ``DEFAULTS.teacher_epochs``.
        epochs: each student's epoch budget (scratch tries and distillation candidates).
            Defaults to ``DEFAULTS.epochs``.
        patience, plateau_patience, plateau_factor: the validation rules of every phase
            (``kdzoo.recipe.Stopping``). Defaults to ``DEFAULTS``'.
        validation_fraction: share of each class of the training split held out for
            validation when the dataset has no validation split. Defaults to
            ``DEFAULTS.validation_fraction``.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``. Defaults to ``DEFAULTS.optimizer``.
        learning_rate: the optimizer's starting rate, reduced on validation plateaus.
            Defaults to ``DEFAULTS.learning_rate``.
        candidates: the distillation settings tried (``kdzoo.recipe.Candidate.parse``, e.g.
            ``"ce:0.5,kd_std:0.5@t=2"``); one of them is a single fixed setting. Defaults to
            None: those of the data's task kind (``DEFAULTS.candidates`` for classification,
            ``DEFAULTS.multi_label_candidates`` for binary and multi-label tasks,
            ``DEFAULTS.regression_candidates`` for regression).
        scratch: the scratch student's tries (``"scratch"``, ``"scratch@ls=0.1"``...).
            Defaults to None: as many as there are candidates
            (``kdzoo.recipe.scratch_tries``).
        distil_margin_se: the best distillation candidate is the recipe's student only if
            it beats the tuned scratch student on validation by more than this many
            standard errors of their paired difference. Defaults to
            ``DEFAULTS.distil_margin_se`` (1: the one-standard-error rule); 0 takes any gain.
        teacher_overrides, student_overrides: builder arguments for each side of the pair,
            e.g. ``{"dropout": 0.0}``. Defaults to None.
        strategy: ``"auto"``, ``"default"``, ``"mirrored"``, ``"multiworker"`` or
            ``"tpu"`` (``kdzoo.distribute.resolve_strategy``). Defaults to ``"auto"``.
        tpu: TPU name, ``grpc://`` address or ``"local"``. Defaults to the environment's.
        seed: initialisation, data order and pairing seed. Defaults to ``DEFAULTS.seed``.
        op_determinism: TensorFlow's op determinism with the seed
            (``kdzoo.determinism.seed_everything``): the same seed on the same machine gives
            the same weights. True, False, or ``"auto"``: on unless XLA is in use, which
            Keras turns off under it. Defaults to ``DEFAULTS.op_determinism`` (``"auto"``).
        jit_compile: XLA for the train steps: True, False or ``"auto"`` (Keras': on for
            GPUs when every layer supports it; TPUs always compile). Defaults to ``"auto"``.
        steps_per_execution: train steps per ``tf.function`` call (fewer host round trips,
            which matters most on TPUs). Defaults to 1.
        mixed_precision: ``"float32"``, ``"mixed_float16"`` (GPU; loss scaling is added by
            ``compile``), ``"mixed_bfloat16"`` (TPU, recent CPUs/GPUs), or ``"auto"``
            (bfloat16 on TPU, float16 on GPU, float32 otherwise). Logits and losses stay
            float32. Defaults to ``"float32"``.
        backup_dir: where each phase's ``BackupAndRestore`` state goes, so a killed run
            resumes from its last finished epoch. Every worker must see it (a shared or
            ``gs://`` path for several hosts). Defaults to None (no backups).
        export_dir: where the chief exports the distilled student (TF Serving layout,
            ``<export_dir>/<export_name>/<version>/``). Defaults to None (no export).
        export_name: the exported model's name. Defaults to None: ``<data name>_student``
            for your own data (``customers_student``), else the student's inputs
            (``"audio_student"`` for the default pair).
        portable: the export tokenises text with core TensorFlow ops instead of
            tensorflow-text's, so that it loads in any TF runtime and stock TF Serving
            (``kdzoo.serving.export_student(portable=True)``); exports without text are
            portable either way. Defaults to False.
        run_dir: where the report (tables and figure, ``kdzoo.recipe.report``) is written.
            Defaults to None (no report files).
        tensorboard: TensorBoard logs under ``<run_dir>/logs``. Defaults to False.
        verbose: Keras ``fit`` verbosity. Defaults to ``"auto"``.
    """

    dataset: object = "embedded"
    pair: str | None = None
    teacher: object = None
    student: object = None
    teacher_inputs: tuple | None = None
    student_inputs: tuple | None = None
    num_examples: int | None = None
    normalize_audio: bool | None = None
    utterance_norm: str | None = None
    train_examples: int | None = None
    global_batch_size: int | None = None
    teacher_epochs: int = DEFAULTS.teacher_epochs
    epochs: int = DEFAULTS.epochs
    patience: int = DEFAULTS.patience
    plateau_patience: int = DEFAULTS.plateau_patience
    plateau_factor: float = DEFAULTS.plateau_factor
    validation_fraction: float = DEFAULTS.validation_fraction
    optimizer: str = DEFAULTS.optimizer
    learning_rate: float = DEFAULTS.learning_rate
    candidates: tuple | None = None
    scratch: tuple | None = None
    distil_margin_se: float = DEFAULTS.distil_margin_se
    teacher_overrides: dict | None = None
    student_overrides: dict | None = None
    strategy: str = "auto"
    tpu: str | None = None
    seed: int = DEFAULTS.seed
    op_determinism: bool | str = DEFAULTS.op_determinism
    jit_compile: bool | str = "auto"
    steps_per_execution: int = 1
    mixed_precision: str = "float32"
    backup_dir: str | None = None
    export_dir: str | None = None
    export_name: str | None = None
    portable: bool = False
    run_dir: str | None = None
    tensorboard: bool = False
    verbose: int | str = "auto"


@dataclasses.dataclass
class DistilResult:
    """What ``distil`` returns.

    Attributes:
        strategy: the strategy used and why it was chosen (one line).
        num_replicas: replicas in sync.
        is_chief: whether this process wrote the exports (always True on one worker).
        table: test metrics of the teacher, the tuned scratch student and the recipe's
            student (``kdzoo.recipe.RecipeResult.table``).
        candidates: every student tried, validation and test side by side.
        chosen: the ``Candidate`` of the recipe's student.
        history: per phase, Keras' history of the epochs run *in this process*.
        epochs_run: per phase, the epoch indices run in this process (a resumed run skips
            the finished ones).
        teacher, student, scratch_student: the trained teacher, the recipe's student and
            the best scratch try.
        recipe: the whole ``RecipeResult``.
        distiller: the ``Distiller`` of the chosen candidate (of the first candidate when
            scratch was chosen), compiled, with its optimizer state; None if no
            distillation phase ran in this process.
        export_path: the chief's export folder, or None.
        precision: the dtype policy trained under.
        global_batch_size: the global batch trained with (``auto_batch_size``'s when the
            config gave None).
    """

    strategy: str
    num_replicas: int
    is_chief: bool
    table: pd.DataFrame
    candidates: pd.DataFrame
    chosen: object
    history: dict
    epochs_run: dict
    teacher: keras.Model
    student: keras.Model
    scratch_student: keras.Model
    recipe: object
    distiller: keras.Model | None
    export_path: str | None
    precision: str = "float32"
    global_batch_size: int = DEFAULTS.batch_size


#: ``global_batch_size=None`` halves ``DEFAULTS.batch_size`` while an epoch of the training
#: split would take fewer steps than this: the recipe's schedule counts epochs (patience,
#: plateaus), so a small training set in large batches stops before it has learnt what it
#: can. ``benchmarks/small_batches.py`` (validation accuracy, 3 seeds): 400 MNIST, FSDD and
#: SST-2 examples in batches of 16 (25 steps an epoch) rather than 64 (6) raised the scratch
#: student by 2.9, 3.6 and 0.9 points and the distilled one by 1.7, 3.2 and 2.8; 1,600 in
#: batches of 64 (25 steps) were about as good as in 16 (100).
AUTO_BATCH_MIN_STEPS = 16
#: ... and not below this many examples per replica.
SMALLEST_AUTO_BATCH = 8


def auto_batch_size(num_rows: int, replicas: int = 1) -> int:
    """The global batch ``distil()`` uses when ``global_batch_size`` is None: 64
    (``DEFAULTS.batch_size``), halved while ``num_rows`` rows would make an epoch of fewer
    than ``AUTO_BATCH_MIN_STEPS`` steps, not below ``SMALLEST_AUTO_BATCH`` per replica; a
    multiple of ``replicas``."""
    batch, smallest = DEFAULTS.batch_size, SMALLEST_AUTO_BATCH * replicas
    while batch // 2 >= smallest and num_rows // batch < AUTO_BATCH_MIN_STEPS:
        batch //= 2
    return replicas * max(1, batch // replicas)


def parse_terms(specs, temperature=DEFAULTS.temperature):
    """``LossTerm``s from ``"name[:weight]"`` strings (configs and the CLI)."""
    from kdzoo.distillation import LossTerm

    return [LossTerm.parse(spec, temperature=temperature) for spec in specs]


def check_config(config: DistilConfig) -> None:
    """Raises ``ValueError`` naming the field for any setting ``distil`` cannot honour, and
    ``kdzoo.files.NotOwnedError`` for a ``run_dir`` kdzoo did not write, before anything is
    loaded or trained."""
    validation.check_settings(
        config,
        ints=(
            ("epochs", 1),
            ("teacher_epochs", 0),
            ("steps_per_execution", 1),
            ("patience", 1),
            ("plateau_patience", 1),
            ("seed", 0),
        ),
        optional_ints=(("num_examples", 1), ("train_examples", 1), ("global_batch_size", 1)),
        positive=("learning_rate", "plateau_factor", "validation_fraction"),
    )
    batch = config.global_batch_size or SMALLEST_AUTO_BATCH
    if config.train_examples and config.train_examples < batch:
        raise ValueError(
            f"DistilConfig.train_examples={config.train_examples} keeps fewer training "
            f"examples than one global batch (global_batch_size={batch}); "
            "give more examples or a smaller batch."
        )
    margin = config.distil_margin_se
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < 1e9:
        raise ValueError(
            f"DistilConfig.distil_margin_se must be a number >= 0 (standard errors); got "
            f"{margin!r}."
        )
    if not config.plateau_factor < 1 or not config.validation_fraction < 1:
        raise ValueError(
            "DistilConfig.plateau_factor and validation_fraction must be below 1; got "
            f"{config.plateau_factor} and {config.validation_fraction}."
        )
    if config.op_determinism not in (True, False, "auto"):
        raise ValueError(
            "DistilConfig.op_determinism must be True, False or 'auto'; got "
            f"{config.op_determinism!r}."
        )
    if config.op_determinism is True and config.jit_compile is True:
        raise ValueError(
            "DistilConfig.op_determinism=True and jit_compile=True exclude each other: Keras "
            "turns XLA off while op determinism is on. Choose one ('auto' keeps XLA)."
        )
    from kdzoo.distribute import PRECISIONS, STRATEGIES

    for field, valid in (
        ("strategy", STRATEGIES),
        ("mixed_precision", PRECISIONS),
        ("jit_compile", (True, False, "auto")),
        ("verbose", (0, 1, 2, "auto")),
        ("tensorboard", (True, False)),
        ("portable", (True, False)),
    ):
        value = getattr(config, field)
        if not any(
            value is v if isinstance(v, bool) or isinstance(value, bool) else value == v
            for v in valid
        ):
            raise ValueError(
                f"DistilConfig.{field} must be one of {', '.join(map(repr, valid))}; got {value!r}."
            )
    for field in ("teacher_overrides", "student_overrides"):
        if getattr(config, field) is not None and not isinstance(getattr(config, field), dict):
            raise ValueError(
                f"DistilConfig.{field} must be a dict of builder arguments, or None; got "
                f"{getattr(config, field)!r}."
            )
    for field in ("candidates", "scratch", "teacher_inputs", "student_inputs"):
        value = getattr(config, field)
        if value is None:
            continue
        strings = field.endswith("inputs")  # candidates may also be Candidate objects
        if not isinstance(value, tuple | list) or (
            strings and not all(isinstance(v, str) for v in value)
        ):
            raise ValueError(
                f"DistilConfig.{field} must be a tuple of {'strings' if strings else 'specs'}"
                f", or None; got {value!r}"
                + (f" (one: ({value!r},))." if isinstance(value, str) else ".")
            )
    name = config.export_name
    if name is not None and (
        not isinstance(name, str) or not name or "/" in name or os.sep in name or name[0] == "."
    ):
        raise ValueError(
            f"DistilConfig.export_name must be a plain folder name (no '/', not starting with "
            f"'.'); got {name!r}."
        )
    for field in ("run_dir", "export_dir"):
        if "://" in str(getattr(config, field) or ""):
            raise ValueError(
                f"DistilConfig.{field}: {getattr(config, field)!r} is a URL; kdzoo writes "
                f"{field} on this machine's file system only (backup_dir may be gs://). "
                "Write to a local folder and copy it (gsutil -m cp -r, or tf.io.gfile)."
            )
        folder = getattr(config, field)
        if folder and os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError(f"DistilConfig.{field}: {folder} is a file, not a folder.")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"DistilConfig.optimizer must be one of {OPTIMIZERS}; got {config.optimizer!r}."
        )
    for side in ("teacher_inputs", "student_inputs"):
        if getattr(config, side) is not None and tuple(getattr(config, side)) == ():
            raise ValueError(f"DistilConfig.{side} must name input keys, or be None.")
    _check_models(config)
    from kdzoo.recipe.candidates import parse_candidates

    try:  # names, weights and settings, before anything trains
        candidates = parse_candidates(config.candidates or ())
        scratch = parse_candidates(config.scratch) if config.scratch is not None else ()
    except ValueError as err:
        raise ValueError(f"DistilConfig.candidates/scratch: {err}") from None
    if any(not c.distils for c in candidates) or any(c.distils for c in scratch):
        raise ValueError(
            "DistilConfig.candidates holds distillation settings and scratch the scratch "
            "tries ('scratch', 'scratch@ls=0.1'); one is in the other's list."
        )
    if config.scratch is not None and not scratch:
        raise ValueError("DistilConfig.scratch must hold at least one try, or be None.")
    if config.tensorboard and not config.run_dir:
        raise ValueError("DistilConfig.tensorboard writes under run_dir; set run_dir.")
    if config.run_dir:  # refused before data, backups or training (as DemoConfig's)
        from kdzoo.files import check_replaceable
        from kdzoo.recipe.report import KIND as REPORT_KIND

        check_replaceable(config.run_dir, REPORT_KIND, "run_dir")
    if callable(config.dataset):
        spec = None  # checked when distil() calls it
    elif not isinstance(config.dataset, str):
        from kdzoo.datasets import LoadedDataset

        if not isinstance(config.dataset, LoadedDataset):
            raise ValueError(
                "DistilConfig.dataset must be a dataset name or a LoadedDataset (kdzoo."
                f"datasets.from_csv, from_dataframe...); got {type(config.dataset).__name__}."
            )
        if "validation" not in config.dataset.arrays:
            raise ValueError("DistilConfig.dataset has no validation split to select on.")
        spec = None
    if not isinstance(config.dataset, str):
        for field in ("num_examples", "normalize_audio", "utterance_norm"):
            if getattr(config, field) is not None:
                raise ValueError(
                    f"DistilConfig.{field} applies to a dataset kdzoo loads by name; your "
                    "data is loaded by its own loader."
                )
        if config.validation_fraction != DEFAULTS.validation_fraction:
            raise ValueError(
                "DistilConfig.validation_fraction applies to a dataset kdzoo loads by name; "
                "give your data's loader its validation_fraction (in an experiment file: "
                "under data:)."
            )
    else:
        try:
            spec = CATALOG.get(config.dataset)
        except ValueError as err:
            raise ValueError(f"DistilConfig.dataset: {err}") from None
    if spec is not None and config.num_examples is not None and not spec.generated:
        raise ValueError(
            "DistilConfig.num_examples sizes a generated set such as 'embedded'; "
            f"{config.dataset!r} has a fixed size (use train_examples for a subset)."
        )
    if config.backup_dir and config.export_dir:
        backup, export = _normalized(config.backup_dir), _normalized(config.export_dir)
        if backup == export or _inside(backup, export) or _inside(export, backup):
            raise ValueError(
                f"DistilConfig.backup_dir {config.backup_dir!r} and export_dir "
                f"{config.export_dir!r} overlap; backups are removed when the run ends, so "
                "they must not hold the exports. Use two separate folders."
            )


def _check_models(config) -> None:
    """The given teacher and student, before any data is loaded."""
    from kdzoo import models

    teacher = config.teacher
    if teacher is not None:
        if isinstance(teacher, str | os.PathLike):
            if not os.path.exists(teacher):
                raise ValueError(
                    f"DistilConfig.teacher: {os.fspath(teacher)}: no such file or folder."
                )
        elif not isinstance(teacher, keras.Model):
            raise ValueError(
                "DistilConfig.teacher must be a keras.Model, a .keras file or a SavedModel "
                f"folder; got {type(teacher).__name__}."
            )
        if config.teacher_epochs not in (0, DEFAULTS.teacher_epochs):
            raise ValueError(
                "DistilConfig.teacher is used as it is, not trained; leave teacher_epochs at "
                f"its default, or 0 (got {config.teacher_epochs})."
            )
    student = config.student
    if isinstance(student, str):
        family, _, preset = student.partition("/")
        try:
            presets = models.get_spec(family).presets
        except ValueError as err:
            raise ValueError(f"DistilConfig.student: {err}") from None
        if (preset or "student") not in presets:
            raise ValueError(
                f"DistilConfig.student: {family!r} has no preset {preset!r}; it has "
                f"{', '.join(presets)}."
            )
    elif student is not None and not isinstance(student, keras.Model):
        raise ValueError(
            "DistilConfig.student must be 'family/preset' or a keras.Model; got "
            f"{type(student).__name__}."
        )
    if (teacher is None or student is None) and config.pair is not None:
        if config.pair not in models.list_pairs() and config.pair not in models.list_models():
            raise ValueError(
                f"DistilConfig.pair: unknown pair {config.pair!r}. Valid pairs: "
                f"{', '.join(models.list_pairs())}; or a model family: "
                f"{', '.join(models.list_models())}."
            )


def _normalized(path) -> str:
    path = str(path)
    if "://" in path:  # gs://, hdfs://: compare as written
        return path.rstrip("/")
    return os.path.realpath(os.path.expanduser(path))


def _inside(path, folder) -> bool:
    return path.startswith(folder.rstrip("/") + "/")

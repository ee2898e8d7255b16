"""``kdzoo.datasets.load(name, ...)``: ready tf.data pipelines plus metadata.

``load`` runs four steps, each a function here:

1. ``read_splits``: the catalog entry's reader returns ``{split: arrays}``;
2. ``carve_validation``: an optional validation split out of ``"train"`` (a seeded fraction,
   or one held-out speaker), then ``drop_bad_rows`` (raise, or skip and count);
3. ``fit_preprocessing``: what is learnt from the training split only: the audio
   normalisation statistics and the text vocabulary (written to a content-addressed file);
4. ``build_pipelines``: one ``from_arrays`` pipeline per requested split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from kdzoo.data import AudioConfig, ImageConfig, TextVectorizer, from_arrays
from kdzoo.data.audio import UTTERANCE_NORMS
from kdzoo.data.augment import AugmentConfig
from kdzoo.data.bad_input import BadInputLog
from kdzoo.data.pipeline import validate_arrays
from kdzoo.datasets.arrays import TRAIN_AND_TRANSFER, TRANSFER, carve_validation, split_arrays
from kdzoo.datasets.arrays import stratified_holdout as stratified_holdout  # moved there
from kdzoo.datasets.catalog import CATALOG, DatasetSpec
from kdzoo.defaults import DEFAULTS
from kdzoo.files import atomic_file
from kdzoo.labels import UNLABELLED

if TYPE_CHECKING:  # a dataset without a table does not load the tabular front end
    from kdzoo.data.tabular import TabularConfig

CACHE_ENV_VAR = "KDZOO_CACHE_DIR"


def cache_root(cache_dir=None) -> Path:
    """Where derived files (vocabularies) go: ``cache_dir``, ``$KDZOO_CACHE_DIR``, or
    ``~/.cache/kdzoo``. Never the data root, which may be read-only."""
    value = cache_dir or os.environ.get(CACHE_ENV_VAR) or "~/.cache/kdzoo"
    return Path(value).expanduser()


@dataclasses.dataclass
class LoadedDataset:
    """Pipelines yielding ``({modality: tensor}, label)`` and what a model needs to match.

    ``splits`` maps split name to a pipeline (training splits shuffle and, if asked,
    augment). ``pipeline(split, ...)`` rebuilds one with other options, e.g. an ordered
    copy of ``"train"`` to cache teacher outputs from, or one carrying cached outputs.
    """

    name: str
    splits: dict  # split name -> tf.data.Dataset
    class_names: tuple
    input_specs: dict  # modality -> tf.TensorSpec of one example
    audio_config: AudioConfig | None
    num_examples: dict  # split name -> count
    image_config: ImageConfig | None = None
    text_vectorizer: TextVectorizer | None = None
    vocabulary_path: str | None = None
    tabular_config: TabularConfig | None = None
    skipped: int = 0
    modalities: tuple = ()
    arrays: dict = dataclasses.field(default_factory=dict, repr=False)
    options: dict = dataclasses.field(default_factory=dict, repr=False)
    #: A ``kdzoo.tasks.Task`` when the labels are not one class out of ``class_names``
    #: (binary through one logit, multi-label, regression); None: classification.
    task: object = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def pipeline(self, split, training=None, extras=None, **overrides):
        """Builds split ``split`` again; ``training`` defaults to True for ``"train"`` and
        ``"train+transfer"``.

        Args:
            split: a key of ``arrays``, or ``"train+transfer"`` (``split_arrays``).
            training: shuffle and augment. Defaults to True for ``"train"`` and
                ``"train+transfer"``.
            extras: per-row values riding in each example's features, e.g. cached teacher
                outputs: ``extras=kdzoo.distillation.with_teacher_outputs(cache)``.
            **overrides: replace ``from_arrays`` options (``batch_size``, ``augment``,
                ``drop_remainder``, ``seed``...).
        """
        arrays = self.split_arrays(split)
        options = {**self.options, **overrides}
        return from_arrays(
            arrays,
            self.modalities,
            training=split in ("train", TRAIN_AND_TRANSFER) if training is None else training,
            extras=extras,
            audio_config=self.audio_config,
            image_config=self.image_config,
            text_vectorizer=self.text_vectorizer,
            tabular_config=self.tabular_config,
            num_classes=self.num_classes,
            unlabelled=split in (TRANSFER, TRAIN_AND_TRANSFER),
            task=self.task,
            **options,
        )

    def model_shapes(self) -> dict:
        """The builder arguments that shape a zoo model for this data
        (``kdzoo.models.build(..., **data.model_shapes())``): each modality's input shape,
        and for text the sequence length and the vocabulary size."""
        shapes = {f"{m}_shape": tuple(spec.shape) for m, spec in self.input_specs.items()}
        if self.text_vectorizer is not None:
            shapes.pop("text_shape", None)
            shapes["sequence_length"] = self.input_specs["text"].shape[0]
            shapes["vocab_size"] = self.text_vectorizer.vocab_size
        return shapes

    def split_arrays(self, split) -> dict:
        """The arrays of ``split``: a key of ``arrays``, or ``"train+transfer"`` (the
        training rows followed by the unlabelled transfer rows, see ``with_transfer``)."""
        return split_arrays(self.arrays, split, self.name)


def with_transfer(data: LoadedDataset, arrays) -> LoadedDataset:
    """A copy of ``data`` with an unlabelled transfer set: the ``"transfer"`` split.

    A transfer set holds examples without labels, e.g. recordings nobody annotated, that a
    teacher labels softly: the recipe (``kdzoo.recipe.run``) trains its distillation
    candidates on the training rows followed by these (``"train+transfer"``), the teacher
    terms on every row and the label terms on the labelled ones. The teacher and the
    scratch students train on the labelled training rows only. Preprocessing stays the one
    fitted on the training split.

    Args:
        data: a ``LoadedDataset``.
        arrays: ``{modality: array}``, raw like ``data.arrays["train"]`` (the same
            modalities, one row per example), and optionally ``"id"``. A ``"label"`` key,
            if any, must mark every row as unlabelled (``kdzoo.labels``: ``UNLABELLED``,
            or per ``data.task``, e.g. NaN rows for regression): transfer rows have no
            label.

    Returns:
        The copy; ``data`` is unchanged.

    Raises:
        KeyError: a modality of ``data`` is missing.
        ValueError: ``data`` already has a transfer split, the rows are empty or of
            different lengths, or a row carries a label.
    """
    if TRANSFER in data.arrays:
        raise ValueError(f"{data.name} already has a {TRANSFER!r} split.")
    missing = [m for m in data.modalities if m not in arrays]
    if missing:
        raise KeyError(
            f"The transfer set lacks modality key(s) {missing} of {data.name}; it holds "
            f"{sorted(arrays)}."
        )
    rows = {m: np.asarray(arrays[m]) for m in data.modalities}
    lengths = {m: len(v) for m, v in rows.items()}
    n = next(iter(lengths.values()), 0)
    if not n or len(set(lengths.values())) != 1:
        raise ValueError(f"The transfer set needs rows, the same number per key; got {lengths}.")
    task = data.task
    if "label" in arrays:
        labels = np.asarray(arrays["label"])
        if task is None:
            labelled = np.flatnonzero(labels != UNLABELLED)
            mark = f"mark them kdzoo.labels.UNLABELLED ({UNLABELLED})"
        else:
            labelled = np.flatnonzero(task.labelled_rows(labels))
            mark = f"mark them as a {task.kind} task does (kdzoo.labels)"
        if len(labelled):
            raise ValueError(
                f"Transfer rows have no label, but row {labelled[0]} has label "
                f"{labels[labelled[0]].tolist()}: put labelled rows in the training split, or "
                f"{mark}."
            )
    if "id" in arrays:  # e.g. to read a teacher's outputs for these rows by id
        rows["id"] = np.asarray(arrays["id"])
    # The task's "no label" mark: a negative class id, rows of -1 (multi-label), NaN rows
    # (regression), which the label terms and metrics of a Distiller skip.
    rows["label"] = np.full(n, UNLABELLED, np.int32) if task is None else task.unlabelled(n)
    copy = dataclasses.replace(data, arrays={**data.arrays, TRANSFER: rows})
    copy.num_examples = {**data.num_examples, TRANSFER: n}
    copy.splits = {**data.splits, TRANSFER: copy.pipeline(TRANSFER, training=False)}
    return copy


def with_task(data: LoadedDataset, task, key: str, keep_class_label=True) -> LoadedDataset:
    """A copy of ``data`` whose labels are the per-split arrays ``key`` under ``task``: a
    regression target or multi-label tags beside the class label (the embedded dataset's
    ``"target"`` and ``"tags"``), or your own column.

    A regression task without standardisation gets it here, fitted on the training split
    only (``Task.fit_normalisation``): the pipelines then carry standardised targets and
    ``task.report`` / ``task.predict`` give the original units. Carve the validation split
    first (``load(..., validation_fraction=...)``): rows the recipe holds out of ``"train"``
    later would be in the statistics. The class label stays in
    the arrays as ``"class_label"``.

    Args:
        data: a ``LoadedDataset`` whose every split holds ``key``.
        task: a ``kdzoo.tasks.Task`` of kind ``binary``, ``multi_label`` or ``regression``.
        key: the array holding its labels, one row per example.
        keep_class_label: keep the class labels as ``"class_label"`` (and ``key`` as it
            was). False drops both (``from_dataframe``'s placeholder). Defaults to True.

    Returns:
        The copy (``copy.task`` is the task, standardised if it is a regression); ``data``
        is unchanged.

    Raises:
        KeyError: a split lacks ``key``.
        ValueError: a classification task, a transfer split, or labels the task refuses
            (naming the split and the first bad row).

    Example:

    >>> data = kdzoo.datasets.load("embedded", validation_fraction=0.1)
    >>> data = kdzoo.datasets.with_task(data, kdzoo.tasks.Task.regression(["target"]), "target")
    """
    from kdzoo.tasks import Task

    if not isinstance(task, Task) or task.kind == "classification":
        raise ValueError(
            "with_task takes a binary, multi-label or regression kdzoo.tasks.Task; "
            f"classification is the datasets' own labels. Got {task!r}."
        )
    if TRANSFER in data.arrays:
        raise ValueError(f"{data.name} has a {TRANSFER!r} split; add the task before it.")
    missing = [split for split, arrays in data.arrays.items() if key not in arrays]
    if missing:
        raise KeyError(f"{data.name}: split(s) {missing} have no {key!r} array.")
    if task.kind == "regression" and not task.target_mean:
        task = task.fit_normalisation(data.arrays["train"][key])
    arrays = {}
    for split, rows in data.arrays.items():
        labels = task.check_labels(rows[key], f"{data.name} {split} {key!r}")
        if task.kind == "regression":
            labels = task.normalise(labels)
        if keep_class_label:
            arrays[split] = {**rows, "class_label": rows["label"], "label": labels}
        else:
            arrays[split] = {**{k: v for k, v in rows.items() if k != key}, "label": labels}
    copy = dataclasses.replace(data, arrays=arrays, task=task, class_names=tuple(task.names))
    copy.splits = {s: copy.pipeline(s) for s in data.splits}
    return copy


def scarce_labels(
    data: LoadedDataset, labels_per_class=None, seed=DEFAULTS.seed, *, labelled_rows=None
):
    """A copy of ``data`` in which only some seeded-random training rows keep their label;
    the other training rows become the unlabelled transfer set (``with_transfer``). The
    label-scarce setting: plenty of examples, few labels.

    Give one of ``labels_per_class`` (classification and binary tasks: that many rows of
    each class) or ``labelled_rows`` (any task kind, e.g. regression or multi-label: that
    many rows drawn at random). The validation and test splits are unchanged (all
    labelled); preprocessing stays the one fitted on the whole training split, which needs
    no labels. A regression task keeps the standardisation ``with_task`` fitted on every
    training target, the hidden ones included (a teacher trained on them predicts on that
    scale); with only the kept labels, call ``with_task`` on data that holds just those.

    Args:
        data: a ``LoadedDataset`` without a transfer split.
        labels_per_class: labelled rows kept per class, ``>= 1``; a class with fewer keeps
            all of its rows.
        seed: which rows keep their labels.
        labelled_rows: labelled rows kept in all, ``>= 1``.

    Returns:
        The copy; ``data`` is unchanged.
    """
    if (labels_per_class is None) == (labelled_rows is None):
        raise ValueError("Give one of `labels_per_class` and `labelled_rows`.")
    per_class = labels_per_class is not None
    count = labels_per_class if per_class else labelled_rows
    what = "labels_per_class" if per_class else "labelled_rows"
    if isinstance(count, bool) or not isinstance(count, int | np.integer):
        raise TypeError(f"`{what}` must be an int; got {count!r}.")
    if count < 1:
        raise ValueError(f"`{what}` must be >= 1; got {count}.")
    if per_class and data.task is not None and data.task.kind != "binary":
        raise ValueError(
            f"`labels_per_class` needs class labels; a {data.task.kind} task keeps "
            "`labelled_rows=` rows drawn at random."
        )
    train = data.arrays["train"]
    labels = np.asarray(train["label"])
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(labels), bool)
    if per_class:
        for value in np.unique(labels):
            rows = np.flatnonzero(labels == value)
            keep[np.sort(rng.permutation(rows)[:count])] = True
    else:
        keep[rng.permutation(len(labels))[:count]] = True
    labelled = {k: v[keep] for k, v in train.items()}
    copy = dataclasses.replace(data, arrays={**data.arrays, "train": labelled})
    copy.num_examples = {**data.num_examples, "train": int(keep.sum())}
    copy.splits = {**data.splits, "train": copy.pipeline("train")}
    if keep.all():
        return copy
    return with_transfer(copy, {m: train[m][~keep] for m in data.modalities})


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What ``fit_preprocessing`` learnt from the training split."""

    audio_config: AudioConfig | None = None
    image_config: ImageConfig | None = None
    text_vectorizer: TextVectorizer | None = None
    vocabulary_path: Path | None = None
    tabular_config: TabularConfig | None = None


def _reader(spec: DatasetSpec):
    module, _, function = spec.reader.partition(":")
    return getattr(importlib.import_module(module), function)


def _names(specs) -> str:
    return " and ".join(f"'{spec.name}'" for spec in specs)


def check_arguments(
    spec: DatasetSpec, modalities, num_examples, fsdd_split, validation_speaker, validation_fraction
) -> tuple:
    """Refuses arguments ``spec`` does not take, before anything is read; returns the
    modalities to keep (``spec.default_modalities`` if ``modalities`` is None)."""
    if num_examples is not None and not spec.generated:
        generated = _names(s for s in CATALOG if s.generated)
        raise ValueError(
            f"`num_examples` applies to the generated {generated} set, not {spec.name!r}."
        )
    with_speakers = [s for s in CATALOG if s.speakers]
    if fsdd_split != "official" and not spec.speakers:
        raise ValueError(f"`fsdd_split` applies to {_names(with_speakers)}, not {spec.name!r}.")
    if validation_speaker is not None and (validation_fraction or not spec.speakers):
        raise ValueError(
            f"`validation_speaker` applies to {'/'.join(repr(s.name) for s in with_speakers)} "
            "without validation_fraction."
        )
    modalities = tuple(spec.default_modalities if modalities is None else modalities)
    unknown = [m for m in modalities if m not in spec.modalities]
    if unknown or not modalities:
        raise ValueError(f"{spec.name} has no modality {unknown}; it has {spec.modalities}.")
    return modalities


def read_splits(spec: DatasetSpec, root, seed, bad_log, num_examples=None, fsdd_split="official"):
    """Step 1: ``{split: {key: array}}`` from the dataset's reader."""
    options = {}
    if spec.generated:
        options["num_examples"] = num_examples
    if spec.speakers:
        options["fsdd_split"] = fsdd_split
    return _reader(spec)(root=root, seed=seed, bad_log=bad_log, **options)


def drop_bad_rows(splits, modalities, num_classes, bad_log) -> dict:
    """Bad rows (empty text, labels out of range, non-finite values...) raise or are dropped
    here, once, so that normalisation and the vocabulary see only good training rows."""
    out = {}
    for split, arrays in splits.items():
        *_, keep = validate_arrays(arrays, modalities, num_classes=num_classes, bad_log=bad_log)
        out[split] = arrays if keep.all() else {k: v[keep] for k, v in arrays.items()}
    return out


def _save_vocabulary(vectorizer, folder: Path, name: str) -> Path:
    """Writes the vocabulary to ``folder/<name>-<sha256 of content>-vocab.txt`` and returns
    the path.

    The name is content-addressed: two loads share a file only if their vocabularies are
    identical, so a later load (another root, size or seed) can never rewrite the file an
    earlier load's model, or its serving export, reads. The write is atomic
    (``kdzoo.files.atomic_file``); a file already there has this very content and is kept.
    """
    content = vectorizer.file_content().encode("utf-8")
    digest = hashlib.sha256(content).hexdigest()[:16]
    path = folder / f"{name}-{digest}-vocab.txt"
    if path.is_file() and path.read_bytes() == content:
        return path
    with atomic_file(path, "wb") as f:
        f.write(content)
    return path


def resolve_utterance_norm(spec: DatasetSpec, utterance_norm, fsdd_split) -> str:
    """The per-utterance normalisation ``load`` applies: ``utterance_norm`` (default
    ``spec.utterance_norm``), with ``"auto"`` resolved to ``"mean_var"`` when the test split
    is a held-out speaker and to ``"none"`` otherwise.

    Measured on validation only, with the scratch audio student (3 seeds,
    ``benchmarks/utterance_norm.py``): on voices unseen in training CMVN raised its accuracy
    from 0.585 to 0.629; on FSDD's official split, whose validation clips come from the
    training speakers, it lowered it from 0.993 to 0.968 (a single spoken word's mean
    spectrum is part of what says which word it is).
    """
    mode = spec.utterance_norm if utterance_norm is None else utterance_norm
    if mode not in (*UTTERANCE_NORMS, "auto"):
        raise ValueError(
            f"utterance_norm must be one of {(*UTTERANCE_NORMS, 'auto')}; got {mode!r}."
        )
    if mode == "auto":
        held_out = isinstance(fsdd_split, str) and fsdd_split.startswith("speaker:")
        return "mean_var" if held_out else "none"
    return mode


def fit_preprocessing(
    spec: DatasetSpec,
    train,
    modalities,
    normalize_audio=None,
    max_tokens=None,
    sequence_length=None,
    cache_dir=None,
    utterance_norm=None,
    fsdd_split="official",
) -> Preprocessing:
    """Step 3: the preprocessing learnt from the training split ``train`` only.

    Audio: the front end of ``spec`` with its per-utterance normalisation
    ``utterance_norm`` (default ``spec.utterance_norm``; ``"auto"`` is resolved for
    ``fsdd_split`` by ``resolve_utterance_norm``), and per-mel-bin statistics of
    ``train`` unless ``normalize_audio`` (default ``spec.normalize_audio``) is False.
    Image: the shape of ``train``'s images. Text: a vocabulary of ``max_tokens`` (default
    ``spec.max_tokens``) at ``sequence_length`` (default ``spec.sequence_length``), saved
    under ``cache_dir``.
    """
    audio_config = image_config = vectorizer = vocabulary_path = None
    if "audio" in modalities:
        audio_config = AudioConfig(
            sample_rate=spec.sample_rate,
            num_samples=spec.clip_samples,
            utterance_norm=resolve_utterance_norm(spec, utterance_norm, fsdd_split),
        )
        if spec.normalize_audio if normalize_audio is None else normalize_audio:
            audio_config = audio_config.with_normalization(train["audio"])
    if "image" in modalities:
        image_config = ImageConfig(*train["image"].shape[1:3], train["image"].shape[3])
    if "text" in modalities:
        vectorizer = TextVectorizer.adapt(
            train["text"], max_tokens or spec.max_tokens, sequence_length or spec.sequence_length
        )
        vocabulary_path = _save_vocabulary(vectorizer, cache_root(cache_dir), spec.name)
    return Preprocessing(audio_config, image_config, vectorizer, vocabulary_path)


def build_pipelines(
    spec: DatasetSpec, splits, modalities, preprocessing: Preprocessing, wanted, options
) -> LoadedDataset:
    """Step 4: a ``LoadedDataset`` with a pipeline for each split in ``wanted``.

    ``options`` are the ``from_arrays`` options every split shares (``batch_size``, ``seed``,
    ``drop_remainder``, ``augment``)."""
    missing = [s for s in wanted if s not in splits]
    if missing:
        raise ValueError(f"{spec.name} has no split(s) {missing}; it has {sorted(splits)}.")
    vocabulary_path = preprocessing.vocabulary_path
    data = LoadedDataset(
        name=spec.name,
        splits={},
        class_names=spec.class_names,
        input_specs={},
        audio_config=preprocessing.audio_config,
        num_examples={s: len(splits[s]["label"]) for s in wanted},
        image_config=preprocessing.image_config,
        text_vectorizer=preprocessing.text_vectorizer,
        vocabulary_path=None if vocabulary_path is None else str(vocabulary_path),
        tabular_config=preprocessing.tabular_config,
        modalities=modalities,
        arrays=splits,
        options=options,
    )
    for s in wanted:
        data.splits[s] = data.pipeline(s)
    element = next(iter(data.splits.values())).element_spec[0]
    data.input_specs = {
        m: tf.TensorSpec(element[m].shape[1:], element[m].dtype) for m in modalities
    }
    return data


def load(
    name,
    batch_size=DEFAULTS.batch_size,
    seed=DEFAULTS.seed,
    root=None,
    modalities=None,
    validation_fraction=0.0,
    drop_remainder=False,
    num_examples=None,
    *,
    split=None,
    augment: AugmentConfig | bool | None = None,
    normalize_audio=None,
    utterance_norm=None,
    skip_bad=False,
    max_tokens=None,
    sequence_length=None,
    cache_dir=None,
    fsdd_split="official",
    validation_speaker=None,
) -> LoadedDataset:
    """Loads dataset ``name`` (one of ``kdzoo.datasets.NAMES``) as batched pipelines plus
    metadata.

    Args:
        name: ``"av_digits"``, ``"embedded"``, ``"fsdd"``, ``"mnist"``, ``"sms_spam"`` or
            ``"sst2"`` (``kdzoo.datasets.catalog``).
        batch_size: batch size of every split. Defaults to ``DEFAULTS.batch_size`` (64).
        seed: pairing, splitting, shuffling and augmentation seed. Defaults to 0.
        root: data root; defaults to ``$KDZOO_DATA_DIR``, else ``~/.kdzoo/data``
            (``kdzoo.datasets.root.data_root``).
        modalities: keys to keep (default: the dataset's; the embedded set leaves out text).
        validation_fraction: carve this fraction of each class of the training split into
            ``"validation"`` (stratified, seeded), for tuning without touching test. Defaults to 0.
        drop_remainder: static batch shapes (TPU). Defaults to False.
        num_examples: size of the generated ``"embedded"`` set. Defaults to 5000.
        split: build only this split (or these splits); default all.
        augment: training-split augmentation, an ``AugmentConfig`` or ``True`` for the
            defaults. Defaults to none.
        normalize_audio: per-mel-bin normalisation with statistics of the training split
            (stored in ``audio_config``). Defaults to True, except for the embedded set.
        utterance_norm: per-utterance normalisation of the log-mel, ``"none"``, ``"mean"``
            or ``"mean_var"`` (``AudioConfig.utterance_norm``), or ``"auto"``:
            ``"mean_var"`` when ``fsdd_split`` holds a speaker out as test (unseen voices),
            ``"none"`` otherwise. Defaults to the dataset's: ``"auto"`` for ``"fsdd"`` and
            ``"av_digits"``, ``"none"`` for the embedded set.
        skip_bad: skip, count (``LoadedDataset.skipped``) and log bad examples instead of
            raising.
        max_tokens, sequence_length: text vocabulary size and padded length (the catalog's
            values for the dataset otherwise).
        cache_dir: where the vocabulary file is written (default ``cache_root()``). Its
            name holds a hash of its content, so loads never share a vocabulary file unless
            their vocabularies are identical.
        fsdd_split: ``"official"`` or ``"speaker:<name>"`` (leave one speaker out as test)
            for ``"fsdd"`` and ``"av_digits"``.
        validation_speaker: for ``"fsdd"``/``"av_digits"``, move this speaker's (or these
            speakers') training clips into ``"validation"`` (speaker-disjoint tuning when
            test is an unseen speaker). Exclusive with ``validation_fraction``.

    Example:

    >>> data = kdzoo.datasets.load("sst2", batch_size=32, split=["train", "test"])
    >>> x, y = next(iter(data.splits["train"]))   # x["text"]: int32 [32, 56]
    """
    spec = CATALOG.get(name)
    modalities = check_arguments(
        spec, modalities, num_examples, fsdd_split, validation_speaker, validation_fraction
    )
    utterance_norm = resolve_utterance_norm(spec, utterance_norm, fsdd_split)
    bad_log = BadInputLog(skip_bad)
    splits = read_splits(spec, root, seed, bad_log, num_examples, fsdd_split)
    splits = carve_validation(splits, name, seed, validation_fraction, validation_speaker)
    splits = drop_bad_rows(splits, modalities, len(spec.class_names), bad_log)
    bad_log.summarize(name)
    preprocessing = fit_preprocessing(
        spec,
        splits["train"],
        modalities,
        normalize_audio,
        max_tokens,
        sequence_length,
        cache_dir,
        utterance_norm,
        fsdd_split,
    )
    wanted = list(splits) if split is None else [split] if isinstance(split, str) else list(split)
    options = {
        "batch_size": batch_size,
        "seed": seed,
        "drop_remainder": drop_remainder,
        "augment": augment,
    }
    data = build_pipelines(spec, splits, modalities, preprocessing, wanted, options)
    data.skipped = bad_log.count
    return data

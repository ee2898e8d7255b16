"""Datasets from NumPy arrays, on every Keras backend: ``from_numpy`` and ``ArrayDataset``.

``kdzoo.datasets.load`` and the frame readers return a ``LoadedDataset`` of tf.data
pipelines, which need TensorFlow. ``from_numpy`` takes arrays that are already model-ready
(images scaled, text as token ids, spectrograms...) and returns an ``ArrayDataset``: the
same facts (splits, class names, task) with ``ArrayBatches`` instead of pipelines. The
recipe (``kdzoo.recipe.run``) trains on it on TensorFlow, JAX or PyTorch, without
TensorFlow installed.

This module also holds what both kinds share and what needs no TensorFlow: the names of
the transfer splits and the seeded, stratified validation carve.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kdzoo.defaults import DEFAULTS

#: The split of unlabelled examples a ``Distiller`` may train on (``with_transfer``).
TRANSFER = "transfer"
#: ``LoadedDataset.pipeline``'s name for the training rows followed by the transfer rows.
TRAIN_AND_TRANSFER = "train+transfer"


def stratified_holdout(labels, fraction, seed=DEFAULTS.seed) -> np.ndarray:
    """A boolean mask over ``labels`` holding out ``round(fraction * n_c)`` seeded-random rows
    of each class ``c`` (at least one of a class with two or more rows), so the held-out
    rows have the training split's class balance. Rows keep their order.

    Labels that are not class ids (regression targets, rows of multi-label 0/1 values) are
    held out at random: ``round(fraction * n)`` seeded rows (at least one, never all)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), bool)
    if labels.ndim > 1 or labels.dtype.kind == "f":
        count = min(max(int(round(len(labels) * fraction)), 1), len(labels) - 1)
        held[rng.permutation(len(labels))[:count]] = True
        return held
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        count = int(round(len(rows) * fraction))
        if len(rows) > 1:
            count = min(max(count, 1), len(rows) - 1)
        else:
            count = 0
        held[rng.permutation(rows)[:count]] = True
    return held


def carve_validation(splits, name, seed=DEFAULTS.seed, fraction=0.0, speaker=None) -> dict:
    """Step 2: moves part of ``"train"`` into ``"validation"``: the training rows of
    ``speaker`` (one name, or several: a validation set that spans more than one voice
    ranks models by more than one voice's quirks), or a stratified, seeded ``fraction`` of
    each class's rows (``stratified_holdout``)."""
    if speaker is not None:
        train = splits["train"]
        wanted = (speaker,) if isinstance(speaker, str) else tuple(speaker)
        present = {str(s) for s in train["speaker"]}
        missing = [s for s in wanted if s not in present]
        if missing or not wanted:
            raise ValueError(
                f"No training clips of speaker(s) {missing or list(wanted)!r}; training "
                f"speakers: {sorted(present)}."
            )
        if len(set(wanted)) == len(present):
            raise ValueError(
                f"validation_speaker {list(wanted)!r} would leave no training speaker; "
                f"training speakers: {sorted(present)}."
            )
        held = np.isin(train["speaker"], np.asarray(wanted))
        return {
            **splits,
            "validation": {k: v[held] for k, v in train.items()},
            "train": {k: v[~held] for k, v in train.items()},
        }
    if fraction:
        if "validation" in splits:
            raise ValueError(f"{name} has its own validation split; leave validation_fraction 0.")
        train = splits["train"]
        held = stratified_holdout(train["label"], fraction, seed)
        return {
            **splits,
            "validation": {k: v[held] for k, v in train.items()},
            "train": {k: v[~held] for k, v in train.items()},
        }
    return splits


def split_arrays(arrays, split, name) -> dict:
    """``arrays[split]``, or for ``"train+transfer"`` the training rows followed by the
    transfer rows; a ``KeyError`` names a split that ``arrays`` (of dataset ``name``) lacks."""
    if split == TRAIN_AND_TRANSFER and TRANSFER in arrays:
        train, transfer = arrays["train"], arrays[TRANSFER]
        return {k: np.concatenate([train[k], transfer[k]]) for k in transfer}
    if split not in arrays:
        raise KeyError(f"{name} has no split {split!r}; it has {sorted(arrays)}.")
    return arrays[split]


@dataclasses.dataclass
class ArrayDataset:
    """A dataset held as model-ready NumPy arrays (``from_numpy``): what the recipe reads
    from a ``LoadedDataset``, with ``ArrayBatches`` (any backend) instead of tf.data.

    Attributes:
        name: names the data in errors and reports.
        arrays: ``{split: {key: array, "label": labels}}``, one row per example.
        class_names: the classes, or a task's label or target names.
        task: a ``kdzoo.tasks.Task``; None is single-label classification.
        options: ``{"batch_size": int, "seed": int}``, the defaults of ``pipeline``.
    """

    name: str
    arrays: dict = dataclasses.field(repr=False)
    class_names: tuple = ()
    task: object = None
    options: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def modalities(self) -> tuple:
        """The feature keys (every key of the training arrays but ``"label"``)."""
        return tuple(k for k in self.arrays["train"] if k != "label")

    @property
    def num_examples(self) -> dict:
        return {split: len(rows["label"]) for split, rows in self.arrays.items()}

    @property
    def splits(self) -> dict:
        """``{split: pipeline(split)}``, like ``LoadedDataset.splits``."""
        return {split: self.pipeline(split) for split in self.arrays}

    def split_arrays(self, split) -> dict:
        """The arrays of ``split``: a key of ``arrays``, or ``"train+transfer"`` (the
        training rows followed by the unlabelled transfer rows)."""
        return split_arrays(self.arrays, split, self.name)

    def pipeline(self, split, training=None, extras=None, batch_size=None, seed=None):
        """``split``'s rows as ``ArrayBatches`` of ``({key: array}, labels)``.

        Args:
            split: a key of ``arrays``, or ``"train+transfer"``.
            training: one shuffled epoch without the last partial batch; else the rows in
                order, every one of them. Defaults to True for the training splits.
            extras: ``{key: array}`` riding in each row's features (e.g. cached teacher
                outputs under ``"teacher_outputs"``), one row per example.
            batch_size, seed: default to ``options``' (``DEFAULTS``' when absent).
        """
        from kdzoo.data.batches import ArrayBatches

        rows = self.split_arrays(split)
        if training is None:
            training = split in ("train", TRAIN_AND_TRANSFER)
        x = {k: v for k, v in rows.items() if k != "label"}
        x.update(extras or {})
        seed = seed if seed is not None else self.options.get("seed", DEFAULTS.seed)
        return ArrayBatches(
            x,
            rows["label"],
            batch_size=batch_size or self.options.get("batch_size", DEFAULTS.batch_size),
            seed=seed if training else None,
        )

    def model_shapes(self) -> dict:
        """``{"<key>_shape": shape of one row}`` for each feature key."""
        return {f"{k}_shape": tuple(self.arrays["train"][k].shape[1:]) for k in self.modalities}

    def with_validation(self, fraction=DEFAULTS.validation_fraction, seed=DEFAULTS.seed):
        """``self`` if it has a validation split, else a copy whose training split gives a
        stratified, seeded ``fraction`` of each class to ``"validation"``."""
        if "validation" in self.arrays:
            return self
        arrays = carve_validation(self.arrays, self.name, seed, fraction)
        return dataclasses.replace(self, arrays=arrays)


def _features(x, split, name, keys=None) -> dict:
    """``x`` checked: a dict of numeric arrays, one row per example, finite floats."""
    where = f"{name} {split}"
    if not isinstance(x, dict) or not x:
        raise TypeError(
            f"{where}: `x` must be a non-empty dict {{input name: array}} keyed by the models' "
            f"input names; got {type(x).__name__}."
        )
    if keys is not None and sorted(x) != sorted(keys):
        raise ValueError(
            f"{where}: keys {sorted(x)} differ from the training split's {sorted(keys)}."
        )
    out = {}
    for key, value in x.items():
        if not isinstance(key, str) or key == "label":
            raise ValueError(
                f"{where}: key {key!r} is not a model input name (a string, not 'label')."
            )
        value = np.asarray(value)
        if value.ndim < 1 or value.dtype.kind not in "biuf":
            raise TypeError(
                f"{where}: {key!r} must be a numeric array with one row per example (text as "
                f"token ids); got dtype {value.dtype}, shape {value.shape}."
            )
        if value.dtype.kind == "f":
            finite = np.isfinite(value.reshape(len(value), -1)).all(axis=1)
            if not finite.all():
                row = int(np.flatnonzero(~finite)[0])
                raise ValueError(
                    f"{where}: {key!r} row {row} holds NaN or inf ({int((~finite).sum())} such "
                    "rows)."
                )
        out[key] = value
    counts = {k: len(v) for k, v in out.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"{where}: the arrays need the same number of rows; got {counts}.")
    return out


def _class_ids(y, split, name, num_classes) -> np.ndarray:
    where = f"{name} {split} labels"
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise TypeError(
            f"{where}: need one integer class id per row; got dtype {labels.dtype}, shape "
            f"{labels.shape} (pass `task=` for binary, multi-label or regression labels)."
        )
    bad = labels < 0 if num_classes is None else (labels < 0) | (labels >= num_classes)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        top = "" if num_classes is None else f"..{num_classes - 1}"
        raise ValueError(
            f"{where}: row {row}: {labels[row]} is not a class id in 0{top} ({int(bad.sum())} "
            "bad rows)."
        )
    return labels.astype(np.int32)


def from_numpy(
    train,
    validation=None,
    test=None,
    *,
    transfer=None,
    class_names=None,
    task=None,
    name="arrays",
    batch_size=DEFAULTS.batch_size,
    seed=DEFAULTS.seed,
) -> ArrayDataset:
    """An ``ArrayDataset`` from model-ready arrays, for the recipe on any Keras backend.

    Args:
        train, validation, test: ``(x, y)`` pairs. ``x`` is ``{input name: array}`` with one
            row per example, keyed by the models' input names (the teacher's and the
            student's, e.g. ``{"image": images, "audio": spectrograms}``), numeric and
            finite. Memory-mapped arrays (``np.load(path, mmap_mode="r")``) stay on disk
            (batches are gathered by index) when ``validation`` is given: the validation
            carve and a transfer set copy the rows they select into memory.
            ``y`` holds the labels: class ids, or ``task``'s labels. Without ``validation``
            the recipe carves a stratified, seeded part of ``train``.
        transfer: ``x`` of unlabelled rows (the training keys) that distillation
            candidates also train on (``kdzoo.datasets.with_transfer``).
        class_names: the classes of single-label classification. Defaults to
            ``"0"..."K-1"``, ``K`` the largest class id in the given splits plus one.
        task: a ``kdzoo.tasks.Task`` for binary, multi-label or regression labels.
            Regression targets are given in their own units; a task without a
            standardisation gets one fitted on ``train`` (``Task.fit_normalisation``),
            as ``kdzoo.datasets.with_task`` does.
        name: names the data in errors and reports.
        batch_size, seed: ``pipeline``'s defaults.

    Returns:
        An ``ArrayDataset``.

    Raises:
        TypeError, ValueError: naming the split, key and first bad row: ``x`` not a dict of
            numeric arrays, a NaN or inf, rows of different lengths, keys that differ
            between splits, a label that is not a class id (or not ``task``'s).

    Example:

    >>> train, test = ({"image": x_train}, y_train), ({"image": x_test}, y_test)
    >>> data = kdzoo.datasets.from_numpy(train, test=test)
    >>> result = kdzoo.recipe.run(teacher, student, data)   # TensorFlow, JAX or PyTorch
    """
    given = {"train": train, "validation": validation, "test": test}
    given = {split: pair for split, pair in given.items() if pair is not None}
    for split, pair in given.items():
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise TypeError(f"{name} {split}: pass an (x, y) pair; got {type(pair).__name__}.")
    keys = None
    features = {}
    for split, (x, _) in given.items():
        features[split] = _features(x, split, name, keys)
        keys = keys or tuple(features[split])
    if task is not None and task.kind == "classification":
        class_names = class_names or tuple(task.names) or tuple(map(str, range(task.outputs)))
    arrays = {}
    if task is None or task.kind == "classification":
        top = None if class_names is None else len(class_names)
        labels = {s: _class_ids(y, s, name, top) for s, (_, y) in given.items()}
        if class_names is None:
            class_names = tuple(
                map(str, range(max(int(v.max(initial=-1)) for v in labels.values()) + 1))
            )
    else:
        labels = {s: task.check_labels(y, f"{name} {s} labels") for s, (_, y) in given.items()}
        if task.kind == "regression":
            if not task.target_mean:
                task = task.fit_normalisation(labels["train"])
            labels = {s: task.normalise(v) for s, v in labels.items()}
        class_names = tuple(task.names) or tuple(map(str, range(task.outputs)))
    for split in given:
        rows = len(next(iter(features[split].values())))
        if len(labels[split]) != rows:
            raise ValueError(
                f"{name} {split}: {rows} rows of features but {len(labels[split])} labels."
            )
        arrays[split] = {**features[split], "label": labels[split]}
    if transfer is not None:
        from kdzoo.labels import UNLABELLED

        rows = _features(transfer, TRANSFER, name, keys)
        n = len(next(iter(rows.values())))
        filler = np.full(n, UNLABELLED, np.int32) if task is None else task.unlabelled(n)
        arrays[TRANSFER] = {**rows, "label": filler}
    return ArrayDataset(
        name=name,
        arrays=arrays,
        class_names=tuple(class_names),
        task=task,
        options={"batch_size": int(batch_size), "seed": int(seed)},
    )

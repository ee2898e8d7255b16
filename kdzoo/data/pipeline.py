"""tf.data pipelines over in-memory arrays keyed by modality.

Order of operations::

    validate rows -> preprocess (batched map: decode/resize images, waveform -> normalised
    log-mel, text -> ids, table rows -> standardised numbers and one-hot categories)
    -> cache -> shuffle (training only, seeded, reshuffled per epoch)
    -> batch (optional drop_remainder for static shapes) -> augment (training only, seeded)
    -> prefetch(AUTOTUNE), tf.data's autotuning model off (``kdzoo.data.options``)

Deterministic preprocessing runs once and is cached; only shuffling, augmentation and
batching repeat each epoch. With waveform augmentation on, the cache holds fixed-length
waveforms and the log-mel front end runs after augmentation, each epoch.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from kdzoo.data.audio import AudioConfig, audio_features, fix_length
from kdzoo.data.augment import AugmentConfig, SpecAugment, WaveformAugment, image_augmenter
from kdzoo.data.bad_input import BadInputLog
from kdzoo.data.image import ImageConfig, preprocess_images
from kdzoo.data.options import finish
from kdzoo.labels import UNLABELLED

if TYPE_CHECKING:  # imported where a table is read: a run without one does not load it
    from kdzoo.data.tabular import TabularConfig

AUTOTUNE = tf.data.AUTOTUNE
_AUGMENTED = "_kdzoo_augmented"


def _text_array(values, bad_log):
    """Strings as a NumPy object array of ``str``; bad rows reported, their mask returned."""
    out = np.empty(len(values), dtype=object)
    ok = np.ones(len(values), dtype=bool)
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as err:
                bad_log.bad(
                    f"text row {i}", f"bytes are not valid UTF-8 ({err.reason})", "encoding"
                )
                ok[i] = False
                continue
        value = str(value)
        if not value.strip():
            bad_log.bad(f"text row {i}", "empty or whitespace-only text", "empty text")
            ok[i] = False
            continue
        out[i] = value
    return out, ok


def _task_label_problems(labels, task, unlabelled):
    """``(labels as the task trains on them, per-row problem or "")`` for a ``task`` other
    than single-label classification; rows without a label (``kdzoo.labels``) pass when
    ``unlabelled``."""
    labels = np.asarray(labels)
    if task.kind == "binary":
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        values = labels.astype(np.float64) if labels.ndim == 1 else None
        if values is None:
            raise ValueError(f"A binary task needs one label per row; got shape {labels.shape}.")
        bad = ~np.isin(values, (0.0, 1.0))
        if unlabelled:
            bad &= values != UNLABELLED
        return labels.astype(np.int32), np.where(bad, "not 0 or 1", "")
    width = task.outputs
    if labels.ndim == 1 and width == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[1] != width:
        raise ValueError(
            f"A {task.kind} task with {width} outputs needs rows of {width} values; got shape "
            f"{labels.shape}."
        )
    values = labels.astype(np.float64)
    if task.kind == "multi_label":
        bad = ~np.isin(values, (0.0, 1.0)).all(axis=1)
        if unlabelled:
            bad &= ~(values == UNLABELLED).all(axis=1)
        return values.astype(np.float32), np.where(bad, "not 0 or 1 in every label", "")
    bad = ~np.isfinite(values).all(axis=1)
    if unlabelled:
        bad &= ~np.isnan(values).all(axis=1)
    return values.astype(np.float32), np.where(bad, "not a finite number in every target", "")


def validate_arrays(
    arrays,
    modalities,
    *,
    label_key="label",
    num_classes=None,
    bad_log=None,
    unlabelled=False,
    task=None,
):
    """Checks arrays before they enter a pipeline.

    A missing key always raises ``KeyError`` naming it. Per row: a label outside
    ``[0, num_classes)`` (``kdzoo.labels.UNLABELLED`` is kept when ``unlabelled``), empty or
    non-UTF-8 text, or non-finite audio/image values is reported to ``bad_log`` (which
    raises, or skips and counts with ``skip_bad``). Returns the kept rows as
    ``(features, labels)``.

    With a ``kdzoo.tasks.Task`` other than single-label classification the labels are that
    task's (``Task.check_labels``): 0/1 (binary), rows of ``L`` 0/1 values (multi-label) or
    of ``T`` finite numbers (regression, in the units the model learns); a row that is not
    is a bad row, and ``unlabelled`` keeps the task's unlabelled rows (``kdzoo.labels``).
    """
    bad_log = bad_log or BadInputLog()
    modalities = tuple(modalities)
    missing = [k for k in (*modalities, label_key) if k not in arrays]
    if missing:
        raise KeyError(
            f"Arrays lack modality/label key(s) {missing}; they hold {sorted(arrays)} "
            f"(expected {list(modalities)} and {label_key!r})."
        )
    labels = np.asarray(arrays[label_key])
    n = len(labels)
    bad = [m for m in modalities if len(arrays[m]) != n]
    if bad:
        raise ValueError(f"Key(s) {bad} have a different number of rows than {label_key!r} ({n}).")
    keep = np.ones(n, dtype=bool)
    classifies = task is None or task.kind == "classification"
    if not classifies:
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype.kind in "fb"):
            raise TypeError(f"{label_key!r} must hold numbers; got dtype {labels.dtype}.")
        given = labels
        try:
            labels, problems = _task_label_problems(labels, task, unlabelled)
        except ValueError as err:
            raise ValueError(f"{label_key!r}: {err}") from None
        for i in np.flatnonzero(problems != ""):
            bad_log.bad(f"row {i}", f"label {given[i].tolist()} is {problems[i]}", "label")
            keep[i] = False
    elif not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{label_key!r} must hold integer class ids; got dtype {labels.dtype}.")
    if classifies and num_classes is not None:
        outside = (labels < 0) | (labels >= num_classes)
        if unlabelled:
            outside &= labels != UNLABELLED
        for i in np.flatnonzero(outside):
            bad_log.bad(f"row {i}", f"label {labels[i]} is outside 0..{num_classes - 1}", "label")
            keep[i] = False
    features = {}
    for m in modalities:
        value = arrays[m]
        if m == "text":
            value, ok = _text_array(value, bad_log)
            keep &= ok
        else:
            value = np.asarray(value)
            if value.dtype.kind == "f":
                finite = np.isfinite(value.reshape(n, -1)).all(axis=1)
                for i in np.flatnonzero(~finite & keep):
                    bad_log.bad(f"{m} row {i}", "non-finite values (NaN or inf)", "non-finite")
                keep &= finite
        features[m] = value
    if not keep.all():
        features = {m: v[keep] for m, v in features.items()}
        labels = labels[keep]
    if not len(labels):
        raise ValueError("No examples left to build a pipeline from.")
    if "text" in features:
        features["text"] = features["text"].astype(str)
    return features, labels.astype(np.int32) if classifies else labels, keep


def is_augmented(dataset: tf.data.Dataset) -> bool:
    """True if ``dataset`` or any dataset it was built from applies kdzoo augmentation."""
    return any(getattr(d, _AUGMENTED, False) for d in _chain(dataset))


def is_shuffled(dataset: tf.data.Dataset) -> bool:
    """True if a shuffle is anywhere in ``dataset``'s chain of transformations."""
    return any("Shuffle" in type(d).__name__ for d in _chain(dataset))


def _chain(dataset):
    stack, seen = [dataset], set()
    while stack:
        d = stack.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        yield d
        # Source datasets (from_tensor_slices, TFRecord...) have no inputs to walk.
        with contextlib.suppress(AttributeError, NotImplementedError):
            stack.extend(d._inputs())


def from_arrays(
    arrays,
    modalities,
    *,
    batch_size=64,
    training=False,
    seed=0,
    audio_config: AudioConfig | None = None,
    image_config: ImageConfig | None = None,
    text_vectorizer=None,
    tabular_config: TabularConfig | None = None,
    drop_remainder=False,
    label_key="label",
    augment: AugmentConfig | bool | None = None,
    num_classes=None,
    skip_bad=False,
    bad_log: BadInputLog | None = None,
    extras=None,
    unlabelled=False,
    task=None,
):
    """Builds ``(features, label)`` batches with ``features = {modality: tensor}``.

    Args:
        arrays: dict of NumPy arrays, one row per example; must hold each modality and
            ``label_key``. ``"audio"``: float waveforms ``[n, samples]`` at
            ``audio_config.sample_rate``; ``"text"``: strings (or UTF-8 bytes); ``"image"``:
            encoded image bytes, uint8 or float ``[n, H, W(, C)]`` arrays; ``"tabular"``:
            float ``[n, columns]`` rows made by ``TabularConfig.encode``.
        modalities: keys to keep, e.g. ``("image", "audio")``.
        batch_size: batch size. Defaults to 64.
        training: shuffle (seeded, reshuffled each epoch) and augment, if True.
        seed: shuffle and augmentation seed. Defaults to 0.
        audio_config: the audio front end; needed for ``"audio"``.
        image_config: the image front end; defaults to the arrays' own size (needed for
            encoded bytes).
        text_vectorizer: a ``kdzoo.data.TextVectorizer``; needed for ``"text"``.
        tabular_config: a ``kdzoo.data.TabularConfig``; needed for ``"tabular"``.
        drop_remainder: drop the last partial batch (static shapes, as TPUs need).
        label_key: the key of ``arrays`` that holds the labels. Defaults to ``"label"``.
        augment: an ``AugmentConfig`` (``True`` for the defaults); applied on training
            pipelines only.
        num_classes: if given, labels outside ``[0, num_classes)`` are bad rows.
        unlabelled: keep rows labelled ``kdzoo.labels.UNLABELLED`` (-1): rows without a
            label, for a ``Distiller`` (its teacher terms train on them). Defaults to False.
        skip_bad: skip, count and log bad rows instead of raising.
        bad_log: a ``BadInputLog`` to report to (overrides ``skip_bad``).
        extras: more per-row values that ride in each example's features, shuffled with
            their rows and never preprocessed: ``{key: array}``, an array possibly a dict of
            arrays, each with one row per row of ``arrays``, in the same order (rows dropped
            as bad are dropped from them too). E.g. cached teacher outputs:
            ``extras=kdzoo.distillation.with_teacher_outputs(cache, arrays["label"])``.
        task: a ``kdzoo.tasks.Task``; None is single-label classification. Another kind's
            labels are checked and fed as that task trains on them (``validate_arrays``):
            int32 0/1 (binary), float32 rows (multi-label, regression).
    """
    modalities = tuple(modalities)
    if "audio" in modalities and audio_config is None:
        raise ValueError("`audio_config` is required for the 'audio' modality.")
    if "text" in modalities and text_vectorizer is None:
        raise ValueError("`text_vectorizer` is required for the 'text' modality.")
    if "tabular" in modalities:
        if tabular_config is None:
            raise ValueError("`tabular_config` is required for the 'tabular' modality.")
        from kdzoo.data.tabular import tabular_features
    if augment is True:
        augment = AugmentConfig()
    augment = augment if (training and augment) else None
    bad_log = bad_log or BadInputLog(skip_bad)
    features, labels, keep = validate_arrays(
        arrays,
        modalities,
        label_key=label_key,
        num_classes=num_classes,
        bad_log=bad_log,
        unlabelled=unlabelled,
        task=task,
    )
    features.update(_extra_rows(extras, keep, modalities))
    n = len(labels)
    if "image" in modalities and image_config is None:
        image = features["image"]
        if image.dtype.kind in "OSU":
            raise ValueError("`image_config` is required for encoded image bytes.")
        image_config = ImageConfig(*image.shape[1:3], image.shape[3] if image.ndim == 4 else 1)
    wave_augment = augment is not None and "audio" in modalities and augment.waveform

    def preprocess(x, y):
        out = dict(x)
        if "image" in out:
            out["image"] = preprocess_images(out["image"], image_config)
        if "audio" in out:
            if wave_augment:  # features are computed after augmentation, per epoch
                out["audio"] = fix_length(
                    tf.cast(out["audio"], tf.float32), audio_config.num_samples
                )
            else:
                out["audio"] = audio_features(out["audio"], audio_config)
        if "text" in out:
            out["text"] = text_vectorizer(out["text"])
        if "tabular" in out:
            out["tabular"] = tabular_features(out["tabular"], tabular_config)
        return out, y

    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    ds = ds.batch(256).map(preprocess, num_parallel_calls=AUTOTUNE).unbatch()
    # unbatch() forgets the length; restoring it lets Keras and schedules know steps/epoch.
    ds = ds.apply(tf.data.experimental.assert_cardinality(n)).cache()
    if training:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment is not None:
        ds = _augment(ds, augment, modalities, audio_config, seed)
    return finish(ds)


def _extra_rows(extras, keep, modalities):
    """``extras`` checked (one row per row of the arrays) and reduced to the ``keep`` rows."""
    out = {}
    for key, value in (extras or {}).items():
        if key in modalities:
            raise ValueError(f"`extras` key {key!r} is also a modality; pick another name.")
        parts = value if isinstance(value, dict) else {None: value}
        kept = {}
        for name, rows in parts.items():
            rows = np.asarray(rows)
            if len(rows) != len(keep):
                where = key if name is None else f"{key}[{name!r}]"
                raise ValueError(
                    f"`extras` {where} has {len(rows)} rows but the arrays have {len(keep)}."
                )
            kept[name] = rows if keep.all() else rows[keep]
        out[key] = kept[None] if None in kept else kept
    return out


def _augment(ds, config: AugmentConfig, modalities, audio_config, seed):
    """Adds the training-time augmentation maps to batched ``ds``.

    Images go through Keras preprocessing layers, which draw from stateful seed generators:
    that map runs sequentially so the draws keep their order (deterministic). Audio is
    augmented with stateless ops keyed by one seed per batch from a seeded
    ``Dataset.random`` (new values each epoch), so its map runs in parallel and is still
    deterministic.
    """
    if "image" in modalities:
        image_aug = image_augmenter(config, seed)
        if image_aug.layers:

            def augment_images(x, y):
                # Layer by layer: each random layer runs its TensorFlow ops inside tf.data
                # whatever the Keras backend; a Sequential of them would call the backend's.
                image = x["image"]
                for layer in image_aug.layers:
                    image = layer(image, training=True)
                return {**x, "image": image}, y

            ds = ds.map(augment_images)
    if "audio" in modalities:
        spec_aug = SpecAugment(
            config.freq_mask, config.time_mask, config.num_freq_masks, config.num_time_masks
        )
        if config.waveform:  # the cache holds waveforms; features are made after augmenting
            max_shift = int(config.shift_fraction * audio_config.num_samples)
            wave_aug = WaveformAugment(config.noise_stddev, config.gain_db, max_shift)

        def augment_audio(batch, batch_seed):
            (x, y), seeds = batch, tf.random.experimental.stateless_split(batch_seed, 2)
            feats = x["audio"]
            if config.waveform:
                waves = wave_aug(feats, training=True, seed=seeds[0])
                feats = audio_features(waves, audio_config)
            return {**x, "audio": spec_aug(feats, training=True, seed=seeds[1])}, y

        seeds = tf.data.Dataset.random(seed=seed + 7, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(augment_audio, num_parallel_calls=AUTOTUNE)
    setattr(ds, _AUGMENTED, True)
    return ds

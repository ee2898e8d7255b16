"""``kdzoo.datasets.load(name, ...)``: ready tf.data pipelines plus metadata."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from kdzoo.data import AudioConfig, from_arrays

DIGITS = tuple(str(d) for d in range(10))


@dataclasses.dataclass
class LoadedDataset:
    """Pipelines yielding ``({modality: tensor}, label)`` and what a model needs to match."""

    name: str
    splits: dict  # split name -> tf.data.Dataset
    class_names: tuple
    input_specs: dict  # modality -> tf.TensorSpec of one example
    audio_config: AudioConfig | None
    num_examples: dict  # split name -> count

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _arrays(name, seed, root, num_examples):
    if name == "embedded":
        from kdzoo.datasets import embedded

        arrays = embedded.generate(num_examples or 5000, seed=seed)
        return embedded.split(arrays), ("image", "audio", "text"), AudioConfig.embedded()
    if num_examples is not None:
        raise ValueError(f"`num_examples` applies to the generated 'embedded' set, not {name!r}.")
    if name == "av_digits":
        from kdzoo.datasets import av_digits

        return av_digits.load_arrays(seed=seed, root=root), ("image", "audio"), AudioConfig()
    if name == "fsdd":
        from kdzoo.datasets import fsdd

        return fsdd.load_arrays(root=root), ("audio",), AudioConfig()
    if name == "mnist":
        from kdzoo.datasets import mnist

        return {s: mnist.load_arrays(s, root=root) for s in ("train", "test")}, ("image",), None
    raise ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join(NAMES)}.")


NAMES = ("av_digits", "embedded", "fsdd", "mnist")


def load(
    name,
    batch_size=64,
    seed=0,
    root=None,
    modalities=None,
    validation_fraction=0.0,
    drop_remainder=False,
    num_examples=None,
) -> LoadedDataset:
    """Loads dataset ``name`` (one of ``NAMES``) as batched pipelines.

    Args:
        name: ``"av_digits"``, ``"embedded"``, ``"fsdd"`` or ``"mnist"``.
        batch_size: batch size of every split. Defaults to 64.
        seed: pairing and shuffling seed. Defaults to 0.
        root: data root; defaults to ``$KDZOO_DATA_DIR`` (see ``kdzoo.datasets.root``).
        modalities: keys to keep (default: all of the dataset's, text excluded for the
            embedded set, which then needs a vectoriser).
        validation_fraction: carve this fraction of the (seed-shuffled) training split into
            ``"validation"``, for tuning without touching test. Defaults to 0.
        drop_remainder: static batch shapes (TPU). Defaults to False.
        num_examples: size of the generated ``"embedded"`` set. Defaults to 5000.
    """
    splits, available, audio_config = _arrays(name, seed, root, num_examples)
    if modalities is None:
        modalities = tuple(m for m in available if m != "text")
    unknown = [m for m in modalities if m not in available]
    if unknown:
        raise ValueError(f"{name} has no modality {unknown}; it has {available}.")
    if validation_fraction:
        train = splits["train"]
        order = np.random.default_rng(seed).permutation(len(train["label"]))
        n_val = int(round(len(order) * validation_fraction))
        splits = {
            **splits,
            "validation": {k: v[order[:n_val]] for k, v in train.items()},
            "train": {k: v[order[n_val:]] for k, v in train.items()},
        }
    pipelines = {
        split: from_arrays(
            arrays,
            modalities,
            batch_size=batch_size,
            training=split == "train",
            seed=seed,
            audio_config=audio_config,
            drop_remainder=drop_remainder,
        )
        for split, arrays in splits.items()
    }
    specs = {
        m: tf.TensorSpec(spec.shape[1:], spec.dtype)
        for m, spec in pipelines["train"].element_spec[0].items()
    }
    return LoadedDataset(
        name=name,
        splits=pipelines,
        class_names=DIGITS,
        input_specs=specs,
        audio_config=audio_config if "audio" in modalities else None,
        num_examples={s: len(a["label"]) for s, a in splits.items()},
    )

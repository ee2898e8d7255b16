"""The privileged-information study (``kdzoo bench privileged``): the degraded students see
only their degraded view, table arithmetic, and a tiny end-to-end run."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kdzoo.privileged import (
    LOWPASS_BINS,
    PAIRINGS,
    PrivilegedConfig,
    command,
    degraded_student,
    goals,
    markdown,
    run,
    summarize,
)


@dataclasses.dataclass
class _Data:  # what degraded_student reads of a LoadedDataset
    shapes: dict
    num_classes: int = 10

    def model_shapes(self):
        return self.shapes


def test_the_thumbnail_student_cannot_tell_images_with_the_same_4x4_means():
    student = degraded_student(PAIRINGS["mnist-thumbnail"], _Data({"image_shape": (28, 28, 1)}))
    rng = np.random.default_rng(0)
    a = rng.random((2, 28, 28, 1)).astype("float32")
    # Move mass inside each 4x4 block: the block means, so the thumbnail, stay the same.
    b = a.copy()
    b[:, 0::4, 0::4] += 0.5
    b[:, 1::4, 1::4] -= 0.5

    def logits(x):
        return np.asarray(student({"image": x}))

    np.testing.assert_allclose(logits(a), logits(b), atol=1e-5)
    assert [t.name for t in student.inputs] == ["image"]
    c = a.copy()
    c[:, :4, :4] += 1.0  # a different block mean is seen
    assert np.abs(logits(c) - logits(a)).max() > 1e-4


def test_the_lowpass_student_ignores_the_high_mel_bins():
    student = degraded_student(PAIRINGS["fsdd-lowpass"], _Data({"audio_shape": (61, 32)}))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 61, 32)).astype("float32")
    b = a.copy()
    b[..., LOWPASS_BINS:] = rng.standard_normal(b[..., LOWPASS_BINS:].shape)

    def logits(x):
        return np.asarray(student({"audio": x}))

    np.testing.assert_allclose(logits(a), logits(b), atol=1e-5)
    c = a.copy()
    c[..., 0] += 1.0
    assert np.abs(logits(c) - logits(a)).max() > 1e-4


def test_the_student_saves_and_loads_without_lambda_layers(tmp_path):
    import keras

    student = degraded_student(PAIRINGS["fsdd-lowpass"], _Data({"audio_shape": (61, 32)}))
    student.save(tmp_path / "s.keras")
    loaded = keras.saving.load_model(tmp_path / "s.keras", safe_mode=True)
    x = {"audio": np.ones((1, 61, 32), "float32")}
    np.testing.assert_allclose(loaded(x), student(x), atol=1e-6)


def test_few_labels_keeps_k_per_class_and_validates_on_a_fifth_of_them():
    from kdzoo import datasets
    from kdzoo.privileged import few_labels

    data = datasets.load(
        "embedded", batch_size=16, seed=0, modalities=("audio",), num_examples=300,
        validation_fraction=0.2,
    )  # fmt: skip
    few = few_labels(data, 5, seed=3)
    assert set(few.arrays) == {"train", "validation", "test"} == set(few.splits)
    labels = np.concatenate([few.arrays[s]["label"] for s in ("train", "validation")])
    assert np.bincount(labels, minlength=data.num_classes).tolist() == [5] * data.num_classes
    assert np.bincount(few.arrays["validation"]["label"]).tolist() == [1] * data.num_classes
    assert few.num_examples == {"train": 4 * data.num_classes, "validation": data.num_classes,
                                "test": data.num_examples["test"]}  # fmt: skip
    # Every kept example is a training example of `data`; the test split is untouched.
    train = data.arrays["train"]["audio"].reshape(len(data.arrays["train"]["label"]), -1)
    for split in ("train", "validation"):
        for row in few.arrays[split]["audio"].reshape(len(few.arrays[split]["label"]), -1):
            assert (train == row).all(axis=1).any()
    np.testing.assert_array_equal(few.arrays["test"]["label"], data.arrays["test"]["label"])
    again = few_labels(data, 5, seed=3)
    np.testing.assert_array_equal(again.arrays["train"]["label"], few.arrays["train"]["label"])
    # With unlabelled=True the same labelled rows, and every other training row unlabelled.
    kept = few_labels(data, 5, seed=3, unlabelled=True)
    np.testing.assert_array_equal(kept.arrays["train"]["label"], few.arrays["train"]["label"])
    transfer = kept.arrays[datasets.TRANSFER]["audio"]
    assert len(transfer) == len(train) - 5 * data.num_classes
    assert kept.num_examples[datasets.TRANSFER] == len(transfer)


def _per_seed():
    rows = [
        ("mnist-thumbnail", "teacher (full view)", 0, 0.99),
        ("mnist-thumbnail", "scratch (degraded view)", 0, 0.90),
        ("mnist-thumbnail", "distilled (degraded view, the recipe's choice)", 0, 0.93),
        ("mnist-thumbnail", "scratch (degraded view)", 1, 0.92),
        ("mnist-thumbnail", "distilled (degraded view, the recipe's choice)", 1, 0.93),
        ("fsdd-lowpass", "scratch (degraded view)", 0, 0.80),
        ("fsdd-lowpass", "distilled (degraded view, the recipe's choice)", 0, 0.81),
    ]
    frame = pd.DataFrame(rows, columns=["pairing", "model", "seed", "test_accuracy"])
    return frame.assign(degradation="d", command="kdzoo bench privileged --seeds 0 1")


def test_goals_per_pairing():
    checked = goals(summarize(_per_seed())).set_index("pairing")
    assert checked.at["mnist-thumbnail", "gap_points"] == pytest.approx(2.0)
    assert checked.at["mnist-thumbnail", "met"]
    assert checked.at["fsdd-lowpass", "gap_points"] == pytest.approx(1.0)
    assert not checked.at["fsdd-lowpass", "met"]
    text = markdown(_per_seed())
    assert "- fsdd-lowpass: distilled − scratch ≥ 2 points: +1.0 points, **not met**." in text


def test_the_command_replays_the_config():
    config = PrivilegedConfig(pairings=("fsdd-lowpass",), seeds=(0,), epochs=2)
    assert command(config) == "kdzoo bench privileged --seeds 0 --datasets fsdd-lowpass --epochs 2"
    from kdzoo.verify import rerun_command

    assert rerun_command(command(PrivilegedConfig()), 1) == "kdzoo bench privileged --seeds 1"


@pytest.mark.slow  # about a minute on 2 cores
@pytest.mark.requires_data("fsdd")
def test_the_study_runs_end_to_end_at_tiny_size(tmp_path):
    config = PrivilegedConfig(
        pairings=("fsdd-lowpass", "fsdd-lowpass-50", "fsdd-lowpass-50-unlabelled"),
        seeds=(0, 1),
        teacher_epochs=1,
        epochs=1,
        out_dir=str(tmp_path),
        tiny=True,
    )
    per_seed, _ = run(config)
    assert list(per_seed["model"].str.split(" ").str[0]) == 3 * [
        "teacher",
        "scratch",
        "distilled",
        "scratch",
        "distilled",
    ]
    few = per_seed[per_seed["pairing"] == "fsdd-lowpass-50"]
    assert (few["train_examples"] == 40).all()  # 5 per class at tiny size, 1 validates
    # With the other 46 training clips unlabelled: the teacher and scratch learn from the
    # 40 labelled ones, a distillation candidate from all 86.
    more = per_seed[per_seed["pairing"] == "fsdd-lowpass-50-unlabelled"]
    distilled = more["model"].str.startswith("distilled")
    kd = distilled & ~more["setting"].str.startswith("scratch")
    assert (more.loc[~kd, "train_examples"] == 40).all()
    assert (more.loc[kd, "train_examples"] == 86).all()
    assert per_seed["test_accuracy"].between(0, 1).all()
    assert not per_seed.duplicated(["dataset", "seed", "model"]).any()
    text = (tmp_path / "privileged.md").read_text()
    assert "## Goal G4" in text and "## The recipe's choice per seed" in text
    assert (tmp_path / "privileged.png").stat().st_size > 0
    # Each distilled row records the recipe's validation evidence, and its choice follows
    # the one-standard-error rule; the other rows record none.
    distilled = per_seed["model"].str.startswith("distilled")
    assert per_seed.loc[~distilled, "validation_gain"].isna().all()
    chosen = per_seed[distilled]
    assert chosen["validation_se"].ge(0).all()
    kd = ~chosen["setting"].str.startswith("scratch")
    clear = (chosen["validation_gain"] > 0) & (chosen["validation_gain"] > chosen["validation_se"])
    assert kd.tolist() == clear.tolist()

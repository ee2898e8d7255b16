"""The fused-teacher study (``kdzoo bench fusion-strong-teacher``): the warm-started
teacher's keep-or-restore rule, the modality report, the goals' arithmetic, and a tiny
end-to-end run."""

import dataclasses

import keras
import numpy as np
import pandas as pd
import pytest

from kdzoo import fusion_strong_teacher as fst
from kdzoo import models
from kdzoo.fusion_strong_teacher import (
    DISTILLED_ROW,
    FUSED_END_TO_END,
    FUSED_PRODUCT,
    FUSED_WARM,
    SCRATCH_ROW,
    WARM_DISTILLED_ROW,
    WARM_SCRATCH_ROW,
    FusionTeacherConfig,
    command,
    goals,
    markdown,
    run,
    summarize,
)

IMAGE, AUDIO = (12, 12, 1), (16, 8)


@dataclasses.dataclass
class _Data:  # what warm_started_teacher reads of a LoadedDataset
    num_classes: int = 4


def _singles():
    # The teacher presets: both have a hidden layer named "hidden", as the fused head does.
    keras.utils.set_random_seed(0)
    return {
        "image": models.build("image_cnn", "teacher", 4, image_shape=IMAGE, filters=(4, 8)),
        "audio": models.build("audio_crnn", "teacher", 4, audio_shape=AUDIO),
    }


@pytest.mark.parametrize(("accuracies", "kept"), [((0.5, 0.4), False), ((0.5, 0.5), True)])
def test_fine_tuning_is_kept_only_when_validation_does_not_drop(monkeypatch, accuracies, kept):
    calls, weights = [], []

    def train_phase(model, data, **options):
        calls.append(options.get("learning_rate"))
        trainable = [v.path.split("/")[0] for v in model.trainable_weights]
        if len(calls) == 1:  # the head alone: the encoders are frozen
            assert trainable == ["hidden", "hidden", "logits", "logits"]
        else:  # fine-tuning: everything moves
            assert {"image_block0_conv", "audio_block0_conv"} <= set(trainable)
        for v in model.trainable_weights:
            v.assign(v + 0.5 * len(calls))
        weights.append([(v, v.numpy().copy()) for v in model.weights])

    scores = iter(accuracies)
    monkeypatch.setattr(fst, "train_phase", train_phase)
    monkeypatch.setattr(fst, "_accuracy", lambda model, data, split: next(scores))
    fused, info = fst.warm_started_teacher(_singles(), _Data(), epochs=1, seed=0, batch_size=8)
    assert calls == [None, pytest.approx(fst.DEFAULTS.learning_rate * fst.FINE_TUNE_RATE)]
    assert info == {
        "head_only_validation": accuracies[0],
        "fine_tuned_validation": accuracies[1],
        "fine_tuned": kept,
    }
    paths = [v.path for v in fused.weights]
    assert len(set(paths)) < len(paths)  # names repeat: only the variables tell them apart
    for v, value in weights[1 if kept else 0]:
        np.testing.assert_array_equal(v.numpy(), value)


def _per_seed():
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        rows += [
            (seed, "teacher (image alone)", 100, 0.97 + shift, np.nan, np.nan, None),
            (seed, "teacher (audio alone)", 300, 0.60 + shift, np.nan, np.nan, None),
            (seed, FUSED_END_TO_END, 350, 0.96 + shift, 0.55, 0.95, seed == 1),
            (seed, FUSED_WARM, 420, 0.99 + shift, 0.60, 0.97, seed == 0),
            (seed, SCRATCH_ROW, 40, 0.95 + shift, 0.50, 0.94, seed == 1),
            (seed, DISTILLED_ROW, 40, 0.975 + shift, 0.52, 0.96, seed == 1),
            (seed, WARM_SCRATCH_ROW, 40, 0.96 + shift, 0.50, 0.94, seed == 0),
            (seed, WARM_DISTILLED_ROW, 40, 0.98 - shift / 2, 0.52, 0.96, seed == 0),
        ]
    columns = [
        "seed",
        "model",
        "params",
        "test_accuracy",
        "test_accuracy_without_image",
        "test_accuracy_without_audio",
        "chosen",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(
        dataset="av_digits",
        command="kdzoo bench fusion-strong-teacher",
        validation_accuracy=frame["test_accuracy"],
    )


def test_the_goals_use_the_teacher_and_the_student_chosen_each_seed():
    checked = goals(_per_seed())
    # Teachers chosen: warm 0.99 (seed 0), end to end 0.98 (seed 1); best single: image 0.98.
    assert checked["teacher"] == pytest.approx(0.985)
    assert checked["best_single"] == pytest.approx(0.98)
    assert checked["teacher_gap"] == pytest.approx(0.5)
    assert not checked["teacher_met"]
    # Students chosen: warm 0.98 (seed 0), untrained start 0.995 (seed 1); their twins
    # 0.96 and 0.97.
    assert checked["student_gap"] == pytest.approx(100 * (0.985 - 0.9875))
    assert checked["over_scratch"] == pytest.approx(100 * (0.9875 - 0.965))
    assert checked["size_ratio"] == pytest.approx(40 / 385)
    assert checked["student_met"]
    # The best single modality is the one validation prefers, whatever test says.
    rows = _per_seed()
    rows.loc[rows["model"] == "teacher (audio alone)", "validation_accuracy"] = 0.99
    assert goals(rows)["best_single"] == pytest.approx(0.61)
    summary = summarize(_per_seed()).set_index("model")
    assert summary.at[FUSED_WARM, "chosen_seeds"] == 1
    assert summary.at[WARM_DISTILLED_ROW, "chosen_seeds"] == 1
    assert summary.at[SCRATCH_ROW, "test_accuracy_without_image_mean"] == pytest.approx(0.5)
    text = markdown(_per_seed())
    assert "+0.5 points (headroom above the best single modality: 2.0 points), **not met**" in (
        text
    )
    assert "| teacher (image alone) | 100 | 0.9800 ± 0.0141 | – | – | – |" in text
    assert f"| {WARM_SCRATCH_ROW} | 40 | 0.9700 ± 0.0141 | 0.5000 ± 0.0000 |" in text


def test_the_command_replays_the_config():
    config = FusionTeacherConfig(seeds=(0,), epochs=2)
    assert command(config) == "kdzoo bench fusion-strong-teacher --seeds 0 --epochs 2"
    from kdzoo.verify import rerun_command

    assert (
        rerun_command(command(FusionTeacherConfig()), 1)
        == "kdzoo bench fusion-strong-teacher --seeds 1"
    )


@pytest.mark.slow  # about a minute on 2 cores
@pytest.mark.requires_data("fsdd", "mnist")
def test_the_study_runs_end_to_end_at_tiny_size(tmp_path):
    config = FusionTeacherConfig(seeds=(0,), teacher_epochs=1, epochs=1, out_dir=str(tmp_path))
    config.tiny = True
    per_seed, summary = run(config)
    assert list(per_seed["model"]) == [
        "teacher (image alone)",
        "teacher (audio alone)",
        FUSED_END_TO_END,
        FUSED_WARM,
        FUSED_PRODUCT,
        SCRATCH_ROW,
        DISTILLED_ROW,
        WARM_SCRATCH_ROW,
        WARM_DISTILLED_ROW,
    ]
    assert per_seed["test_accuracy"].between(0, 1).all()
    fused = per_seed[per_seed["model"].str.contains("fused")]
    assert fused["test_accuracy_without_image"].between(0, 1).all()
    # One fused teacher, and one student start (its scratch and distilled rows).
    assert per_seed["chosen"].eq(True).sum() == 3
    assert set(summary["model"]) == set(per_seed["model"])
    for suffix in ("csv", "md", "png"):
        assert (tmp_path / f"fusion-strong-teacher.{suffix}").stat().st_size > 0
    text = (tmp_path / "fusion-strong-teacher.md").read_text()
    assert "## Goal G2" in text and "## The recipe's choice per seed" in text
    students = per_seed["model"].isin([DISTILLED_ROW, WARM_DISTILLED_ROW])
    assert per_seed.loc[students, "validation_se"].ge(0).all()
    assert per_seed.loc[~students, "validation_gain"].isna().all()


def test_the_modality_report_zeroes_one_input_at_a_time():
    import tensorflow as tf

    from kdzoo.fusion_strong_teacher import modality_report

    # Logits = the image's 4 pixel sums as class scores, plus 10x the audio's: with both
    # inputs the audio decides, with the audio zeroed the image does.
    image = keras.Input((2, 2, 1), name="image")
    audio = keras.Input((4,), name="audio")
    flat = keras.layers.Reshape((4,))(image)
    scaled = keras.layers.Rescaling(10.0)(audio)
    model = keras.Model({"image": image, "audio": audio}, keras.layers.Add()([flat, scaled]))
    rng = np.random.default_rng(0)
    n = 40
    y = rng.integers(0, 4, n)
    x_image = np.zeros((n, 2, 2, 1), "float32")
    x_image.reshape(n, 4)[np.arange(n), y] = 1.0  # the image shows the label
    wrong = (y + 1) % 4
    x_audio = np.zeros((n, 4), "float32")
    x_audio[np.arange(n), np.where(np.arange(n) < 10, y, wrong)] = 1.0  # right on 10 of 40

    class _Data:
        @staticmethod
        def pipeline(split, training=False):
            assert split == "test" and not training
            return tf.data.Dataset.from_tensor_slices(
                ({"image": x_image, "audio": x_audio}, y.astype("int32"))
            ).batch(16)

    report = modality_report(model, _Data())
    assert report["accuracy"] == pytest.approx(0.25)
    assert report["accuracy_without_audio"] == pytest.approx(1.0)
    # With the image zeroed the audio still decides.
    assert report["accuracy_without_image"] == pytest.approx(0.25)


def test_the_fused_student_builds_its_encoders_with_the_overrides():
    @dataclasses.dataclass
    class _Shaped(_Data):
        def model_shapes(self):
            return {"image_shape": IMAGE, "audio_shape": AUDIO}

    keras.utils.set_random_seed(0)
    student = fst.fused_student(_Shaped(), seed=0)

    def conv_filters(model):
        return tuple(
            layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
        )

    image = student.get_layer("image_encoder")
    assert conv_filters(image) == fst.STUDENT_OVERRIDES["image"]["filters"] == (16, 32, 32)
    # The preset's own student (4, 8, 8) is the narrower one the override replaces.
    preset = models.build("image_cnn", "student", 4, image_shape=IMAGE)
    assert conv_filters(preset) == (4, 8, 8)
    assert fst.STUDENT_OVERRIDES["audio"] == {}
    assert student.output_shape == (None, 4)

"""The label-scarce study (``kdzoo bench label-scarce``): table arithmetic, and a tiny
end-to-end run on AV digits."""

import pandas as pd
import pytest

from kdzoo import cli
from kdzoo.label_scarce import LabelScarceConfig, command, goal, markdown, run, summarize


def _per_seed():
    rows = [("teacher (image, every label)", None, 0, 0.98)]
    rows += [("supervised (audio, every label)", None, s, a) for s, a in ((0, 0.70), (1, 0.74))]
    for k, scratch, distilled in ((1, (0.20, 0.22), (0.60, 0.64)), (5, (0.40, 0.44), (0.62, 0.66))):
        rows += [("scratch", k, s, a) for s, a in enumerate(scratch)]
        rows += [("distilled (the recipe's choice)", k, s, a) for s, a in enumerate(distilled)]
    zero = "distilled (chosen on agreement with the image model)"
    rows += [(zero, 0, s, a) for s, a in ((0, 0.60), (1, 0.62))]
    frame = pd.DataFrame(rows, columns=["model", "labels_per_class", "seed", "test_accuracy"])
    return frame.assign(
        dataset="av_digits", command="kdzoo bench label-scarce --seeds 0 1", commit="abc"
    )


def test_summary_and_goal_are_per_labels_per_class():
    summary = summarize(_per_seed())
    at5 = summary[summary["labels_per_class"] == 5].set_index("kind")["mean"]
    assert at5["scratch"] == pytest.approx(0.42) and at5["distilled"] == pytest.approx(0.64)
    checked = goal(summary)
    assert checked["gap_points"] == pytest.approx(22.0) and checked["met"]
    text = markdown(_per_seed())
    assert "| 1 | 0.2100 ± 0.0141 | 0.6200 ± 0.0283 | +41.0 points |" in text
    assert (
        "G1: with 5 labels per class, distilled − scratch ≥ 20 points: +22.0 points, met." in text
    )
    assert "supervised audio student (every label): 0.7200 ± 0.0283" in text
    # 0 labels: no scratch student; the distilled one against the supervised one.
    assert checked["zero_share"] == pytest.approx(0.61 / 0.72)
    assert checked["zero_met"]
    assert "| 0 | – | 0.6100 ± 0.0141 | – (no scratch student without labels) |" in text
    assert "G1 with 0 labels, distilled ≥ 80% of the supervised student: 85%, met." in text


def test_the_zero_label_candidates_are_the_defaults_without_their_label_term():
    from kdzoo.defaults import DEFAULTS
    from kdzoo.label_scarce import ZERO_LABEL_CANDIDATES
    from kdzoo.recipe.candidates import parse_candidates

    def teacher_terms(candidate):
        names = [t.split(":")[0] for t in candidate.terms]
        return [n for n in names if n != "ce"], candidate.temperature

    zero = parse_candidates(ZERO_LABEL_CANDIDATES)
    assert [teacher_terms(c) for c in zero] == [
        teacher_terms(c) for c in parse_candidates(DEFAULTS.candidates)
    ]
    assert all("ce" not in teacher_terms(c)[0] and c.terms for c in zero)


def test_zero_label_data_hides_every_training_label_and_validates_on_the_teacher():
    import numpy as np

    from kdzoo import datasets, models
    from kdzoo.label_scarce import zero_label_data
    from kdzoo.labels import UNLABELLED

    data = datasets.load(
        "embedded",
        batch_size=32,
        seed=0,
        modalities=("image", "audio"),
        num_examples=120,
        validation_fraction=0.25,
    )
    teacher = models.build("image_cnn", "student", data.num_classes, **{
        "image_shape": data.model_shapes()["image_shape"]
    })  # fmt: skip
    zero = zero_label_data(data, teacher)
    n_train = len(data.arrays["train"]["label"])
    assert (zero.arrays["train"]["label"] == UNLABELLED).all()
    assert "train" not in zero.splits
    assert zero.num_examples["transfer"] == n_train
    labels = np.concatenate([y.numpy() for _, y in zero.pipeline("transfer", training=False)])
    assert (labels == UNLABELLED).all()
    logits = teacher.predict({"image": data.arrays["validation"]["image"]}, verbose=0)
    expected = np.argmax(logits, axis=-1)
    np.testing.assert_array_equal(zero.arrays["validation"]["label"], expected)
    got = np.concatenate([y.numpy() for _, y in zero.splits["validation"]])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(zero.arrays["test"]["label"], data.arrays["test"]["label"])
    assert (data.arrays["train"]["label"] != UNLABELLED).all()  # the given data is unchanged


def test_the_command_replays_the_config():
    config = LabelScarceConfig(seeds=(0, 1), labels_per_class=(0, 2), epochs=3, tiny=True)
    assert command(config) == (
        "kdzoo bench label-scarce --seeds 0 1 --labels-per-class 0 2 --epochs 3 --tiny"
    )
    assert command(LabelScarceConfig()) == "kdzoo bench label-scarce --seeds 0 1 2"
    # `kdzoo bench --verify` reruns the first seed, which trains the teacher.
    from kdzoo.verify import rerun_command

    assert rerun_command(command(LabelScarceConfig()), 0) == ("kdzoo bench label-scarce --seeds 0")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["label-scarce", "--datasets", "mnist"], "--datasets: label-scarce runs one dataset"),
        (["sst2", "--labels-per-class", "3"], "--labels-per-class: only with label-scarce"),
    ],
)
def test_flags_that_do_not_apply_are_refused(capsys, extra, message):
    assert cli.main(["bench", *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # about a minute on 2 cores
@pytest.mark.requires_data("fsdd", "mnist")
def test_the_study_runs_end_to_end_at_tiny_size(tmp_path):
    config = LabelScarceConfig(
        labels_per_class=(0, 1, 2),
        seeds=(0, 1),
        teacher_epochs=1,
        epochs=1,
        out_dir=str(tmp_path),
        tiny=True,
    )
    per_seed, summary = run(config)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "label-scarce.csv",
        "label-scarce.md",
        "code.json",
    }
    kinds = per_seed["model"].str.extract(r"(teacher|supervised|scratch|distilled)")[0]
    assert kinds.value_counts().to_dict() == {
        "teacher": 1,
        "supervised": 2,
        "scratch": 4,
        "distilled": 6,
    }
    assert per_seed["test_accuracy"].between(0, 1).all()
    scratch = per_seed[kinds == "scratch"]
    distilled = per_seed[(kinds == "distilled") & (per_seed["labels_per_class"] > 0)]
    # Scratch learns from k labelled clips per class; the candidates also from the others.
    assert (scratch["train_examples"] <= 10 * scratch["labels_per_class"]).all()
    assert (distilled["train_examples"].to_numpy() > scratch["train_examples"].to_numpy()).all()
    # With no label, every training clip, and a teacher-only setting chosen.
    zero = per_seed[per_seed["labels_per_class"] == 0]
    assert (zero["train_examples"] == 96).all() and len(zero) == 2
    assert not zero["setting"].str.contains("ce:").any()
    assert per_seed["command"].eq(command(config)).all()
    # One row per model, seed and k: what `kdzoo bench --verify` matches a rerun on.
    assert not per_seed.duplicated(["dataset", "seed", "model"]).any()
    text = (tmp_path / "label-scarce.md").read_text()
    assert "G1: with 5 labels per class" in text and "G1 with 0 labels" in text
    # The recipe's evidence on validation, on the distilled rows it chose among candidates.
    judged = distilled[distilled["labels_per_class"] > 0]
    assert judged["validation_gain"].notna().all() and judged["validation_se"].ge(0).all()
    assert per_seed[kinds != "distilled"]["validation_gain"].isna().all()
    assert "## The recipe's choice per seed" in text

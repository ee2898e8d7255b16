"""The tabular cross-view study (``kdzoo bench tabular-views``) and the MNIST views it reads:
features against hand-made digits, table arithmetic, and a tiny end-to-end run."""

import numpy as np
import pandas as pd
import pytest

from kdzoo.datasets.mnist_views import VIEWS, columns, view_features
from kdzoo.tabular_views import (
    STUDENT_VIEWS,
    TabularViewsConfig,
    command,
    gains,
    markdown,
    run,
    summarize,
)


def test_views_describe_a_bar_as_its_block_ink_profiles_and_morphology():
    image = np.zeros((1, 28, 28), "float32")
    image[0, 4:24, 12:16] = 1.0  # a vertical bar: rows 4..23, columns 12..15
    views = view_features(image)
    assert {k: v.shape[1] for k, v in views.items()} == VIEWS
    pix = views["pix"].reshape(7, 7)
    assert pix[1:6, 3].tolist() == [1.0] * 5 and pix[:, 0].sum() == 0
    prof = views["prof"][0]
    assert prof[:28].tolist() == [0.0] * 4 + [4.0] * 20 + [0.0] * 4  # ink per row
    assert prof[28:].tolist() == [0.0] * 12 + [20.0] * 4 + [0.0] * 12  # ink per column
    ink, row, col, row_sd, col_sd, cov, height, width = views["mor"][0]
    assert (ink, row, col, height, width) == (80.0, 13.5, 13.5, 20.0, 4.0)
    np.testing.assert_allclose([row_sd, col_sd, cov], [np.std(np.arange(20)), np.std(range(4)), 0])
    # A vertical bar's gradients point across it: horizontal, orientation bin 0.
    hog = views["hog"][0].reshape(4, 9)
    assert (hog.argmax(axis=1)[hog.max(axis=1) > 0] == 0).all()
    # Fourier magnitudes do not move with the digit (a circular shift changes phases only).
    moved = view_features(np.roll(image, (2, 5), axis=(1, 2)))["fou"]
    np.testing.assert_allclose(moved, views["fou"], atol=1e-6)
    assert views["fou"].max() > 0
    assert np.isfinite(np.concatenate(list(views.values()), axis=1)).all()


def test_views_refuse_images_of_another_size_and_name_unknown_views():
    with pytest.raises(ValueError, match="28×28"):
        view_features(np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match="Unknown view 'zer'"):
        columns("zer")


def _per_seed():
    rows = [
        ("–", "teacher (all views (184 numbers))", 0, 0.97),
        ("–", "supervised student (all views (184 numbers))", 0, 0.95),
        ("mor", "scratch (mor (8 numbers))", 0, 0.40),
        ("mor", "distilled (mor (8 numbers), the recipe's choice)", 0, 0.43),
        ("mor", "scratch (mor (8 numbers))", 1, 0.42),
        ("mor", "distilled (mor (8 numbers), the recipe's choice)", 1, 0.43),
    ]
    frame = pd.DataFrame(rows, columns=["student_view", "model", "seed", "test_accuracy"])
    return frame.assign(command="kdzoo bench tabular-views --seeds 0 1")


def test_gains_and_the_markdown_table():
    checked = gains(summarize(_per_seed())).set_index("student_view")
    assert checked.at["mor", "gap_points"] == pytest.approx(2.0)
    text = markdown(_per_seed())
    assert "| mor (8 numbers) | 0.4100 ± 0.0141 | 0.4300 ± 0.0000 | +2.0 points |" in text
    assert "- teacher (every view): 0.9700" in text


def test_the_command_replays_the_config():
    assert command(TabularViewsConfig(seeds=(0,), epochs=2)) == (
        "kdzoo bench tabular-views --seeds 0 --epochs 2"
    )
    config = TabularViewsConfig(student_views=("hog",), seeds=(1,))
    assert command(config) == "kdzoo bench tabular-views --seeds 1 --datasets hog"
    assert STUDENT_VIEWS == ("mor", "prof")


@pytest.mark.slow  # about a minute on 2 cores
@pytest.mark.requires_data("mnist")
def test_the_study_runs_end_to_end_at_tiny_size(tmp_path):
    config = TabularViewsConfig(
        student_views=("mor",), seeds=(0, 1), teacher_epochs=2, epochs=2, out_dir=str(tmp_path),
        tiny=True,
    )  # fmt: skip
    per_seed, summary = run(config)
    assert per_seed["student_view"].tolist() == ["–", "–"] + ["mor"] * 4
    assert summary["count"].tolist() == [1, 1, 2, 2]
    assert per_seed["test_accuracy"].between(0, 1).all()
    # The students read the 8 morphology numbers only; the teacher all 184, from as many
    # training digits.
    assert per_seed["features"].tolist() == [184, 184] + [8] * 4
    assert (per_seed["train_examples"] == per_seed["train_examples"].iloc[0]).all()
    for suffix in ("csv", "md"):
        assert (tmp_path / f"tabular-views.{suffix}").stat().st_size > 0

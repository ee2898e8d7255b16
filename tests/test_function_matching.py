"""The function-matching study (``kdzoo bench function-matching``): the mixed batches are
the recipe's batches with a share of rows mixed, the table arithmetic, and a tiny
end-to-end run."""

import numpy as np
import pandas as pd
import pytest

from kdzoo.function_matching import (
    MIXUP_MODEL,
    FunctionMatchingConfig,
    command,
    gains,
    markdown,
    mixed_batches,
    run,
    students,
    summarize,
)


def _per_seed():
    rows = []
    for pairing, (scratch, distilled, mixup) in {
        "mnist-thumbnail-50": ((0.80, 0.82), (0.80, 0.82), (0.84, 0.86)),
        "fsdd-lowpass-50": ((0.70, 0.72), (0.71, 0.73), (0.70, 0.72)),
    }.items():
        rows.append({"pairing": pairing, "seed": 0, "model": "teacher (full view)",
                     "test_accuracy": 0.9})  # fmt: skip
        for seed in (0, 1):
            for model, scores in (
                ("scratch (degraded view)", scratch),
                ("distilled (degraded view, the recipe's choice)", distilled),
                (MIXUP_MODEL, mixup),
            ):
                rows.append({"pairing": pairing, "seed": seed, "model": model,
                             "test_accuracy": scores[seed]})  # fmt: skip
    return pd.DataFrame(rows)


def test_gains_per_pairing_in_points():
    summary = summarize(_per_seed())
    kinds = summary[summary["pairing"] == "fsdd-lowpass-50"]["kind"].tolist()
    assert kinds == ["teacher", "scratch", "distilled", "mixup"]
    checked = gains(summary).set_index("pairing")
    assert checked.at["mnist-thumbnail-50", "distilled_minus_scratch"] == pytest.approx(0.0)
    assert checked.at["mnist-thumbnail-50", "mixup_minus_scratch"] == pytest.approx(4.0)
    assert checked.at["fsdd-lowpass-50", "distilled_minus_scratch"] == pytest.approx(1.0)
    assert checked.at["fsdd-lowpass-50", "mixup_minus_scratch"] == pytest.approx(0.0)
    text = markdown(_per_seed())
    assert "| mnist-thumbnail-50 | 0.9000 ± 0.0000 | 0.8100 ± 0.0141 |" in text
    assert "| +0.0 | +4.0 |" in text


def test_the_command_replays_the_config():
    config = FunctionMatchingConfig(pairings=("fsdd-lowpass-50",), seeds=(0,), epochs=2)
    assert command(config) == (
        "kdzoo bench function-matching --seeds 0 --datasets fsdd-lowpass-50 --epochs 2"
    )
    with pytest.raises(ValueError, match="Unknown pairing"):
        run(FunctionMatchingConfig(pairings=("fsdd-lowpass",), out_dir=None))
    with pytest.raises(ValueError, match="rate in"):
        run(FunctionMatchingConfig(rate=0.0, out_dir=None))


@pytest.mark.requires_data("fsdd")
def test_mixed_batches_are_the_recipes_batches_with_a_share_mixed():
    from kdzoo.labels import UNLABELLED
    from kdzoo.privileged import few_labels
    from kdzoo.recipe.batching import epoch_batches
    from kdzoo.studies import load_dataset

    data = few_labels(load_dataset("fsdd", None, ("audio",), None, tiny=True), 5)
    n = data.num_examples["train"]
    mixed, steps = mixed_batches(data, 8, seed=3, epochs=2, alpha=1.0, rate=0.5)
    plain, plain_steps = epoch_batches(
        data.pipeline("train", training=False).unbatch(), n, 8, 3, 0, 2
    )
    assert steps == plain_steps == n // 8
    batches = list(zip(mixed.as_numpy_iterator(), plain.as_numpy_iterator(), strict=True))
    assert len(batches) == 2 * steps
    share = []
    for (x, y), (x0, y0) in batches:
        assert y.dtype == np.int32
        kept = y != UNLABELLED
        share.append(1 - kept.mean())
        # Unmixed rows are the recipe's rows, label and input; mixed ones differ.
        np.testing.assert_array_equal(y[kept], y0[kept])
        np.testing.assert_array_equal(x["audio"][kept], x0["audio"][kept])
        assert not np.allclose(x["audio"][~kept], x0["audio"][~kept])
    assert 0.25 < np.mean(share) < 0.5  # rate 0.5, less rows drawn as their own partner


@pytest.mark.slow  # about a minute on 2 cores
@pytest.mark.requires_data("fsdd")
def test_the_study_runs_end_to_end_at_tiny_size(tmp_path):
    config = FunctionMatchingConfig(
        pairings=("fsdd-lowpass-50",),
        seeds=(0, 1),
        teacher_epochs=1,
        epochs=2,
        out_dir=str(tmp_path),
        tiny=True,
    )
    everything, summary = run(config)
    per_seed = students(everything)
    assert list(per_seed["model"].str.split(" ").str[0]) == [
        "teacher", "scratch", "distilled", "distilled", "scratch", "distilled", "distilled",
    ]  # fmt: skip
    assert (per_seed["train_examples"] == 40).all()  # 5 per class at tiny size, 1 validates
    assert per_seed["test_accuracy"].between(0, 1).all()
    assert summary["kind"].tolist() == ["teacher", "scratch", "distilled", "mixup"]
    # The mixup row follows the one-standard-error rule, against the recipe's scratch.
    mixup = per_seed[per_seed["model"].str.startswith(MIXUP_MODEL)]
    scratch = per_seed[per_seed["model"].str.startswith("scratch")]
    clear = (mixup["validation_gain"] > 0) & (mixup["validation_gain"] > mixup["validation_se"])
    assert (mixup["setting"].str.endswith("+ mixup") == clear).all()
    shipped_scratch = ~clear.to_numpy()
    np.testing.assert_array_equal(
        mixup["test_accuracy"].to_numpy()[shipped_scratch],
        scratch["test_accuracy"].to_numpy()[shipped_scratch],
    )
    # Each candidate twice per seed: its labelled-batch scores are the recipe's own.
    candidates = everything[everything["role"] == "candidate"]
    assert candidates["model"].tolist() == 2 * [
        "candidate ce:0.5,kd:0.5 (τ=2), labelled batches",
        "candidate ce:0.5,kd:0.5 (τ=2), mixed batches",
    ]
    best = mixup["validation_gain"].to_numpy() + scratch["validation_accuracy"].to_numpy()
    mixed = candidates[candidates["model"].str.endswith("mixed batches")]
    np.testing.assert_allclose(mixed["validation_accuracy"], best, atol=1e-6)
    text = (tmp_path / "function-matching.md").read_text()
    assert "| fsdd-lowpass-50 |" in text and "## The recipe's choice per seed" in text
    assert "## Each distillation candidate, on labelled and on mixed batches" in text
    assert (tmp_path / "function-matching.png").stat().st_size > 0

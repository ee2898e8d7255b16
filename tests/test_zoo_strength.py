"""``kdzoo bench zoo``: the goals' arithmetic, the settings' models, and a tiny end-to-end run."""

import pandas as pd
import pytest

from kdzoo import zoo_strength
from kdzoo.models import references
from kdzoo.zoo_strength import SETTINGS, ZooConfig, goals, summarize


def _rows(setting, model, role, scores, metric="accuracy"):
    return [
        {
            "setting": setting,
            "model": model,
            "role": role,
            "params": 10,
            "seed": seed,
            "metric": metric,
            "test_accuracy": score if metric == "accuracy" else 0.99,
            "test_f1": score if metric == "f1" else float("nan"),
            "validation_accuracy": 0.5,
            "validation_f1": score - 0.1 if metric == "f1" else float("nan"),
            "epochs": 3,
            "latency_ms": 1.0,
            "command": "kdzoo bench zoo",
            "commit": "abc",
            "date": "2026-11-30",
        }
        for seed, score in enumerate(scores)
    ]


def test_goals_compare_means_in_points_against_the_reference_and_the_best_single_modality():
    per_seed = pd.DataFrame(
        _rows("a", "t1", "teacher", [0.90, 0.92])
        + _rows("a", "t2", "teacher", [0.80, 0.80])
        + _rows("a", "ref", "reference", [0.91, 0.92])
        + _rows("b", "fused", "teacher", [0.95, 0.97])
        + _rows("b", "image", "unimodal teacher", [0.94, 0.94])
        + _rows("b", "audio", "unimodal teacher", [0.60, 0.70])
        + _rows("c", "spam t", "teacher", [0.80, 0.80], metric="f1")
        + _rows("c", "spam ref", "reference", [0.90, 0.90], metric="f1")
    )
    summary = summarize(per_seed)
    assert summary.set_index("model").loc["t1", "mean"] == pytest.approx(0.91)
    assert summary.set_index("model").loc["t1", "std"] == pytest.approx(0.0141421, abs=1e-6)
    # The F1 setting is scored on F1, not on accuracy (0.99 in every row).
    assert summary.set_index("model").loc["spam t", "mean"] == pytest.approx(0.80)
    assert summary.set_index("model").loc["spam t", "validation"] == pytest.approx(0.70)
    assert summary.set_index("model").loc["t1", "validation"] == pytest.approx(0.5)
    checked = goals(summary).set_index("model")
    assert checked.loc["t1", "gap_points"] == pytest.approx(-0.5)
    assert bool(checked.loc["t1", "met"])  # exactly -0.5 meets "≥ reference - 0.5"
    assert not bool(checked.loc["t2", "met"])
    assert checked.loc["fused", "against"] == "image"  # the best single modality
    assert checked.loc["fused", "gap_points"] == pytest.approx(2.0)
    assert bool(checked.loc["fused", "met"])
    assert checked.loc["spam t", "gap_points"] == pytest.approx(-10.0)


def test_rows_from_before_validation_f1_was_recorded_show_a_dash_not_a_number():
    per_seed = pd.DataFrame(_rows("sms-spam", "t", "teacher", [0.9, 0.8], metric="f1"))
    per_seed = per_seed.drop(columns="validation_f1")
    assert summarize(per_seed)["validation"].isna().all()
    table = zoo_strength._markdown(per_seed)
    assert "| validation f1 |" in table and "| – |" in table


def test_every_setting_pairs_each_teacher_with_a_reference_and_students_stay_small():
    for setting in SETTINGS.values():
        roles = [e.role for e in setting.entries]
        assert "teacher" in roles
        assert ("reference" in roles) != ("unimodal teacher" in roles), setting.name
        for entry in setting.entries:
            if entry.preset is None:
                assert entry.family in references.REFERENCES
    # The settings: image, audio (two protocols), text (two datasets), fusion.
    required = {"mnist", "fsdd", "fsdd-speaker", "sst2", "sms-spam", "av-digits"}
    assert required <= set(SETTINGS)


def test_every_teacher_preset_of_the_zoo_is_measured():
    import kdzoo.models

    measured = {e.family for s in SETTINGS.values() for e in s.entries if e.role == "teacher"}
    assert measured == set(kdzoo.models.list_models())


def test_references_build_and_the_small_ones_are_student_sized():
    import kdzoo.models

    image = references.textbook_cnn(10)
    assert image.count_params() == 34_826  # the size the issue quotes for this network
    small = references.textbook_cnn(10, **references.SMALL["textbook_cnn"])
    student = kdzoo.models.build("image_cnn", "student", image_shape=(28, 28, 1))
    assert small.count_params() < 2 * student.count_params()
    text = references.kim_cnn(2, sequence_length=56, vocab_size=100)
    # 300-d embedding, 3 widths x 100 maps, 2 logits.
    assert text.count_params() == 100 * 300 + sum(w * 300 * 100 + 100 for w in (3, 4, 5)) + 602
    audio = references.logmel_cnn(10, audio_shape=(30, 32))
    assert audio.count_params() > 0 and [t.name for t in audio.inputs] == ["audio"]
    # Gorishniy et al.'s tabular ResNet: in 184 -> 128, 2 blocks of 128 -> 256 -> 128 with
    # batch norm (4 numbers a feature, the moving statistics included), then batch norm and
    # the head.
    table = references.tabular_resnet(10, tabular_shape=(184,))
    block = 4 * 128 + 128 * 256 + 256 + 256 * 128 + 128
    assert table.count_params() == 184 * 128 + 128 + 2 * block + 4 * 128 + 128 * 10 + 10
    small = references.tabular_resnet(
        10, tabular_shape=(184,), **references.SMALL["tabular_resnet"]
    )
    tabular = kdzoo.models.build("tabular_mlp", "student", tabular_shape=(184,))
    assert small.count_params() < 2 * tabular.count_params()


@pytest.mark.slow  # about a minute
@pytest.mark.requires_data("mnist")
def test_the_tabular_setting_loads_its_views_and_runs_at_tiny_size(tmp_path):
    from kdzoo.zoo_strength import ZooConfig, run

    config = ZooConfig(seeds=(0,), epochs=1, settings=("mnist-views",), out_dir=str(tmp_path),
                       tiny=True)  # fmt: skip
    per_seed, _, _ = run(config)
    assert set(per_seed["model"]) >= {"tabular_mlp teacher", "tabular_resnet"}
    assert per_seed["test_accuracy"].between(0, 1).all()


@pytest.mark.slow
@pytest.mark.requires_data("mnist")
def test_the_zoo_benchmark_runs_end_to_end_at_tiny_size_and_keeps_other_settings_rows(tmp_path):
    old = pd.DataFrame(_rows("fsdd", "audio_crnn teacher", "teacher", [0.9]))
    old.to_csv(tmp_path / "zoo-strength.csv", index=False)
    config = ZooConfig(seeds=(0,), epochs=1, settings=("mnist",), out_dir=str(tmp_path), tiny=True)
    per_seed, summary, checked = zoo_strength.run(config)
    written = pd.read_csv(tmp_path / "zoo-strength.csv")
    assert list(dict.fromkeys(written["setting"])) == ["mnist", "fsdd"]  # settings' order
    mnist = written[written["setting"] == "mnist"]
    assert list(mnist["role"]) == ["teacher", "reference", "student", "student reference"]
    assert mnist["test_accuracy"].between(0, 1).all()
    assert (mnist["latency_ms"] > 0).all() and (mnist["epochs"] == 1).all()
    assert (
        mnist["command"].iloc[0] == "kdzoo bench zoo --seeds 0 --datasets mnist --epochs 1 --tiny"
    )
    teacher, reference = mnist["test_accuracy"].iloc[0], mnist["test_accuracy"].iloc[1]
    row = checked[checked["setting"] == "mnist"].iloc[0]
    assert row["gap_points"] == pytest.approx(100 * (teacher - reference))
    text = (tmp_path / "zoo-strength.md").read_text()
    assert "## mnist" in text and "## fsdd" in text and "## Goals" in text
    assert "kdzoo bench zoo --seeds 0 --datasets mnist --epochs 1 --tiny" in text

"""The recipe report's text (``kdzoo.recipe.report.write_report``): what each number is."""

import sys
import types

import pandas as pd

from kdzoo.recipe.report import write_report


def _result(evaluated_on):
    table = pd.DataFrame(
        {"model": ["teacher"], "accuracy": [0.9], "precision": [0.8], "recall": [0.7]}
    )
    return types.SimpleNamespace(
        table=table,
        candidates=pd.DataFrame({"candidate": ["scratch"], "validation_accuracy": [0.75]}),
        chosen=types.SimpleNamespace(describe=lambda: "scratch"),
        evaluated_on=evaluated_on,
        metric="accuracy",
        gain=0.02,
        validation_gain=0.03,
        selection=None,
        seconds={"total": 1.0},
    )


def test_the_report_names_the_positive_class_and_each_gain_once(tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure"):  # the text only
        monkeypatch.setitem(sys.modules, module, None)
    data = types.SimpleNamespace(num_classes=2, class_names=["leave", "stay"])
    text = (write_report(_result("validation"), tmp_path / "a", data) / "report.md").read_text()
    assert "(accuracy): +0.0300 (validation). " in text  # not twice over
    assert "those of class 'stay' (the second class name" in text
    text = (write_report(_result("test"), tmp_path / "b") / "report.md").read_text()
    assert "(accuracy): +0.0200 (test), +0.0300 (validation)." in text
    assert "those of class" not in text  # no data given: no class names to name


def test_regression_curves_are_drawn_in_the_targets_units():
    import numpy as np
    import pytest

    from kdzoo.recipe.report import _logged_units
    from kdzoo.tasks import Task

    one = Task.regression(["price"]).fit_normalisation(np.array([0.0, 4.0, 8.0, 4.0]))
    std = float(np.std([0.0, 4.0, 8.0, 4.0]))
    # Keras logs MSE and MAE of the standardised outputs; the tables are in the target's units.
    assert _logged_units(one, "val_mse") == (pytest.approx(std**2), "")
    assert _logged_units(one, "val_mae") == (pytest.approx(std), "")
    assert _logged_units(one, "val_r2") == (1.0, "")
    assert _logged_units(one, "val_loss") == (1.0, " (standardised targets)")
    two = Task.regression(["a", "b"]).fit_normalisation(np.array([[0.0, 0.0], [2.0, 9.0]]))
    assert _logged_units(two, "val_mse") == (1.0, " (standardised targets)")
    assert _logged_units(None, "val_accuracy") == (1.0, "")
    assert _logged_units(Task.regression(["raw"]), "val_mse") == (1.0, "")  # not standardised


def test_the_report_says_which_data_and_models_it_measured(tmp_path, monkeypatch):
    import keras

    for module in ("matplotlib", "matplotlib.figure"):  # the text only
        monkeypatch.setitem(sys.modules, module, None)
    inputs = keras.Input((3,))
    teacher = keras.Model(inputs, keras.layers.Dense(20)(inputs), name="my_teacher")
    student = keras.Model(inputs, keras.layers.Dense(20)(inputs), name="my_student")
    result = _result("test")
    result.teacher, result.student = teacher, student
    data = types.SimpleNamespace(
        name="churn",
        num_examples={"test": 30, "train": 1200, "validation": 150},
        class_names=[f"c{i}" for i in range(20)],
        num_classes=20,
        task=None,
    )
    text = (write_report(result, tmp_path / "a", data) / "report.md").read_text()
    lines = text.split("\n\n")[1].splitlines()
    assert lines == [
        "- Data: `churn`: train 1,200, validation 150, test 30; 20 classes (c0 … c19).",
        "- Teacher: `my_teacher` (80 parameters).",
        "- Student: `my_student` (80 parameters).",
    ]
    text = (write_report(_result("test"), tmp_path / "b") / "report.md").read_text()
    assert "- Data:" not in text and "- Teacher:" not in text  # nothing known, nothing said

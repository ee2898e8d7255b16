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

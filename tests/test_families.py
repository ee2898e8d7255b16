"""``kdzoo.families``: the models a user's data trains, and which tabular columns can name a
serving input (the rules ``kdzoo distil --data`` and experiment files share)."""

import pytest

from kdzoo import families


def test_one_modality_trains_its_family_and_image_with_audio_the_default_pair():
    assert families.family_for(families.modalities_of(["numeric", "id"])) == "tabular_mlp"
    assert families.family_for(families.modalities_of(["text", "label"])) == "text_lstm"
    assert families.family_for({"image", "audio"}) is None
    assert families.family_for({None}) is None  # an empty folder: from_folder says why
    with pytest.raises(ValueError, match="gives tabular and text; name the models"):
        families.family_for(families.modalities_of(["text", "categorical"]))


def test_columns_that_cannot_name_a_serving_input_get_a_rename():
    columns = ["age", "monthly spend", "2024", "text", "plan_b"]
    assert families.unservable(columns) == ["monthly spend", "2024", "text"]
    assert families.suggested_name("monthly spend") == "monthly_spend"
    assert families.suggested_name("2024") == "x_2024"
    assert families.suggested_name("text") == "x_text"
    assert families.suggested_name("%") == "x"
    assert not families.unservable([families.suggested_name(c) for c in columns])
    # Only the data's other inputs are taken: a table alone may have a column named text.
    assert families.unservable(columns, {"tabular"}) == ["monthly spend", "2024"]
    assert families.unservable(columns, {"tabular", "text"}) == ["monthly spend", "2024", "text"]
    assert families.unservable(["tabular"], {"tabular"}) == ["tabular"]  # the model's input
    assert families.suggested_name("tabular") == "x_tabular"


def test_the_serving_rule_is_the_exports():
    from kdzoo.data.tabular import INPUT_NAME

    assert families.SERVING_NAME.pattern == INPUT_NAME.pattern

"""The tabular front end: statistics and vocabularies fitted on train, the raw matrix, and
the features, against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from kdzoo.data import TabularConfig, from_arrays, tabular_features
from kdzoo.data.tabular import UNSEEN


def _config():
    return TabularConfig.fit(
        {"age": [20.0, 30.0, 40.0], "flat": [5.0, 5.0, 5.0]},
        {"plan": ["b", "a", None], "seats": [1, 2.0, 2]},
    )


def test_fit_learns_means_stds_and_sorted_vocabularies_of_the_training_values():
    config = _config()
    assert config.numeric == ("age", "flat") and config.categorical == ("plan", "seats")
    np.testing.assert_allclose(config.mean, [30.0, 5.0])
    # Population std; a constant column gets 1, so it standardises to 0.
    np.testing.assert_allclose(config.std, [np.std([20, 30, 40]), 1.0])
    # Missing cells are not values; 2.0 and 2 are the same category "2".
    assert config.vocabularies == (("a", "b"), ("1", "2"))
    assert config.columns == ("age", "flat", "plan", "seats")
    assert (config.raw_size, config.feature_size) == (4, 2 + 3 + 3)


def test_encode_gives_codes_and_counts_values_unseen_in_training():
    config = _config()
    raw, unseen = config.encode(
        {"age": [25.0, 50.0], "flat": [5.0, 6.0]}, {"plan": ["a", "zzz"], "seats": [2, None]}
    )
    np.testing.assert_array_equal(raw, [[25, 5, 1, 2], [50, 6, UNSEEN, UNSEEN]])
    assert raw.dtype == np.float64
    assert unseen == {"plan": 1, "seats": 1}
    with pytest.raises(KeyError, match=r"\['seats'\]"):
        config.encode({"age": [1.0], "flat": [1.0]}, {"plan": ["a"]})


def test_features_are_standardised_numbers_then_one_hot_categories():
    config = _config()
    raw, _ = config.encode(
        {"age": [25.0, 50.0], "flat": [5.0, 6.0]}, {"plan": ["b", "new"], "seats": ["1", "2"]}
    )
    got = tabular_features(tf.constant(raw), config).numpy()
    std = np.std([20, 30, 40])
    expected = np.array(
        [
            [(25 - 30) / std, 0.0, 0, 0, 1, 0, 1, 0],
            [(50 - 30) / std, 1.0, 1, 0, 0, 0, 0, 1],
        ],
        np.float32,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_pipeline_of_tabular_rows_feeds_the_features():
    config = _config()
    raw, _ = config.encode(
        {"age": [20.0, 30.0, 40.0], "flat": [5.0] * 3}, {"plan": ["a", "b", "c"], "seats": [1] * 3}
    )
    ds = from_arrays(
        {"tabular": raw, "label": np.array([0, 1, 0])},
        ("tabular",),
        batch_size=3,
        tabular_config=config,
    )
    x, _ = next(iter(ds))
    assert x["tabular"].shape == (3, config.feature_size)
    np.testing.assert_allclose(x["tabular"].numpy(), tabular_features(raw, config).numpy())
    with pytest.raises(ValueError, match="tabular_config"):
        from_arrays({"tabular": raw, "label": np.array([0, 1, 0])}, ("tabular",))


def test_the_config_round_trips_through_a_dict_and_rejects_inconsistent_fields():
    config = _config()
    assert TabularConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="at least one"):
        TabularConfig()
    with pytest.raises(ValueError, match="2 numeric column"):
        TabularConfig(numeric=("a", "b"), mean=(0.0,), std=(1.0,))
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        TabularConfig(numeric=("a",), mean=(0.0,), std=(0.0,))
    with pytest.raises(ValueError, match="named twice"):
        TabularConfig(numeric=("a",), mean=(0.0,), std=(1.0,), categorical=("a",),
                      vocabularies=(("x",),))  # fmt: skip
    with pytest.raises(ValueError, match="repeats a value"):
        TabularConfig(categorical=("c",), vocabularies=(("x", "x"),))

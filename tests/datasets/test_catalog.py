"""The dataset catalog: one entry per dataset, the one list every other list derives from,
and ``load``'s steps built on it."""

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from helpers import run_python

from kdzoo import datasets
from kdzoo.data import TextVectorizer
from kdzoo.datasets import catalog, loading
from kdzoo.datasets.catalog import CATALOG, Catalog, DatasetSpec
from kdzoo.defaults import DEFAULTS

KDZOO = Path(catalog.__file__).parents[1]


def _spec(**overrides):
    fields = {
        "name": "toy",
        "modalities": ("text",),
        "class_names": ("no", "yes"),
        "splits": ("train", "test"),
        "reader": "toy_module:read",
    }
    return DatasetSpec(**{**fields, **overrides})


def test_registering_a_name_twice_raises_and_a_miss_lists_the_names():
    fresh = Catalog()
    fresh.register(_spec())
    with pytest.raises(ValueError, match="'toy' is already registered"):
        fresh.register(_spec(class_names=("a", "b")))
    with pytest.raises(ValueError, match="builds on unregistered \\['fsdd'\\]"):
        fresh.register(_spec(name="pair", builds_on=("fsdd",)))
    with pytest.raises(ValueError, match="Unknown dataset 'nope'. Valid names: toy.$"):
        fresh.get("nope")
    with pytest.raises(ValueError, match="Valid names: av_digits, embedded, fsdd, mnist"):
        CATALOG.get("imagenet")
    assert datasets.NAMES == CATALOG.names() == tuple(sorted(CATALOG.names()))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"modalities": ("smell",)}, "modalities"),
        ({"default_modalities": ("audio",)}, "default_modalities"),
        ({"reader": "no_function"}, "module:function"),
        ({"modalities": ("audio",)}, "sample_rate and clip_samples"),
        ({"modalities": ("image",)}, "image_shape"),
        ({"splits": ("test",)}, "'train' split"),
        ({"name": "not a name"}, "identifier"),
    ],
)
def test_a_spec_with_missing_or_contradictory_facts_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        _spec(**overrides)


def test_the_catalog_imports_without_tensorflow():
    code = (
        "import sys; from kdzoo.datasets.catalog import CATALOG; import kdzoo.datasets.root; "
        "assert CATALOG.names(); print('tensorflow' in sys.modules, 'numpy' in sys.modules)"
    )
    out = run_python(["-c", code], check=True)
    assert out.stdout.split() == ["False", "False"]


def test_loaders_and_download_sources_take_their_facts_from_the_catalog():
    from kdzoo.datasets import av_digits, fsdd, mnist, sms_spam, sst2

    for module in (av_digits, fsdd, mnist, sms_spam, sst2):
        spec = module.SPEC
        assert spec is CATALOG.get(module.__name__.rsplit(".", 1)[1])
        assert spec.reader == f"{module.__name__}:read_splits" and callable(module.read_splits)
    assert sst2.CLASS_NAMES is CATALOG.get("sst2").class_names
    assert sms_spam.CLASS_NAMES is CATALOG.get("sms_spam").class_names
    assert tuple(sst2.FILES.values()) == CATALOG.files("sst2")
    assert (mnist.TRAIN_CSV, mnist.TEST_IMAGES, mnist.TEST_LABELS) == CATALOG.files("mnist")
    assert fsdd.FOLDER == "fsdd/recordings" and fsdd.SOURCE == CATALOG.get("fsdd").source
    assert CATALOG.files("av_digits") == CATALOG.files("fsdd") + CATALOG.files("mnist")
    # Every pinned source provides a file of its dataset, and every file has a source.
    for spec in CATALOG:
        assert catalog.SOURCES.get(spec.name, ()) == spec.resources
        assert {r.dest for r in spec.resources} == set(spec.files.values())
    assert set(catalog.SOURCES) == {"fsdd", "mnist", "sms_spam", "sst2"}


def test_text_defaults_come_from_the_defaults_table():
    vectorizer = TextVectorizer.adapt(["a b", "b c"])
    assert vectorizer.sequence_length == DEFAULTS.text_sequence_length == 64
    assert TextVectorizer(["[PAD]", "a"]).sequence_length == DEFAULTS.text_sequence_length
    words = [f"w{i}" for i in range(DEFAULTS.text_max_tokens + 10)]
    assert len(TextVectorizer.adapt([" ".join(words)]).vocabulary) == DEFAULTS.text_max_tokens
    assert CATALOG.get("sms_spam").max_tokens == DEFAULTS.text_max_tokens
    assert (CATALOG.get("sst2").sequence_length, CATALOG.get("embedded").max_tokens) == (56, 2000)


def test_load_uses_the_catalog_text_settings_of_a_dataset(tmp_path):
    data = datasets.load(
        "embedded", num_examples=60, modalities=("text",), cache_dir=tmp_path, batch_size=8
    )
    spec = CATALOG.get("embedded")
    assert tuple(data.input_specs["text"].shape) == (spec.sequence_length,) == (16,)
    assert data.text_vectorizer.sequence_length == spec.sequence_length
    assert len(data.text_vectorizer.vocabulary) <= spec.max_tokens
    assert Path(data.vocabulary_path).parent == tmp_path
    longer = datasets.load(
        "embedded", num_examples=60, modalities=("text",), cache_dir=tmp_path, sequence_length=20
    )
    assert tuple(longer.input_specs["text"].shape) == (20,)


def test_arguments_a_dataset_does_not_take_are_refused_before_reading(tmp_path):
    empty = tmp_path / "empty_root"  # nothing to read: a read would raise DataNotFoundError
    with pytest.raises(ValueError, match="mnist has no modality \\['audio'\\]"):
        datasets.load("mnist", root=empty, modalities=("audio",))
    with pytest.raises(ValueError, match="`num_examples` applies to the generated 'embedded'"):
        datasets.load("sst2", root=empty, num_examples=10)
    with pytest.raises(ValueError, match="`fsdd_split` applies to 'av_digits' and 'fsdd'"):
        datasets.load("mnist", root=empty, fsdd_split="speaker:george")
    with pytest.raises(ValueError, match="`validation_speaker` applies to"):
        datasets.load("fsdd", root=empty, validation_speaker="george", validation_fraction=0.1)
    with pytest.raises(ValueError, match="`validation_speaker` applies to"):
        datasets.load("sst2", root=empty, validation_speaker="george")


def test_carve_validation_by_fraction_or_speaker():
    train = {
        "label": np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]),
        "row": np.arange(10),
        "speaker": np.array(["ann", "bob"] * 5),
    }
    splits = {"train": train, "test": {"label": np.arange(3)}}
    by_fraction = loading.carve_validation(splits, "toy", seed=1, fraction=0.3)
    held = by_fraction["validation"]["row"]
    # Stratified: round(0.3 * 6) = 2 rows of class 0, round(0.3 * 4) = 1 of class 1.
    assert list(by_fraction["validation"]["label"]) == [0, 0, 1]
    assert len(by_fraction["train"]["label"]) == 7
    assert sorted([*held, *by_fraction["train"]["row"]]) == list(range(10))
    again = loading.carve_validation(splits, "toy", seed=1, fraction=0.3)
    np.testing.assert_array_equal(again["validation"]["row"], held)
    by_speaker = loading.carve_validation(splits, "toy", speaker="bob")
    assert set(by_speaker["validation"]["speaker"]) == {"bob"}
    assert set(by_speaker["train"]["speaker"]) == {"ann"}
    assert loading.carve_validation(splits, "toy") is splits
    with pytest.raises(ValueError, match="training speakers: \\['ann', 'bob'\\]"):
        loading.carve_validation(splits, "toy", speaker="cy")
    with pytest.raises(ValueError, match="own validation split"):
        loading.carve_validation({**splits, "validation": train}, "toy", fraction=0.1)


def test_carve_validation_by_several_speakers():
    train = {
        "label": np.arange(9) % 2,
        "row": np.arange(9),
        "speaker": np.array(["ann", "bob", "cy"] * 3),
    }
    splits = {"train": train, "test": {"label": np.arange(3)}}
    by_two = loading.carve_validation(splits, "toy", speaker=("ann", "cy"))
    assert list(by_two["validation"]["row"]) == [0, 2, 3, 5, 6, 8]
    assert list(by_two["train"]["row"]) == [1, 4, 7]
    # A list names the same speakers as a tuple; one name as a string is the same as (name,).
    same = loading.carve_validation(splits, "toy", speaker=["cy", "ann"])
    np.testing.assert_array_equal(same["validation"]["row"], by_two["validation"]["row"])
    one = loading.carve_validation(splits, "toy", speaker=("bob",))
    np.testing.assert_array_equal(
        one["validation"]["row"],
        loading.carve_validation(splits, "toy", speaker="bob")["validation"]["row"],
    )
    with pytest.raises(ValueError, match=r"speaker\(s\) \['dee'\]"):
        loading.carve_validation(splits, "toy", speaker=("ann", "dee"))
    with pytest.raises(ValueError, match="would leave no training speaker"):
        loading.carve_validation(splits, "toy", speaker=("ann", "bob", "cy"))
    with pytest.raises(ValueError, match="No training clips"):
        loading.carve_validation(splits, "toy", speaker=())


def test_load_of_the_generated_set_matches_its_reader():
    spec = CATALOG.get("embedded")
    data = datasets.load("embedded", num_examples=50, seed=2, batch_size=8)
    direct = loading.read_splits(spec, root=None, seed=2, bad_log=None, num_examples=50)
    for split in spec.splits:
        for key in ("image", "audio", "label"):
            np.testing.assert_array_equal(data.arrays[split][key], direct[split][key])
    assert data.audio_config.num_samples == spec.clip_samples and not data.audio_config.normalized
    assert data.audio_config.utterance_norm == "none"  # generated clips: no voices to remove
    assert data.num_examples == {"train": 40, "test": 10}
    with pytest.raises(ValueError, match="num_examples"):
        datasets.load("embedded", num_examples=0)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports in functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((KDZOO / package).rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f"{f}.") for f in forbidden):
                out.append(f"{path.relative_to(KDZOO.parent)}: {name}")
    return out


def test_layering_models_below_data_below_datasets():
    assert _offenders("models", ("kdzoo.data", "kdzoo.datasets")) == []
    above = ("distillation", "evaluation", "serving", "distribute", "recipe", "cli")
    assert _offenders("datasets", tuple(f"kdzoo.{m}" for m in (*above, "demo", "studies"))) == []
    # The catalog sits below the readers: it imports none of them, not even lazily.
    assert {n for n in _imports(KDZOO / "datasets" / "catalog.py") if n.startswith("kdzoo")} == {
        "kdzoo.datasets.download",
        "kdzoo.datasets.download.Resource",
        "kdzoo.defaults",
        "kdzoo.defaults.DEFAULTS",
    }


def test_spec_is_frozen():
    spec = CATALOG.get("sst2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.sequence_length = 3
    with pytest.raises(TypeError):
        spec.files["train"] = "elsewhere"


def test_fit_preprocessing_resolves_auto_utterance_norm_as_load_does():
    """A spec whose default is ``"auto"`` (FSDD) fitted directly, without ``load``: "auto"
    is resolved for the split (not handed to ``AudioConfig``, which would refuse it)."""
    spec = CATALOG.get("fsdd")
    assert spec.utterance_norm == "auto"
    train = {"audio": np.random.default_rng(0).normal(size=(4, spec.clip_samples)).astype("f4")}
    official = loading.fit_preprocessing(spec, train, ("audio",))
    held_out = loading.fit_preprocessing(spec, train, ("audio",), fsdd_split="speaker:george")
    told = loading.fit_preprocessing(spec, train, ("audio",), utterance_norm="mean")
    assert official.audio_config.utterance_norm == "none"
    assert held_out.audio_config.utterance_norm == "mean_var"
    assert told.audio_config.utterance_norm == "mean"
    with pytest.raises(ValueError, match="utterance_norm must be one of .*got 'cmvn'"):
        loading.fit_preprocessing(spec, train, ("audio",), utterance_norm="cmvn")

"""TFDS: kdzoo's builders and TFDS's own ``spoken_digit``, all prepared offline from the data
root ($KDZOO_DATA_DIR). Missing data fails these tests; it never skips them."""

import collections
import importlib
import re
import socket

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import kdzoo.datasets.tfds as kb
from kdzoo.data import AudioConfig, log_mel_spectrogram
from kdzoo.data.audio import fix_length
from kdzoo.datasets import av_digits, fsdd, mnist, sst2
from kdzoo.datasets.root import ENV_VAR, DataNotFoundError, data_root

SPOKEN_DIGIT_MANUAL = "fsdd_tfds_manual"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any socket connection is an error: every build here must be offline."""

    def refuse(self, address):
        raise OSError(f"test_tfds: network access attempted ({address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(scope="module")
def shared_root():
    """The data root; the tests taking it are marked ``requires_data``."""
    return data_root()


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tensorflow_datasets")


@pytest.fixture(scope="module")
def fsdd_arrays(shared_root):
    """FSDD's official split, decoded once for the module (about 4 s on 2 cores).

    While this module runs, ``fsdd.load_arrays`` for the same split, root and config returns
    copies of that real loader output, so the ``kdzoo_fsdd`` and ``kdzoo_av_digits`` builders
    and the AV loader do not decode the 3,000 wavs again. The first call ran with
    ``skip_bad=False``, so the files are clean and a ``bad_log`` passed later has nothing to
    miss. Other arguments reach the real loader.
    """
    data = fsdd.load_arrays("official", root=shared_root)
    real = fsdd.load_arrays

    def cached(split="official", root=None, config=None, **kwargs):
        same = split == "official" and data_root(root) == shared_root
        if same and config in (None, AudioConfig()) and not kwargs.get("skip_bad"):
            return {s: {k: v.copy() for k, v in arrays.items()} for s, arrays in data.items()}
        return real(split, root=root, config=config, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fsdd, "load_arrays", cached)
        yield data


def _load(name, split, data_dir):
    ds = tfds.load(name, split=split, data_dir=data_dir, download=False)
    return list(tfds.as_numpy(ds))


def test_build_registers_and_validates_names(tmp_path):
    assert set(kb.NAMES) == {
        "kdzoo_av_digits",
        "kdzoo_fsdd",
        "kdzoo_mnist",
        "kdzoo_sms_spam",
        "kdzoo_sst2",
    }
    assert set(kb.NAMES) <= set(tfds.list_builders(with_community_datasets=False))
    for name in kb.NAMES:
        builder_cls = tfds.builder_cls(name)
        assert builder_cls.VERSION and str(builder_cls.VERSION) in builder_cls.RELEASE_NOTES
        assert "data root" in builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS
    with pytest.raises(ValueError, match="Valid names: kdzoo_av_digits"):
        kb.build("mnist", tmp_path)
    with pytest.raises(TypeError, match="root="):
        kb.build("kdzoo_sst2", tmp_path, manual_dir=str(tmp_path))


def test_builders_take_their_names_and_facts_from_the_catalog(tmp_path):
    from kdzoo.datasets.catalog import CATALOG

    assert kb.NAMES == tuple(f"kdzoo_{spec.name}" for spec in CATALOG if not spec.generated)
    for name, builder_cls in kb.BUILDERS.items():
        spec = builder_cls.SPEC
        assert spec is CATALOG.get(name.removeprefix("kdzoo_"))
        assert tfds.builder_cls(name) is builder_cls
        info = builder_cls(data_dir=tmp_path).info
        assert tuple(info.features["label"].names) == spec.class_names
        assert info.description.startswith(spec.description)
        assert (info.citation, info.homepage) == (spec.citation, spec.homepage)
        for path in CATALOG.files(spec.name):
            assert path in builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS
        assert spec.source in builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_dtype_conversions_are_exact_or_refuse():
    from kdzoo.datasets.tfds._base import to_int16, to_uint8

    pcm = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    np.testing.assert_array_equal(to_int16(pcm.astype(np.float32) / 32768), pcm)
    pixels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(pixels.astype(np.float32) / 255.0), pixels)
    with pytest.raises(ValueError, match="not 16-bit PCM"):
        to_int16(np.array([0.5 / 32768], dtype=np.float32))
    with pytest.raises(ValueError, match="outside"):
        to_int16(np.array([1.0], dtype=np.float32))
    with pytest.raises(ValueError, match="not 8-bit"):
        to_uint8(np.array([0.5 / 255], dtype=np.float32))


@pytest.mark.slow
@pytest.mark.requires_data("fsdd")
def test_kdzoo_fsdd_matches_loader(shared_root, tfds_dir, fsdd_arrays):
    builder = kb.build("kdzoo_fsdd", tfds_dir, root=shared_root)
    info = builder.info
    assert {k: v.num_examples for k, v in info.splits.items()} == {"train": 2700, "test": 300}
    assert info.features["label"].names == [str(d) for d in range(10)]
    assert "CC BY-SA 4.0" in info.description and "Jakobovski" in info.citation
    names = kb.kdzoo_fsdd.official_file_names(shared_root, fsdd_arrays)
    for split, count in (("train", 2700), ("test", 300)):
        examples = _load("kdzoo_fsdd", split, tfds_dir)
        assert len(examples) == count
        row = {n: i for i, n in enumerate(names[split])}
        assert sorted(ex["file_name"].decode() for ex in examples) == sorted(row)
        ref = fsdd_arrays[split]
        for ex in examples:
            i = row[ex["file_name"].decode()]
            assert ex["audio"].dtype == np.int16 and ex["audio"].shape == (8000,)
            np.testing.assert_array_equal(ex["audio"].astype(np.float32) / 32768, ref["audio"][i])
            assert ex["label"] == ref["label"][i]
            assert ex["speaker"].decode() == ref["speaker"][i]
        if split == "test":  # takes 0-4 of every speaker and digit
            assert {int(ex["file_name"].decode()[:-4].split("_")[2]) for ex in examples} == set(
                range(5)
            )


def _counter(images, labels):
    return collections.Counter(
        (image.tobytes(), int(label)) for image, label in zip(images, labels, strict=True)
    )


@pytest.mark.slow
@pytest.mark.requires_data("mnist")
def test_kdzoo_mnist_matches_loader(shared_root, tfds_dir):
    builder = kb.build("kdzoo_mnist", tfds_dir, root=shared_root)
    counts = {k: v.num_examples for k, v in builder.info.splits.items()}
    assert counts == {"train": 5000, "test": 10000}
    for split, count in counts.items():
        ds = tfds.load("kdzoo_mnist", split=split, data_dir=tfds_dir, download=False)
        batch = next(iter(tfds.as_numpy(ds.batch(count + 1))))
        assert batch["image"].dtype == np.uint8 and batch["image"].shape == (count, 28, 28, 1)
        ref = mnist.load_arrays(split, root=shared_root)
        images = batch["image"].astype(np.float32) / 255.0
        # Every example equals one of the loader's, with multiplicity: the same multiset.
        assert _counter(images, batch["label"]) == _counter(ref["image"], ref["label"])
        np.testing.assert_array_equal(np.bincount(batch["label"]), np.bincount(ref["label"]))


@pytest.mark.slow
@pytest.mark.requires_data("fsdd", "mnist")
def test_kdzoo_av_digits_matches_loader(shared_root, tfds_dir, fsdd_arrays):
    builder = kb.build("kdzoo_av_digits", tfds_dir, root=shared_root)
    counts = {k: v.num_examples for k, v in builder.info.splits.items()}
    assert counts == {"train": 2700, "test": 300}
    assert "label-paired" in builder.info.description
    data = av_digits.load_arrays(seed=kb.kdzoo_av_digits.SEED, root=shared_root)
    names = kb.kdzoo_fsdd.official_file_names(shared_root, data)
    for split, count in counts.items():
        examples = _load("kdzoo_av_digits", split, tfds_dir)
        assert len(examples) == count
        row = {n: i for i, n in enumerate(names[split])}
        ref = data[split]
        for ex in examples:
            i = row[ex["file_name"].decode()]
            np.testing.assert_array_equal(ex["image"].astype(np.float32) / 255.0, ref["image"][i])
            np.testing.assert_array_equal(ex["audio"].astype(np.float32) / 32768, ref["audio"][i])
            assert ex["label"] == ref["label"][i]


@pytest.mark.parametrize(
    ("name", "module", "class_names", "counts"),
    [
        ("kdzoo_sst2", "sst2", ("negative", "positive"), (6920, 872, 1821)),
        ("kdzoo_sms_spam", "sms_spam", ("ham", "spam"), (3902, 558, 1114)),
    ],
)
@pytest.mark.requires_data("sst2", "sms_spam")
def test_text_builders_match_loaders(shared_root, tfds_dir, name, module, class_names, counts):
    loader = importlib.import_module(f"kdzoo.datasets.{module}")
    builder = kb.build(name, tfds_dir, root=shared_root)
    assert tuple(builder.info.features["label"].names) == class_names
    ref = loader.load_arrays(root=shared_root)
    splits = ("train", "validation", "test")
    assert tuple(builder.info.splits[s].num_examples for s in splits) == counts
    for split in splits:
        examples = _load(name, split, tfds_dir)
        got = collections.Counter((ex["text"].decode(), int(ex["label"])) for ex in examples)
        want = collections.Counter(
            (str(t), int(y)) for t, y in zip(ref[split]["text"], ref[split]["label"], strict=True)
        )
        assert got == want and sum(got.values()) == len(ref[split]["label"])


@pytest.mark.requires_data("sst2")
def test_root_comes_from_manual_dir_else_data_root(shared_root, tmp_path, monkeypatch):
    # No manual dir: the builder reads kdzoo's data root ($KDZOO_DATA_DIR).
    monkeypatch.setenv(ENV_VAR, str(shared_root))
    builder = tfds.builder("kdzoo_sst2", data_dir=tmp_path / "from_env")
    builder.download_and_prepare()
    assert builder.info.splits["test"].num_examples == 1821
    # A manual dir wins over $KDZOO_DATA_DIR; an empty one names the missing files.
    empty = tmp_path / "empty_root"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match=re.escape(str(empty / sst2.FILES["train"]))):
        kb.build("kdzoo_sst2", tmp_path / "from_manual", root=empty)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Couldn't find ffmpeg or avconv:RuntimeWarning")
@pytest.mark.requires_data("fsdd", "fsdd_tfds_manual")
def test_spoken_digit_builds_offline_and_feeds_kdzoo_audio(shared_root, tmp_path):
    # pydub warns that ffmpeg is missing; TFDS decodes these wavs with pydub's own wav reader.
    builder = tfds.builder("spoken_digit", data_dir=tmp_path)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=str(shared_root / SPOKEN_DIGIT_MANUAL), try_download_gcs=False
        )
    )
    ds = tfds.load("spoken_digit", split="train", data_dir=tmp_path, download=False)
    assert builder.info.splits["train"].num_examples == 2500
    labels = ds.map(lambda ex: ex["label"]).batch(4096).get_single_element().numpy()
    assert np.bincount(labels).tolist() == [250] * 10
    config = AudioConfig()
    for ex in tfds.as_numpy(ds.take(8)):
        waveform = ex["audio"].astype(np.float32) / 32768.0
        assert np.abs(waveform).max() <= 1.0
        features = log_mel_spectrogram(tf.constant(waveform), config).numpy()
        assert features.shape == config.feature_shape
        assert np.isfinite(features).all()
        # v1.0.9's clips are FSDD v1.0.10's: same samples as kdzoo's own decoder.
        path = shared_root / "fsdd" / "recordings" / ex["audio/filename"].decode()
        np.testing.assert_array_equal(
            fix_length(tf.constant(waveform), config.num_samples).numpy(),
            fsdd.decode_wav(str(path), config),
        )


@pytest.mark.requires_data("sst2")
def test_a_prepared_dataset_is_reused_only_if_built_from_the_same_root_and_size(
    shared_root, tmp_path
):
    small = kb.build("kdzoo_sst2", tmp_path, root=shared_root, max_examples_per_split=5)
    assert small.info.splits["test"].num_examples == 5
    # Asking for the full set (or another root) must not quietly give the 5-example build.
    with pytest.raises(ValueError, match="max_examples_per_split': 5.*force_redownload"):
        kb.build("kdzoo_sst2", tmp_path, root=shared_root)
    empty = tmp_path / "empty_root"
    empty.mkdir()
    with pytest.raises(ValueError, match=re.escape(str(empty))):
        kb.build("kdzoo_sst2", tmp_path, root=empty, max_examples_per_split=5)
    full = kb.build("kdzoo_sst2", tmp_path, root=shared_root, download_mode="force_redownload")
    assert full.info.splits["test"].num_examples == 1821
    again = kb.build("kdzoo_sst2", tmp_path, root=shared_root)  # the same: reused
    assert again.info.splits["test"].num_examples == 1821
    assert _load("kdzoo_sst2", "test", tmp_path)[0]["text"]

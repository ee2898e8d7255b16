"""TFRecord writer/reader: exact round trips, shard order, atomic writes, clear errors."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kdzoo.data.tfrecord import read_spec, read_tfrecords, spec_path, write_tfrecords

TEXT = ["héllo 日本", "", "naïve ☃ café", "plain", "emoji 🎉", "tab\tnew\nline", "z"]


def _png(value: int) -> bytes:
    image = np.full((3, 2, 1), value, dtype=np.uint8)
    return tf.io.encode_png(image).numpy()


def _arrays(n=7):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((n, 16)).astype(np.float32)
    # Values that a lossy path would change: subnormal, -0.0, extremes, inf, nan.
    audio[0, :8] = [1e-38, -0.0, 3.4e38, -3.4e38, 1e-45, np.inf, -np.inf, np.nan]
    return {
        "image": rng.random((n, 4, 3, 2), dtype=np.float32),
        "audio": audio,
        "text": np.array(TEXT[:n]),
        "label": np.arange(n, dtype=np.int32) * 3 - 5,
    }


def _collect(dataset):
    rows = list(dataset.as_numpy_iterator())
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _assert_same(written, read):
    assert set(read) == set(written)
    for key, value in written.items():
        if value.dtype.kind == "U":
            assert [b.decode("utf-8") for b in read[key]] == value.tolist()
        elif value.dtype == object:
            assert read[key].tolist() == value.tolist()
        else:
            assert read[key].dtype == value.dtype, key
            # Bit-exact: compare the bytes (also covers -0.0 and NaN).
            assert read[key].tobytes() == value.tobytes(), key
            np.testing.assert_array_equal(read[key], value)


@pytest.mark.parametrize("num_shards", [1, 3])
def test_round_trip_is_exact_and_ordered(tmp_path, num_shards):
    arrays = _arrays()
    paths = write_tfrecords(arrays, tmp_path / "train", num_shards=num_shards)
    assert [os.path.basename(p) for p in paths] == [
        f"train-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)
    ]
    dataset = read_tfrecords(tmp_path / "train")
    spec = dataset.element_spec
    assert spec["image"].shape == (4, 3, 2) and spec["image"].dtype == tf.float32
    assert spec["audio"].shape == (16,) and spec["label"].dtype == tf.int32
    assert spec["text"].shape == () and spec["text"].dtype == tf.string
    _assert_same(arrays, _collect(dataset))
    # A glob and an explicit list give the same, in written order.
    _assert_same(arrays, _collect(read_tfrecords(str(tmp_path / "train-*.tfrecord"))))
    _assert_same(arrays, _collect(read_tfrecords(paths)))
    stored = read_spec(tmp_path / "train")
    assert stored["count"] == 7 and sum(s["count"] for s in stored["shards"]) == 7
    assert stored["features"]["audio"] == {"encoding": "raw", "dtype": "float32", "shape": [16]}


def test_encoded_png_bytes_and_uint8_round_trip(tmp_path):
    pngs = np.array([_png(v) for v in (0, 7, 255)], dtype=object)
    arrays = {
        "image": pngs,
        "pixels": np.arange(3 * 5 * 5 * 1, dtype=np.uint8).reshape(3, 5, 5, 1),
        "label": np.array([0, 1, 9], dtype=np.int64),
    }
    write_tfrecords(arrays, tmp_path / "png", num_shards=2, compression="GZIP")
    read = _collect(read_tfrecords(tmp_path / "png"))
    _assert_same(arrays, read)
    decoded = tf.io.decode_png(read["image"][2]).numpy()
    np.testing.assert_array_equal(decoded, np.full((3, 2, 1), 255, np.uint8))
    # A list of bytes keeps trailing NULs (NumPy's "S" dtype would drop them).
    write_tfrecords({"image": [b"ab\x00", b"\x00"]}, tmp_path / "nul")
    assert list(read_tfrecords(tmp_path / "nul").as_numpy_iterator()) == [
        {"image": b"ab\x00"},
        {"image": b"\x00"},
    ]


def test_parallel_reads_are_deterministic_and_file_sharding_works(tmp_path):
    arrays = {"label": np.arange(9, dtype=np.int32)}
    write_tfrecords(arrays, tmp_path / "d", num_shards=3)
    read = [int(r["label"]) for r in read_tfrecords(tmp_path / "d", num_parallel_reads=3)]
    again = [int(r["label"]) for r in read_tfrecords(tmp_path / "d", num_parallel_reads=3)]
    assert read == again == [0, 3, 6, 1, 4, 7, 2, 5, 8]  # round robin over the 3 files
    # What tf.distribute does with AutoShardPolicy.FILE: worker i gets whole file i.
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    dataset = read_tfrecords(tmp_path / "d").with_options(options)
    for worker in range(3):
        shard = _AutoShardDataset(dataset, num_workers=3, index=worker)
        assert [int(r["label"]) for r in shard] == [3 * worker, 3 * worker + 1, 3 * worker + 2]


def test_no_temporary_or_partial_files_remain(tmp_path):
    write_tfrecords(_arrays(), tmp_path / "a", num_shards=3)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_tfrecords(_arrays(), tmp_path / "a", num_shards=2)
    write_tfrecords(_arrays(), tmp_path / "a", num_shards=2, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == [
        "a-00000-of-00002.tfrecord",
        "a-00001-of-00002.tfrecord",
        "a.spec.json",
    ]
    # A failing write (a dtype that cannot be stored exactly) leaves nothing behind.
    with pytest.raises(TypeError, match="'bad'.*complex128"):
        write_tfrecords({"bad": np.zeros((2, 2), np.complex128)}, tmp_path / "b", 2)
    with pytest.raises(TypeError, match="'mixed'.*only bytes"):
        write_tfrecords({"mixed": np.array([b"x", "y"], dtype=object)}, tmp_path / "b")
    with pytest.raises(ValueError, match="differ in number of rows"):
        write_tfrecords({"a": np.zeros(2), "b": np.zeros(3)}, tmp_path / "b")
    assert len(os.listdir(tmp_path)) == 3


def test_missing_path_and_missing_key_errors_are_clear(tmp_path):
    pattern = str(tmp_path / "nothing-*.tfrecord")
    with pytest.raises(FileNotFoundError, match="nothing-\\*\\.tfrecord"):
        read_tfrecords(pattern)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_tfrecords(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="gone.tfrecord"):
        read_tfrecords([str(tmp_path / "gone.tfrecord")])

    paths = write_tfrecords(
        {"audio": np.zeros((2, 3), np.float32), "label": [1, 2]}, tmp_path / "k"
    )
    # Replace the shard with records that lack "label".
    with tf.io.TFRecordWriter(paths[0]) as writer:
        raw = np.zeros(3, np.float32).tobytes()
        feature = {"audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw]))}
        writer.write(
            tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        )
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        list(read_tfrecords(tmp_path / "k"))
    assert "key `label`" in err.value.message and paths[0] in err.value.message
    with pytest.raises(ValueError, match="unknown key"):
        read_tfrecords(tmp_path / "k", keys=["image"])
    os.remove(spec_path(tmp_path / "k"))
    with pytest.raises(FileNotFoundError, match="k.spec.json"):
        read_tfrecords(paths)
    spec = {"format": "kdzoo-tfrecord", "version": 1, "compression": None}
    spec["features"] = {"audio": {"encoding": "raw", "dtype": "float32", "shape": [3]}}
    (tmp_path / "elsewhere.json").write_text(json.dumps(spec))
    read = list(read_tfrecords(paths, spec=tmp_path / "elsewhere.json").as_numpy_iterator())
    np.testing.assert_array_equal(read[0]["audio"], np.zeros(3, np.float32))


def test_a_failed_overwrite_keeps_the_previous_write(tmp_path, monkeypatch):
    old = {"x": np.arange(4, dtype=np.int64)}
    write_tfrecords(old, tmp_path / "ds", num_shards=2)
    rename = tf.io.gfile.rename
    calls = []

    def failing(src, dst, overwrite=False):
        calls.append(dst)
        if len(calls) == 4:  # spec and 2 old shards moved aside; the 2nd new shard fails
            raise OSError("disk full (simulated)")
        return rename(src, dst, overwrite=overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", failing)
    for shards in (2, 3):
        calls.clear()
        with pytest.raises(OSError, match="simulated"):
            write_tfrecords({"x": np.arange(100, 106)}, tmp_path / "ds", shards, overwrite=True)
        assert sorted(os.listdir(tmp_path)) == [
            "ds-00000-of-00002.tfrecord",
            "ds-00001-of-00002.tfrecord",
            "ds.spec.json",
        ]
        assert [int(r["x"]) for r in read_tfrecords(tmp_path / "ds")] == [0, 1, 2, 3]
    monkeypatch.setattr(tf.io.gfile, "rename", rename)
    write_tfrecords({"x": np.arange(100, 106)}, tmp_path / "ds", 3, overwrite=True)
    assert [int(r["x"]) for r in read_tfrecords(tmp_path / "ds")] == list(range(100, 106))
    assert sorted(os.listdir(tmp_path)) == [f"ds-0000{i}-of-00003.tfrecord" for i in range(3)] + [
        "ds.spec.json"
    ]


@pytest.mark.parametrize("folder", ["plain", "run[1]*?"])
def test_files_kdzoo_did_not_write_are_never_replaced(tmp_path, folder):
    from kdzoo.files import NotOwnedError

    prefix = tmp_path / folder / "train"
    prefix.parent.mkdir()
    theirs = [tmp_path / folder / f"train-0000{i}-of-00004.tfrecord" for i in range(4)]
    for path in theirs:
        path.write_bytes(b"their data")
    for overwrite in (False, True):
        with pytest.raises(NotOwnedError, match=r"train-00000-of-00004.tfrecord \(and 3 more\)"):
            write_tfrecords({"x": np.arange(4)}, prefix, 2, overwrite=overwrite)
    assert all(path.read_bytes() == b"their data" for path in theirs)
    for path in theirs:
        path.unlink()
    # Glob characters in the folder name do not hide an earlier write from the check.
    write_tfrecords({"x": np.arange(4)}, prefix, 4)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_tfrecords({"x": np.arange(4)}, prefix, 2)
    write_tfrecords({"x": np.arange(10, 12)}, prefix, 2, overwrite=True)
    assert len(os.listdir(prefix.parent)) == 3
    (prefix.parent / "train.spec.json").write_text('{"not": "kdzoo"}')
    with pytest.raises(NotOwnedError, match=r"train.spec.json is not a spec that kdzoo wrote"):
        write_tfrecords({"x": np.arange(4)}, prefix, 2, overwrite=True)


def test_a_shard_with_another_record_count_is_an_error_naming_it(tmp_path):
    paths = write_tfrecords({"x": np.arange(50, dtype=np.int64)}, tmp_path / "t", 2)
    other = write_tfrecords({"x": np.arange(100, 105, dtype=np.int64)}, tmp_path / "o", 1)
    data = open(paths[1], "rb").read()
    with open(paths[1], "wb") as f:  # the last 5 of its 25 records cut off
        f.write(data[: len(data) // 25 * 20])
    for source in (tmp_path / "t", str(tmp_path / "t-*.tfrecord"), paths):
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            list(read_tfrecords(source))
        assert paths[1] in err.value.message and "[20] [record(s) but its spec lists] [25]" in (
            err.value.message
        )
    with open(paths[1], "wb") as f:
        f.write(open(other[0], "rb").read())
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[5\] \[record\(s\) but its spec"):
        list(read_tfrecords(tmp_path / "t", num_parallel_reads=2))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: "[1, 2]", "a spec is a JSON object"),
        (lambda s: '{"format": ', "not a JSON TFRecord spec"),
        (lambda s: {**s, "compression": "LZ4"}, "`compression` is 'LZ4'"),
        (lambda s: {**s, "features": {}}, "`features` must be a non-empty object"),
        (lambda s: _feature(s, dtype="float32"), "'label': dtype 'float32' cannot be read"),
        (lambda s: _feature(s, shape=None), "'label': `shape` must be a list"),
        (lambda s: _feature(s, shape=[2]), "'label': int64 values are scalars"),
        (lambda s: {**s, "shards": [{"file": "../x", "count": 1}]}, "`shards` must list"),
    ],
)
def test_a_bad_spec_is_an_error_naming_its_file_and_field(tmp_path, edit, match):
    write_tfrecords({"label": np.arange(3, dtype=np.int32)}, tmp_path / "s")
    path = spec_path(tmp_path / "s")
    changed = edit(json.loads(open(path).read()))
    with open(path, "w") as f:
        f.write(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(ValueError, match=match) as err:
        read_tfrecords(tmp_path / "s")
    assert "s.spec.json" in str(err.value)


def _feature(spec, **changes):
    features = {"label": {**spec["features"]["label"], **changes}}
    return {**spec, "features": features}


def test_key_names_and_bad_text_are_clear(tmp_path):
    write_tfrecords({"label": np.arange(3), "x": np.zeros((3, 2))}, tmp_path / "k")
    assert list(next(iter(read_tfrecords(tmp_path / "k", keys="label")))) == ["label"]
    with pytest.raises(ValueError, match="'text' is an empty list"):
        write_tfrecords({"text": []}, tmp_path / "e")
    with pytest.raises(ValueError, match=r"'text', row 1: .*surrogate"):
        write_tfrecords({"text": ["fine", "bad \ud800"]}, tmp_path / "u")
    assert sorted(os.listdir(tmp_path)) == ["k-00000-of-00001.tfrecord", "k.spec.json"]


def test_a_relative_prefix_is_overwritten_and_its_counts_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # glob spells the shards of prefix "c" as "./c-..."
    write_tfrecords({"x": np.arange(4)}, "c", 2)
    write_tfrecords({"x": np.arange(6)}, "c", 3, overwrite=True)
    assert [int(r["x"]) for r in read_tfrecords("c")] == list(range(6))
    with open("c-00002-of-00003.tfrecord", "wb"):
        pass  # emptied
    for source in ("c", "./c-*.tfrecord", "c-0000?-of-00003.tfrecord"):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0\] \[record\(s\) but"):
            list(read_tfrecords(source))

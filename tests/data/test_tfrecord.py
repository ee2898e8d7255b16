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

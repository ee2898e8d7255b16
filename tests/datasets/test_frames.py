"""Your own data: DataFrame, CSV and Parquet loaders, their splits, and bad rows named by
file, line and column."""

import logging

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from kdzoo.data.bad_input import BadExampleError
from kdzoo.datasets import from_csv, from_dataframe, from_parquet
from kdzoo.distillation import read_teacher_outputs


def _intents(n=60):
    rng = np.random.default_rng(0)
    words = {"billing": "invoice charge refund", "travel": "flight hotel trip", "other": "hello"}
    labels = rng.choice(sorted(words), n)
    return pd.DataFrame(
        {
            "uid": [f"u{i}" for i in range(n)],
            "utterance": [f"please {words[c]} {i}" for i, c in enumerate(labels)],
            "intent": labels,
        }
    )


def test_a_text_frame_gets_class_names_stratified_splits_and_ids(tmp_path):
    frame = _intents()
    data = from_dataframe(
        frame,
        label="intent",
        text="utterance",
        id="uid",
        test_fraction=0.2,
        batch_size=8,
        cache_dir=tmp_path,
    )
    assert data.class_names == ("billing", "other", "travel")
    assert set(data.arrays) == {"train", "validation", "test"}
    counts = {s: len(a["label"]) for s, a in data.arrays.items()}
    assert sum(counts.values()) == 60 and counts["test"] >= 10 and counts["validation"] >= 3
    ids = np.concatenate([a["id"] for a in data.arrays.values()])
    assert sorted(ids) == sorted(frame["uid"])  # every row once
    row = data.arrays["train"]
    first = frame.set_index("uid").loc[row["id"][0]]
    assert data.class_names[row["label"][0]] == first["intent"]
    assert row["text"][0] == first["utterance"]
    x, y = next(iter(data.splits["train"]))
    assert x["text"].shape == (8, data.text_vectorizer.sequence_length) and y.shape == (8,)
    # The vocabulary is learnt from train only: a word of the test rows alone is unknown.
    vocabulary = set(data.text_vectorizer.vocabulary)
    test_only = {w for t in data.arrays["test"]["text"] for w in t.split()} - {
        w for t in row["text"] for w in t.split()
    }
    assert test_only and not (test_only & vocabulary)
    # A teacher's outputs keyed by these ids line up with the rows.
    logits = np.random.default_rng(1).standard_normal((60, 3))
    with pytest.raises(ValueError, match=r"t\.npz: holds an object array, which kdzoo does not"):
        np.savez(tmp_path / "t.npz", ids=frame["uid"].to_numpy(object), logits=logits)
        read_teacher_outputs(tmp_path / "t.npz", ids=row["id"])
    np.savez(tmp_path / "t.npz", ids=frame["uid"].to_numpy(str), logits=logits)
    out = read_teacher_outputs(tmp_path / "t.npz", ids=row["id"], class_names=data.class_names)
    position = {u: i for i, u in enumerate(frame["uid"])}
    np.testing.assert_allclose(out["logits"], logits[[position[u] for u in row["id"]]], rtol=1e-6)


def _png(path, value, size=(6, 6), channels=1):
    image = np.full((*size, channels), value, np.uint8)
    path.write_bytes(tf.io.encode_png(image).numpy())


def _wav(path, seconds, rate=8000):
    samples = 0.1 * np.sin(np.arange(int(seconds * rate), dtype=np.float32))[:, None]
    path.write_bytes(tf.audio.encode_wav(samples, rate).numpy())


def _av_csv(tmp_path, rows=12):
    (tmp_path / "img").mkdir()
    (tmp_path / "wav").mkdir()
    lines = []
    for i in range(rows):
        _png(tmp_path / "img" / f"{i}.png", 20 * i)
        _wav(tmp_path / "wav" / f"{i}.wav", 0.25 + 0.05 * (i % 3))
        split = "test" if i >= 10 else "train"
        lines.append({"image": f"img/{i}.png", "audio": f"wav/{i}.wav", "y": i % 2, "split": split})
    path = tmp_path / "data.csv"
    pd.DataFrame(lines).to_csv(path, index=False)
    return path


def test_a_csv_of_image_and_wav_paths_loads_relative_to_its_folder(tmp_path):
    path = _av_csv(tmp_path)
    data = from_csv(path, label="y", image="image", audio="audio", split="split", sample_rate=8000)
    assert data.class_names == ("0", "1")
    assert sorted(data.arrays) == ["test", "train", "validation"]  # validation carved
    train = data.arrays["train"]
    assert train["image"].dtype == np.uint8 and train["image"].shape[1:] == (6, 6, 1)
    # Clips are padded to the longest one (0.35 s).
    assert train["audio"].shape[1] == 2800
    assert data.audio_config.sample_rate == 8000
    x, _ = next(iter(data.splits["test"]))
    assert set(x) == {"image", "audio"}
    # Resized on request.
    small = from_csv(
        path,
        label="y",
        image="image",
        split="split",
        image_size=(4, 4),
    )
    assert small.arrays["train"]["image"].shape[1:] == (4, 4, 1)


def test_bad_rows_name_the_file_line_and_column_or_are_skipped_and_counted(tmp_path, caplog):
    path = _av_csv(tmp_path)
    frame = pd.read_csv(path)
    frame.loc[2, "image"] = "img/none.png"
    frame.loc[4, "audio"] = "wav/none.wav"
    frame.loc[5, "y"] = np.nan
    frame.to_csv(path, index=False)
    kwargs = dict(label="y", image="image", audio="audio", split="split", sample_rate=8000)
    # The label column is checked first, then each modality's.
    with pytest.raises(BadExampleError, match=r"data\.csv: line 7, column 'y': no label"):
        from_csv(path, **kwargs)
    with caplog.at_level(logging.WARNING, logger="kdzoo.data"):
        data = from_csv(path, skip_bad=True, **kwargs)
    assert data.skipped == 3
    assert "data.csv: line 4, column 'image': no image file" in caplog.text
    assert "data.csv: line 6, column 'audio': no wav file" in caplog.text
    assert "skipped 3 bad example(s)" in caplog.text
    # Labels with a gap read as floats (1.0); the classes are still "0" and "1".
    assert data.class_names == ("0", "1")
    (tmp_path / "clean").mkdir()
    clean = _av_csv(tmp_path / "clean")
    with pytest.raises(BadExampleError, match=r"line 2, column 'audio': .* is 8000 Hz; the "):
        from_csv(clean, **{**kwargs, "sample_rate": 16000})


def test_wrong_columns_and_values_are_clear_errors(tmp_path):
    frame = _intents(20)
    with pytest.raises(ValueError, match=r"no column\(s\) \['text'\]; the columns are"):
        from_dataframe(frame, label="intent", text="text")
    with pytest.raises(ValueError, match="at least one of text=, image=, audio="):
        from_dataframe(frame, label="intent")
    frame.loc[3, "utterance"] = "  "
    with pytest.raises(BadExampleError, match=r"row 3, column 'utterance': empty text"):
        from_dataframe(frame, label="intent", text="utterance")
    frame.loc[3, "utterance"] = "ok"
    with pytest.raises(BadExampleError, match=r"row 0, column 'intent': label '.*' is not a class"):
        from_dataframe(frame, label="intent", text="utterance", class_names=["a", "b"])
    frame.loc[7, "uid"] = "u1"
    with pytest.raises(ValueError, match=r"row 7, column 'uid': id 'u1' repeats row 1"):
        from_dataframe(frame, label="intent", text="utterance", id="uid")


def test_parquet_with_given_splits_and_integer_labels(tmp_path):
    frame = _intents(30).assign(
        label=lambda f: f["intent"].map({"billing": 2, "other": 0, "travel": 1}),
        part=["train"] * 20 + ["validation"] * 5 + ["test"] * 5,
    )
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    data = from_parquet(path, label="label", text="utterance", split="part", cache_dir=tmp_path)
    assert data.class_names == ("0", "1", "2")
    assert {s: len(a["label"]) for s, a in data.arrays.items()} == {
        "train": 20,
        "validation": 5,
        "test": 5,
    }
    named = from_parquet(
        path,
        label="label",
        text="utterance",
        split="part",
        class_names=["other", "travel", "billing"],
        cache_dir=tmp_path,
    )  # integer labels with names: label k is class k
    assert named.class_names == ("other", "travel", "billing")
    np.testing.assert_array_equal(named.arrays["train"]["label"], data.arrays["train"]["label"])
    frame.loc[4, "part"] = "dev"
    frame.to_parquet(path)
    with pytest.raises(BadExampleError, match=r"d\.parquet: row 4, column 'part': split 'dev'"):
        from_parquet(path, label="label", text="utterance", split="part", cache_dir=tmp_path)


def _class_folders(root, classes=("cat", "dog"), per_class=6, split=None, suffix=".png"):
    for c, name in enumerate(classes):
        folder = root / (split or "") / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            if suffix == ".png":
                _png(folder / f"{i}.png", 30 * c + i)
            else:
                _wav(folder / f"{i}.wav", 0.25)


def test_a_folder_of_class_folders_loads_with_paths_as_ids(tmp_path, caplog):
    from kdzoo.datasets import from_folder

    _class_folders(tmp_path / "photos")
    (tmp_path / "photos" / "README.txt").write_text("not an image")
    (tmp_path / "photos" / "cat" / "notes.txt").write_text("not an image either")
    (tmp_path / "photos" / "dog" / ".DS_Store").write_bytes(b"\0")
    with caplog.at_level(logging.WARNING, logger="kdzoo.data"):
        data = from_folder(tmp_path / "photos", validation_fraction=0.34, test_fraction=0.34)
    assert data.class_names == ("cat", "dog")
    assert sorted(data.arrays) == ["test", "train", "validation"]
    ids = np.concatenate([a["id"] for a in data.arrays.values()])
    assert sorted(ids) == sorted(f"{c}/{i}.png" for c in ("cat", "dog") for i in range(6))
    for arrays in data.arrays.values():  # every file keeps its own folder's label
        names = [data.class_names[y] for y in arrays["label"]]
        assert [i.split("/")[0] for i in arrays["id"]] == names
    assert "ignored 2 file(s)" in caplog.text and "README.txt" in caplog.text
    assert data.arrays["train"]["image"].shape[1:] == (6, 6, 1)


def test_a_folder_with_split_folders_and_wav_files(tmp_path):
    from kdzoo.datasets import from_folder

    for split in ("train", "test"):
        _class_folders(tmp_path / "speech", ("no", "yes"), 4, split=split, suffix=".wav")
    data = from_folder(tmp_path / "speech", sample_rate=8000)
    assert data.class_names == ("no", "yes")
    assert data.num_examples["test"] == 8  # as given
    assert data.num_examples["train"] + data.num_examples["validation"] == 8
    assert all(i.startswith("test/") for i in data.arrays["test"]["id"])
    assert "audio" in data.arrays["train"]


def test_folder_errors_name_the_folder_or_file(tmp_path):
    from kdzoo.datasets import from_folder

    with pytest.raises(FileNotFoundError, match="nowhere: no such folder"):
        from_folder(tmp_path / "nowhere")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no image .* or wav files in <class>/ folders"):
        from_folder(tmp_path / "empty")
    _class_folders(tmp_path / "mixed")
    _wav(tmp_path / "mixed" / "cat" / "x.wav", 0.25)
    with pytest.raises(ValueError, match="both images and wav files"):
        from_folder(tmp_path / "mixed")
    _class_folders(tmp_path / "bad")
    (tmp_path / "bad" / "dog" / "3.png").write_bytes(b"not a png")
    with pytest.raises(BadExampleError, match=r"bad/dog/3\.png: not a decodable image"):
        from_folder(tmp_path / "bad")
    data = from_folder(tmp_path / "bad", skip_bad=True)
    assert data.skipped == 1


def test_training_rows_without_a_label_become_the_transfer_set(tmp_path):
    frame = _intents(90)
    frame.loc[frame.index[::3], "intent"] = None  # 30 rows nobody labelled
    frame.loc[0, "utterance"] = "please zanzibar 0"  # a word only an unlabelled row has
    with pytest.raises(BadExampleError, match=r"row 0, column 'intent': no label"):
        from_dataframe(frame, label="intent", text="utterance", cache_dir=tmp_path)
    data = from_dataframe(
        frame,
        label="intent",
        text="utterance",
        id="uid",
        test_fraction=0.2,
        unlabelled=True,
        batch_size=8,
        cache_dir=tmp_path,
    )
    transfer = data.arrays["transfer"]
    assert len(transfer["label"]) == 30 and (transfer["label"] == -1).all()
    assert sorted(transfer["id"]) == sorted(frame["uid"][::3])
    for split in ("train", "validation", "test"):  # held-out splits come from labelled rows
        assert (data.arrays[split]["label"] >= 0).all()
    assert sum(len(a["label"]) for a in data.arrays.values()) == 90
    # The transfer rows' inputs are training inputs: their words are in the vocabulary.
    assert "zanzibar" in data.text_vectorizer.vocabulary
    # A validation or test row without a label is still a bad row.
    given = frame.assign(split=["test" if i == 3 else "train" for i in range(90)])
    with pytest.raises(BadExampleError, match=r"row 3, column 'intent': no label"):
        from_dataframe(
            given,
            label="intent",
            text="utterance",
            split="split",
            unlabelled=True,
            cache_dir=tmp_path,
        )


def _customers(n=40):
    rng = np.random.default_rng(3)
    plan = rng.choice(["basic", "pro"], n)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 70, n).astype(float),
            "spend": rng.normal(100, 20, n),
            "plan": plan,
            "seats": rng.integers(1, 4, n),
            "churn": np.where(plan == "pro", "stays", "leaves"),
            "split": ["train"] * (n - 10) + ["validation"] * 5 + ["test"] * 5,
        }
    )


def test_numeric_and_categorical_columns_make_a_tabular_input_fitted_on_train(tmp_path, caplog):
    frame = _customers()
    frame.loc[35, "plan"] = "enterprise"  # a test row with a plan training never saw
    frame.loc[36, "age"] = 1000.0  # a test outlier must not move the statistics
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.INFO, logger="kdzoo.data"):
        data = from_csv(
            path, label="churn", numeric=["age", "spend"], categorical=["plan", "seats"],
            split="split",
        )  # fmt: skip
    train = frame[frame["split"] == "train"]
    config = data.tabular_config
    assert data.modalities == ("tabular",)
    np.testing.assert_allclose(config.mean, [train["age"].mean(), train["spend"].mean()])
    np.testing.assert_allclose(config.std, [train["age"].std(ddof=0), train["spend"].std(ddof=0)])
    assert config.vocabularies == (("basic", "pro"), ("1", "2", "3"))
    assert data.model_shapes() == {"tabular_shape": (2 + 3 + 4,)}
    assert "test rows with a category unseen in training (or missing), per column: {'plan': 1}" in (
        caplog.text
    )
    x, y = next(iter(data.pipeline("test", batch_size=5)))
    assert x["tabular"].shape == (5, 9)
    # Row 35 is the first test row: its plan one-hot is the unseen slot.
    np.testing.assert_array_equal(x["tabular"].numpy()[0, 2:5], [1, 0, 0])
    assert data.class_names == ("leaves", "stays")


def test_bad_numbers_name_the_line_and_column_or_are_skipped(tmp_path, caplog):
    frame = _customers().astype({"age": object})
    frame.loc[4, "age"] = "forty"
    frame.loc[6, "spend"] = np.nan
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    kwargs = dict(label="churn", numeric=["age", "spend"], categorical=["plan"], split="split")
    with pytest.raises(BadExampleError, match=r"customers\.csv: line 6, column 'age': 'forty' is"):
        from_csv(path, **kwargs)
    with caplog.at_level(logging.WARNING, logger="kdzoo.data"):
        data = from_csv(path, skip_bad=True, **kwargs)
    assert data.skipped == 2
    assert "line 8, column 'spend': no value (a missing number)" in caplog.text
    assert data.num_examples["train"] == 28


def test_tabular_column_mistakes_are_clear_errors(caplog):
    frame = _customers()
    with pytest.raises(ValueError, match=r"no column\(s\) \['income'\]"):
        from_dataframe(frame, label="churn", numeric=["age", "income"])
    with pytest.raises(ValueError, match=r"\['age'\] are both numeric= and categorical="):
        from_dataframe(frame, label="churn", numeric=["age"], categorical=["age", "plan"])
    with caplog.at_level(logging.WARNING, logger="kdzoo.data"):
        from_dataframe(
            frame.rename(columns={"spend": "monthly spend"}),
            label="churn", numeric=["monthly spend"], split="split",
        )  # fmt: skip
    assert "['monthly spend'] cannot name serving inputs" in caplog.text
    # The label, the id or the split as a feature would leak it into the model.
    with pytest.raises(ValueError, match="'churn' is the label column and a categorical"):
        from_dataframe(frame, label="churn", numeric=["age"], categorical=["churn"])
    with pytest.raises(ValueError, match="'split' is the split column and a categorical"):
        from_dataframe(frame, label="churn", categorical=["split"], split="split")


def test_pandas_missing_values_are_missing_in_tabular_columns():
    frame = _customers().convert_dtypes()  # nullable dtypes: pd.NA, not NaN
    frame["plan"] = frame["plan"].astype("string")
    frame.loc[0, "plan"] = pd.NA
    frame["seats"] = frame["seats"].astype("Int64")
    frame.loc[1, "seats"] = pd.NA
    data = from_dataframe(frame, label="churn", numeric=["age"], categorical=["plan", "seats"],
                          split="split")  # fmt: skip
    assert data.tabular_config.vocabularies == (("basic", "pro"), ("1", "2", "3"))
    frame.loc[2, "age"] = pd.NA
    with pytest.raises(BadExampleError, match=r"row 2, column 'age': no value"):
        from_dataframe(frame, label="churn", numeric=["age"], split="split")


def test_large_numbers_keep_their_differences():
    frame = _customers().assign(when=1.7e9 + np.arange(40.0))  # unix timestamps, 1 s apart
    data = from_dataframe(frame, label="churn", numeric=["when"], split="split")
    x, _ = next(iter(data.pipeline("train", training=False, batch_size=30)))
    steps = np.diff(x["tabular"].numpy()[:, 0])
    np.testing.assert_allclose(steps, 1 / data.tabular_config.std[0], rtol=1e-4)


def test_an_empty_frame_is_named_not_a_reshape_error(tmp_path):
    empty = _intents(10).iloc[:0]
    with pytest.raises(ValueError, match=r"DataFrame 'chats' has its header but no rows"):
        from_dataframe(empty, label="intent", categorical=["utterance"], name="chats")
    path = tmp_path / "chats.csv"
    empty.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"chats\.csv has its header but no rows"):
        from_csv(path, label="intent", text="utterance", cache_dir=tmp_path)


def test_a_label_column_with_one_class_is_refused_for_classification_only(tmp_path):
    frame = _intents(20).assign(intent="billing")
    frame.loc[frame.index[::4], "intent"] = None  # unlabelled rows are not a second class
    message = r"DataFrame 'chats' has only 'billing' in its label column 'intent'; a classifier"
    with pytest.raises(ValueError, match=message):
        from_dataframe(frame, label="intent", text="utterance", name="chats", unlabelled=True)
    with pytest.raises(ValueError, match=message):  # the classes given do not count: the rows do
        from_dataframe(
            frame.dropna(),
            label="intent",
            text="utterance",
            name="chats",
            class_names=["billing", "travel"],
        )
    # Tasks whose label column holds one value are not classifications: they load.
    frame = frame.dropna().assign(genre="rock", score=np.linspace(0.0, 1.0, 15))
    for label, task in (("genre", "multi_label"), ("score", "regression")):
        data = from_dataframe(frame, label=label, text="utterance", task=task, cache_dir=tmp_path)
        assert data.task.kind == task

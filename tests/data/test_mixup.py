"""Consistent mixup (``kdzoo.data.mixup``): the same weight and partner in every modality,
seeded, labels masked on mixed rows, and a Distiller that trains on such batches."""

import numpy as np
import pytest
import tensorflow as tf

from kdzoo.data.mixup import mix_batches, mixing
from kdzoo.labels import UNLABELLED


def _batches(n=12, batch=6, weights=False):
    rng = np.random.default_rng(0)
    x = {
        "image": rng.random((n, 4, 4, 1)).astype("float32"),
        "audio": rng.standard_normal((n, 5, 3)).astype("float32"),
        "text": rng.integers(1, 50, (n, 7)).astype("int32"),
    }
    y = rng.integers(0, 3, n).astype("int32")
    parts = (x, y, np.linspace(0.5, 1.0, n).astype("float32")) if weights else (x, y)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch), parts


def _first(dataset):
    return [tuple(t.numpy() if not isinstance(t, dict) else {k: v.numpy() for k, v in t.items()}
                  for t in element) for element in dataset]  # fmt: skip


def test_every_float_input_gets_the_same_weight_and_partner():
    dataset, (x, y) = _batches()
    mixed = _first(mix_batches(dataset, alpha=0.4, seed=3))
    # Batch i of the first pass: the i-th value of the seeded random stream, and i.
    stream = tf.data.Dataset.random(seed=3, rerandomize_each_iteration=True)
    values = [int(v) for v in stream.take(len(mixed))]
    for index, (mx, my) in enumerate(mixed):
        rows = slice(6 * index, 6 * index + 6)
        draws = mixing(6, 0.4, tf.constant([values[index], index], tf.int64))
        lam, partner, mixed_rows = (t.numpy() for t in draws)
        assert ((lam > 0) & (lam < 1))[mixed_rows].all() and sorted(partner) == list(range(6))
        for key in ("image", "audio"):
            given = x[key][rows]
            w = lam.reshape([-1] + [1] * (given.ndim - 1))
            np.testing.assert_allclose(mx[key], w * given + (1 - w) * given[partner], atol=1e-6)
        np.testing.assert_array_equal(mx["text"], x["text"][rows])  # ids ride unmixed
        # A row drawn as its own partner is unchanged and keeps its label.
        np.testing.assert_array_equal(my, np.where(mixed_rows, UNLABELLED, y[rows]))


def test_the_mixes_are_seeded():
    dataset, _ = _batches()
    a, b = (_first(mix_batches(dataset, seed=1)) for _ in range(2))
    c = _first(mix_batches(dataset, seed=2))
    for (xa, _), (xb, _), (xc, _) in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(xa["image"], xb["image"])
        assert not np.allclose(xa["image"], xc["image"])


def test_every_pass_mixes_afresh_and_the_passes_are_seeded():
    dataset, _ = _batches()
    mixed = mix_batches(dataset, seed=1)
    first, second = _first(mixed), _first(mixed)  # two epochs of one pipeline
    assert not np.allclose(first[0][0]["image"], second[0][0]["image"])
    again = mix_batches(dataset, seed=1)  # another run of the same pipeline
    for one, other in zip(first + second, _first(again) + _first(again), strict=True):
        np.testing.assert_array_equal(one[0]["image"], other[0]["image"])


def test_the_weight_is_unbiased_for_a_small_alpha():
    # float32 gamma draws at alpha = 0.02 underflow to 0 in a third of rows; a / (a + b)
    # with a clamped sum then gave a mean weight of 0.34, not Beta(alpha, alpha)'s 0.5.
    for seed in range(3):
        lam, _, mixed = mixing(20000, 0.02, tf.constant([seed, 0], tf.int64))
        lam = lam.numpy()[mixed.numpy()]
        assert abs(lam.mean() - 0.5) < 0.02, lam.mean()
        assert np.isfinite(lam).all() and ((lam >= 0) & (lam <= 1)).all()


def test_unmixed_rows_keep_their_labels_and_weights_ride_along():
    dataset, (x, y, w) = _batches(weights=True)
    out = _first(mix_batches(dataset, rate=0.5, seed=0, keys=["audio"]))
    labels = np.concatenate([e[1] for e in out])
    kept = labels != UNLABELLED
    assert 0 < kept.sum() < len(y)
    np.testing.assert_array_equal(labels[kept], y[kept])
    np.testing.assert_array_equal(np.concatenate([e[2] for e in out]), w)
    image = np.concatenate([e[0]["image"] for e in out])
    np.testing.assert_array_equal(image, x["image"])  # not among `keys`
    audio = np.concatenate([e[0]["audio"] for e in out])
    np.testing.assert_array_equal(audio[kept], x["audio"][kept])
    assert not np.allclose(audio[~kept], x["audio"][~kept])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"alpha": 0}, "`alpha` must be > 0"),
        ({"rate": 1.5}, r"`rate` must be in \(0, 1\]"),
        ({"keys": ["text"]}, r"\['text'\] is not among them"),
        ({"keys": ["depth"]}, r"\['depth'\] is not among them"),
    ],
)
def test_bad_options_are_named(options, message):
    dataset, _ = _batches()
    with pytest.raises(ValueError, match=message):
        mix_batches(dataset, **options)


def test_batches_mixup_cannot_serve_are_refused():
    dataset, _ = _batches()
    cached = dataset.map(lambda x, y: ({**x, "teacher_outputs": {"logits": x["image"]}}, y))
    with pytest.raises(ValueError, match=r"\['teacher_outputs'\] hold\(s\) a nested structure"):
        mix_batches(cached)
    one_hot = dataset.map(lambda x, y: (x, tf.one_hot(y, 3)))
    with pytest.raises(ValueError, match=r"integer class labels of shape \[batch\]"):
        mix_batches(one_hot)
    # uint8 labels (keras.datasets') would turn -1 into 255; float targets into a value.
    for dtype in (tf.uint8, tf.float32):
        cast = dataset.map(lambda x, y, d=dtype: (x, tf.cast(y, d)))
        with pytest.raises(ValueError, match="signed integer class labels.*Cast unsigned"):
            mix_batches(cast)


def test_batches_and_streams_draw_independently():
    # Each batch's weights, partners and mask come from its own split of (seed, index):
    # no batch reuses a neighbour's draw, and seed s + 1 is not seed s shifted.
    draws = {
        (s, i): [t.numpy() for t in mixing(64, 1.0, tf.constant([s, i], tf.int64), 0.5)]
        for s in (0, 1)
        for i in (0, 1)
    }
    lams = [d[0] for d in draws.values()]
    for a in range(len(lams)):
        for b in range(a + 1, len(lams)):
            assert not np.allclose(lams[a], lams[b])
    lam, partner, mixed = draws[(0, 0)]
    assert (partner[mixed] != np.arange(64)[mixed]).all()
    assert (lam[~mixed] == 1).all()


def test_a_distiller_trains_its_teacher_terms_on_mixed_batches():
    import keras

    from kdzoo.distillation import Distiller, LossTerm

    keras.utils.set_random_seed(0)

    def model(key, shape):
        inputs = keras.Input(shape, name=key)
        return keras.Model({key: inputs}, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))

    teacher, student = model("image", (4, 4, 1)), model("audio", (5, 3))
    distiller = Distiller(
        teacher=teacher,
        student=student,
        terms=[LossTerm("ce", 0.5, target="labels"), LossTerm("kd", 0.5)],
    )
    distiller.compile(optimizer="sgd")
    dataset, _ = _batches()
    before = [w.copy() for w in student.get_weights()]
    # The first pass of a pipeline mixes the same way in every run, so another instance's
    # first pass shows which rows fit's one epoch keeps labelled.
    labelled = sum(int((y.numpy() != UNLABELLED).sum()) for _, y in mix_batches(dataset))
    history = distiller.fit(mix_batches(dataset), epochs=1, verbose=0).history
    kd = history["soft_target_kl_divergence_loss"][0]
    assert np.isfinite(kd) and kd > 0
    ce = history["hard_label_crossentropy_loss"][0]
    assert ce == 0.0 if labelled == 0 else ce > 0  # CE only where a row kept its label
    assert any(not np.allclose(a, b) for a, b in zip(before, student.get_weights(), strict=True))

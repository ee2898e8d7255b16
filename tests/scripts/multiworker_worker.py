"""One process of the multi-worker test (tests/recipe/test_strategies.py); writes JSON + weights.

Usage: ``python multiworker_worker.py OUT_DIR WORK_DIR`` with ``$TF_CONFIG`` naming this
task (a worker), or without it for the single-process reference run. In a worker:

1. the strategy resolved by ``"auto"`` must be multi-worker;
2. un-patched Keras ``fit`` must still fail in both known places (``kdzoo._keras_compat``);
3. a dataset read from TFRecord shards is sharded by file: each worker reads whole files;
4. ``kdzoo.recipe.distil`` runs one teacher and one distillation epoch, with backups and
   an export that only the chief may write.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kdzoo import distribute  # noqa: E402

CONFIG = {
    "num_examples": 160,  # 128 training rows: 8 steps of 16
    "global_batch_size": 16,
    "teacher_epochs": 1,
    "epochs": 1,
    "candidates": ("ce:0.5,kd:0.5@t=4",),
    "scratch": ("scratch",),
    # No dropout draws: 2 workers and 1 process must see the same computation.
    "teacher_overrides": {"dropout": 0.0},
    # SGD and centred inputs keep float32 rounding at rounding level (tests/scripts/fit_parity.py).
    "optimizer": "sgd",
    "learning_rate": 0.05,
    "normalize_audio": True,
    "verbose": 0,
}


def keras_failures(strategy):
    """Messages of un-patched ``fit`` (failure 1) and ``fit`` with only the build fixed
    (failure 2); None where ``fit`` ran."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kdzoo._keras_compat import enable_multi_worker_fit

    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(16) % 3)).batch(8)
    messages = []
    for patch in (None, {"logs": False}):
        with strategy.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        if patch:
            enable_multi_worker_fit(model, **patch)
        try:
            model.fit(data, epochs=1, verbose=0)
            messages.append(None)
        except ValueError as err:
            text = str(err)  # the middle holds a whole batch: keep both ends
            messages.append(text if len(text) < 400 else f"{text[:150]} [...] {text[-250:]}")
    return messages


def file_shards(strategy, prefix):
    """Labels this worker reads from a FILE-sharded TFRecord dataset."""
    from kdzoo.data.tfrecord import read_tfrecords

    data = read_tfrecords(prefix).map(lambda e: e["label"]).batch(4)
    labels = []
    for batch in distribute.distribute_dataset(data, strategy):
        for local in strategy.experimental_local_results(batch):
            labels.extend(int(v) for v in local.numpy())
    return {"policy": int(distribute.shard_policy(data)), "labels": labels}


def main():
    out_dir, work_dir = sys.argv[1], sys.argv[2]
    workers = distribute.tf_config_workers()
    choice = distribute.select_strategy("auto" if workers else "default")  # first: no op yet
    import numpy as np

    from kdzoo import datasets
    from kdzoo.recipe import DistilConfig, distil

    report = {"kind": choice.kind, "replicas": choice.num_replicas}
    if workers:
        report["keras_failures"] = keras_failures(choice.strategy)
        report["file_shards"] = file_shards(choice.strategy, os.path.join(work_dir, "shards"))
    config = DistilConfig(
        **CONFIG,
        backup_dir=os.path.join(work_dir, "backup"),
        export_dir=os.path.join(work_dir, "export"),
    )
    result = distil(config, strategy=choice)
    report.update(
        is_chief=result.is_chief,
        strategy=result.strategy,
        export_path=result.export_path,
        epochs_run=result.epochs_run,
        history={p: {k: v[-1] for k, v in h.items()} for p, h in result.history.items()},
    )
    name = f"worker{json.loads(os.environ['TF_CONFIG'])['task']['index']}" if workers else "single"
    test = datasets.load("embedded", num_examples=160, normalize_audio=True, split="test")
    batch = next(iter(test.splits["test"]))[0]
    teacher_logits = result.teacher({t.name: batch[t.name] for t in result.teacher.inputs})
    np.savez(
        os.path.join(out_dir, f"{name}.npz"),
        teacher_logits=np.asarray(teacher_logits),
        **{f"student_{i}": np.asarray(w) for i, w in enumerate(result.student.get_weights())},
    )
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()

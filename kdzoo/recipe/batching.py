"""Training batches that make a resumed run equal the uninterrupted one."""

from __future__ import annotations

import tensorflow as tf

from kdzoo import distribute


def epoch_batches(rows, num_rows, batch_size, seed, first_epoch, epochs):
    """Batches of epochs ``first_epoch..epochs-1``; epoch ``e`` is the permutation seeded
    by ``(seed, e)``, whatever epoch this process started at."""
    steps = num_rows // batch_size
    first_epoch = min(first_epoch, epochs - 1)  # a finished phase still builds (0 epochs run)

    def one_epoch(epoch):
        order_seed = seed * 1_000_003 + epoch
        shuffled = rows.shuffle(num_rows, seed=order_seed, reshuffle_each_iteration=False)
        return shuffled.batch(batch_size, drop_remainder=True)

    parts = [one_epoch(epoch) for epoch in range(first_epoch, epochs)]
    order = tf.data.Dataset.range(len(parts)).flat_map(
        lambda i: tf.data.Dataset.from_tensors(i).repeat(steps)
    )
    data = tf.data.Dataset.choose_from_datasets(parts, order)
    data = data.apply(tf.data.experimental.assert_cardinality(len(parts) * steps))
    return distribute.with_shard_policy(data.prefetch(tf.data.AUTOTUNE)), steps

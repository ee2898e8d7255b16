"""Training batches that make a resumed run equal the uninterrupted one."""

from __future__ import annotations

import tensorflow as tf

from kdzoo import distribute
from kdzoo.data.options import finish


def epoch_batches(rows, num_rows, batch_size, seed, first_epoch, epochs):
    """Batches of epochs ``first_epoch..epochs-1``; epoch ``e`` takes the rows in the
    permutation seeded by ``(seed, e)`` (stateless), whatever epoch this process started at.

    The (preprocessed) rows are held in memory once; each epoch draws a permutation of row
    indices and gathers its batches from them, so memory does not grow with the number of
    epochs (one shuffled copy per epoch did: a 60-epoch budget held 60 shuffle buffers).
    """
    steps = num_rows // batch_size
    first_epoch = min(first_epoch, epochs - 1)  # a finished phase still builds (0 epochs run)
    table = rows.batch(num_rows).get_single_element()  # every row, one tensor per key
    seed = int(seed)

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_rows, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)

    def gather(indices):
        return tf.nest.map_structure(lambda values: tf.gather(values, indices), table)

    data = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch).map(gather)
    data = data.apply(tf.data.experimental.assert_cardinality((epochs - first_epoch) * steps))
    return distribute.with_shard_policy(finish(data)), steps

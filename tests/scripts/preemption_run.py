"""One run of the kill-and-resume test (tests/recipe/test_preemption.py); saves the student.

Usage: ``python preemption_run.py BACKUP_DIR OUT_PREFIX [MARKER]``. With ``MARKER`` the run
writes that file when the first distillation epoch (and its backup) is done, then waits to
be killed with SIGKILL, as a preempted machine would be.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kdzoo.recipe import DistilConfig, distil  # noqa: E402

CONFIG = DistilConfig(
    num_examples=200,  # 160 training rows: 10 steps of 16
    global_batch_size=16,
    teacher_epochs=1,
    epochs=3,
    candidates=("ce:0.5,kd:0.5@t=4",),
    scratch=("scratch",),
    strategy="default",
    verbose=0,
)


class WaitForKill(keras.callbacks.Callback):
    """After epoch 0 (whose backup the earlier callback has written): marker, then wait."""

    def __init__(self, marker):
        super().__init__()
        self.marker = marker

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(600)  # the test kills us here


def main():
    backup_dir, out = sys.argv[1], sys.argv[2]
    callbacks = [WaitForKill(sys.argv[3])] if len(sys.argv) > 3 else []
    config = DistilConfig(**{**vars(CONFIG), "backup_dir": backup_dir})
    result = distil(config, callbacks=callbacks)
    np.savez(f"{out}.npz", *[np.asarray(w) for w in result.student.get_weights()])
    with open(f"{out}.json", "w") as f:
        json.dump({"epochs_run": result.epochs_run}, f)


if __name__ == "__main__":
    main()

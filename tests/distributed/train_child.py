"""Child process of the distributed tests: one process of a (possibly single-process) training run.

Usage: train_child.py RUNS_DIR RUN_NAME WEIGHTS_DIR [--distribute MODE]

Trains a tiny ResNet on the digits for two epochs and saves this process's weights after every
epoch to ``WEIGHTS_DIR/epoch<E>-process<P>.npz``. The cluster comes from the ``KERAS_DISTRIBUTION_*``
environment variables, as in ``keras-resnets train``.
"""
import argparse
import os

import keras
import numpy as np

from keras_resnets.training import train

# 1280 training images (validation_split 0.109) = 20 full batches of 64: the single-process
# reference sees exactly the batches the distributed run sees.
TINY_RUN = dict(model="cifar_resnet20", dataset="digits", model_kwargs={"depth": 8}, image_size=(8, 8),
                recipe="digits_demo", augment="none", batch_size=64, epochs=2, validation_split=0.109,
                seed=7, verbose=2)


class SaveWeightsPerEpoch(keras.callbacks.Callback):
    """Save the model's weights after every epoch, tagged with this process's id."""

    def __init__(self, folder: str, process_id: int):
        super().__init__()
        self.folder, self.process_id = folder, process_id

    def on_epoch_end(self, epoch, logs=None):
        path = os.path.join(self.folder, f"epoch{epoch}-process{self.process_id}.npz")
        np.savez(path, *self.model.get_weights())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs_dir")
    parser.add_argument("run_name")
    parser.add_argument("weights_dir")
    parser.add_argument("--distribute")
    args = parser.parse_args()
    process_id = int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0"))
    train(**TINY_RUN, runs_dir=args.runs_dir, run_name=args.run_name, distribute=args.distribute,
          callbacks=[SaveWeightsPerEpoch(args.weights_dir, process_id)])


if __name__ == "__main__":
    main()

"""Child process of test_input_sharding: one process of a data-parallel run on a streamed folder.

Usage: input_sharding_child.py FOLDER RUNS_DIR RUN_NAME OUT_JSON

Loads the folder as ``train`` does, records which images this process's training pipeline yields
(every image is one flat grey level, unique per file) to OUT_JSON, then trains through
``keras_resnets.training.train(..., distribute="data_parallel")``. The cluster comes from the
``KERAS_DISTRIBUTION_*`` environment variables.
"""
import json
import sys

import numpy as np

from keras_resnets.data import load_dataset
from keras_resnets.training import distributed, train

RUN = dict(model="cifar_resnet20", dataset="folder", model_kwargs={"depth": 8}, image_size=(8, 8),
           recipe="digits_demo", augment="none", batch_size=4, epochs=1, validation_split=1 / 3, seed=0,
           verbose=2)


def main():
    folder, runs_dir, run_name, out_json = sys.argv[1:5]
    data = load_dataset("folder", data_dir=folder, batch_size=RUN["batch_size"], augment="none",
                        image_size=RUN["image_size"], validation_split=RUN["validation_split"], seed=0,
                        streaming=True)

    def recording_train(placed_run_name, strategy=None):
        mine = distributed.shard_ready(data)  # inside the cluster and its DataParallel scope, as train does
        mean, std = np.asarray(data.info.mean), np.asarray(data.info.std)
        levels = [int(round(float((x * std + mean).mean(axis=(1, 2, 3))[i])))
                  for x, _ in ((x.numpy(), y) for x, y in mine.train(1)) for i in range(len(x))]
        with open(out_json, "w") as f:
            json.dump({"levels": levels, "batch_size": mine.batch_size, "steps": mine.steps_per_epoch}, f)
        return train(**RUN, runs_dir=runs_dir, run_name=placed_run_name, datasets=data, strategy=strategy)

    distributed.train_distributed(recording_train, "data_parallel", batch_size=RUN["batch_size"], run_name=run_name)


if __name__ == "__main__":
    main()

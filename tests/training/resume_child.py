"""Child process of test_resume: train a tiny deterministic run, optionally SIGKILL itself mid-epoch.

Usage: resume_child.py RUNS_DIR RUN_NAME [--kill-at-epoch E --kill-at-batch B] [--resume]
    [--task classification|segmentation] [--full-disk-after-epoch E] [--fill-disk-after-epoch E --filler PATH]
"""
import argparse
import os
import signal
import sys

import keras

from keras_resnets.training import train


class KillAt(keras.callbacks.Callback):
    """SIGKILL this process after batch ``batch`` of epoch ``epoch`` (0-based): a hard crash."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.epoch, self.batch, self._current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


class FullDiskAfter(keras.callbacks.Callback):
    """After epoch ``epoch`` (0-based) every file this process writes may hold 64 bytes at most:
    writes fail as on a full disk (EFBIG instead of the SIGXFSZ kill)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


class FillDiskAfter(keras.callbacks.Callback):
    """After epoch ``epoch`` (0-based) write ``filler`` until its file system is really full (ENOSPC)."""

    def __init__(self, epoch: int, filler: str):
        super().__init__()
        self.epoch, self.filler = epoch, filler

    def on_epoch_end(self, epoch, logs=None):
        if epoch != self.epoch:
            return
        chunk = b"\0" * (1 << 16)
        with open(self.filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
            try:
                while True:
                    f.write(b"\0")
            except OSError:
                pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs_dir")
    parser.add_argument("run_name")
    parser.add_argument("--kill-at-epoch", type=int)
    parser.add_argument("--kill-at-batch", type=int, default=2)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--full-disk-after-epoch", type=int)
    parser.add_argument("--fill-disk-after-epoch", type=int)
    parser.add_argument("--filler")
    parser.add_argument("--task", default="classification", choices=("classification", "segmentation"))
    args = parser.parse_args()
    callbacks = [KillAt(args.kill_at_epoch, args.kill_at_batch)] if args.kill_at_epoch is not None else []
    if args.full_disk_after_epoch is not None:
        callbacks.append(FullDiskAfter(args.full_disk_after_epoch))
    if args.fill_disk_after_epoch is not None:
        callbacks.append(FillDiskAfter(args.fill_disk_after_epoch, args.filler))
    try:
        _train(args, callbacks)
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


def _train(args, callbacks):
    if args.task == "segmentation":
        train(
            "dilated_resnet18_seg", "shapes", model_kwargs={"context": "basic", "backbone_kwargs": {
                "stage_widths": [8, 16, 16, 16]}}, image_size=(32, 32), epochs=3, batch_size=8,
            dataset_kwargs={"num_train": 32, "num_validation": 16, "max_shapes": 2}, runs_dir=args.runs_dir,
            run_name=args.run_name, resume=args.resume, seed=3, deterministic=True, callbacks=callbacks, verbose=0,
        )
        return
    train(
        "cifar_resnet20", "digits", model_kwargs={"depth": 8}, image_size=(16, 16), recipe="digits_demo",
        epochs=3, batch_size=128, runs_dir=args.runs_dir, run_name=args.run_name, resume=args.resume,
        seed=3, deterministic=True, callbacks=callbacks, verbose=0,
    )


if __name__ == "__main__":
    main()

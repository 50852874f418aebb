"""Child process of test_without_tensorflow: the package with ``import tensorflow`` failing.

Runs under ``KERAS_BACKEND=jax`` or ``torch`` with TensorFlow made unimportable (as on a machine that
has only JAX or PyTorch, and Keras), trains through the ``keras-resnets`` CLI and prints one JSON line of findings.

Usage: no_tensorflow_child.py RUNS_DIR
"""
import contextlib
import io
import json
import sys

# Every ``tensorflow*`` import fails (ModuleNotFoundError) and ``importlib.util.find_spec`` answers None,
# as where the packages are not installed (PyTorch probes optional modules with find_spec).
BLOCKED = ("tensorflow", "tensorflow_datasets", "tf_keras", "tensorflow_model_optimization")
for _name in BLOCKED:
    sys.modules[_name] = None


def one_line_error(call) -> str:
    try:
        call()
    except ImportError as err:
        return f"{type(err).__name__}: {err}"
    return "no error"


def main(runs_dir: str) -> None:
    import keras

    from keras_resnets import cli
    from keras_resnets.data import load_dataset, registry

    train = ["train", "--model", "cifar_resnet20", "--model-arg", "depth=8", "--dataset", "digits",
             "--image-size", "16", "--augment", "crop", "--batch-size", "128", "--epochs", "2", "--lr", "0.05",
             "--schedule", "constant",
             "--runs-dir", runs_dir, "--run-name", f"{keras.backend.backend()}-only", "--quiet"]
    findings = {"train_exit": cli.main(train)}
    findings["resume_exit"] = cli.main(train + ["--resume", "--continue-epochs", "1"])
    findings["cifar10"] = one_line_error(lambda: load_dataset("cifar10"))
    findings["color_blur"] = one_line_error(lambda: load_dataset("digits", augment="crop_flip_color_blur"))
    findings["cli_exit_without_tensorflow"] = cli.main(["train", "--dataset", "cifar10", "--runs-dir", runs_dir])
    run = f"{runs_dir}/{keras.backend.backend()}-only"
    for command in (["evaluate", run], ["export", run]):
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            code = cli.main(command)
        findings[f"{command[0]}_without_tensorflow"] = [code, errors.getvalue().strip().splitlines()]
    shapes = registry.load("shapes", {"num_train": 8, "num_validation": 4}, batch_size=4, image_size=(16, 16))
    images, masks = next(iter(shapes.train(1)))
    findings["shapes"] = [type(shapes).__name__, list(images.shape), str(masks.dtype), list(masks.shape)]
    findings["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
    print("FINDINGS " + json.dumps(findings), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

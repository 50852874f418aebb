"""Every ``keras-resnets`` command in README.md and docs/*.md runs as written, shrunk by appended flags.

The commands run in document order (README first, then docs/ alphabetically), in one process
(``keras_resnets.cli.main``, TensorFlow imported once) and in one working directory, so a command
uses the runs that the commands before it wrote (``runs/front``, ``runs/seg``, ``runs/demo``) and a
command repeated in several documents runs once. Appended flags shrink the work (argparse keeps the
last value of an option): one epoch, tiny images and models, one or two trials, few samples. A
``runs/<run>`` placeholder is the run the documents trained last (a tiny digits run when none).
Commands that need data or machines a test cannot have (CIFAR-10, ImageNet folders, several hosts,
a GPU) are listed with the reason, and the test checks that the list names only documented commands.
"""
import os
import pathlib
import re
import shlex
import time

import pytest

pytestmark = pytest.mark.tf_only

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Why a documented command is not run here: (pattern found in the command, reason).
NOT_RUN = (
    ("make ", "runs the demo or the whole suite (tests/test_notebooks_examples.py runs the demo's steps)"),
    ("--dataset cifar10", "needs the CIFAR-10 download (no network in the test)"),
    ("--data-dir ~/", "needs the user's ImageNet folder"),
    ("imagenette", "needs the Imagenette download"),
    ("KERAS_DISTRIBUTION", "needs several hosts"),
    ("KERASTUNER_", "a template for several tuner processes ('...')"),
    ("--distribute", "needs several accelerators"),
    ("benchmarks/gpu", "runs on the GPU machine"),
    ("masks.npz", "needs the user's masks file"),
    ("litert_runner.py", "runs on the edge device with its own input files"),
    ("--run-name study --resume", "continues the CIFAR-10 study above"),
    ("--report runs/study", "reports the CIFAR-10 study above"),
)

# Documented commands that fail as written on the shrunk runs, with the error they must end with
# (a known failure that passes, or fails otherwise, fails the test).
KNOWN_FAILURES = {}

SHAPES = ["--image-size", "32", "--dataset-arg", "num_train=16", "--dataset-arg", "num_validation=8",
          "--batch-size", "8"]
NARROW = {"dilated_resnet18_seg": ["--model-arg", 'backbone_kwargs={"stage_widths": [8, 8, 16, 16]}'],
          "dilation8_context": ["--model-arg", "fc_width=8"],
          "cifar_resnet20": ["--model-arg", "depth=8"]}
DIGITS = ["--image-size", "16"]
SHRINK = {
    "train": ["--epochs", "1", "--quiet"],
    "tune": ["--max-epochs", "2", "--max-trials", "1"],
    # one-epoch models: the accuracy budget is not what these commands are checked for
    "export": ["--calibration-samples", "16", "--eval-samples", "32", "--epochs", "1", "--force",
               "--accuracy-budget", "100"],
    "evaluate": ["--limit", "8"],
    "analyze": ["--depth", "8", "--steps", "2", "--models", "cifar_resnet20"],
    "reproduce": ["--scale", "smoke"],
    # one tiny step on TensorFlow alone (the cache goes to the test's XDG_CACHE_HOME)
    "calibrate": ["--image-size", "8", "--batch-size", "4", "--steps", "1", "--rounds", "1", "--backends", "tensorflow"],
}


def documented_commands():
    """``(document, line, command)`` of every ``keras-resnets`` line in a fenced block (continuations joined)."""
    found = []
    for path in DOCUMENTS:
        fenced, pending = False, ""
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip().startswith("```"):
                fenced, pending = not fenced, ""
                continue
            if not fenced or line.strip().startswith("```python"):
                continue
            text = (pending + " " + line.strip()).strip() if pending else line.strip()
            if text.endswith("\\"):
                pending = text[:-1]
                continue
            pending = ""
            command = re.sub(r"\s+", " ", text.split("  #")[0].split(" # ")[0]).strip()
            if re.match(r"^([A-Z_]+=\S+ )*(keras-resnets|make|python|bash|export [A-Z_]+=) ", command):
                found.append((path.name, number, command))
    return found


def _reason_not_run(command):
    return next((reason for pattern, reason in NOT_RUN if pattern in command), None)


def _shrunk(argv, runs):
    """The argument list with placeholders filled and the shrinking flags appended."""
    latest = max(runs.glob("*/config.json"), key=os.path.getmtime, default=None) if runs.exists() else None
    run = str(latest.parent.relative_to(runs.parent)) if latest else "runs/tiny"
    argv = [a.replace("runs/<run>", run) for a in argv]
    command = argv[0]
    extra = list(SHRINK.get(command, []))
    if command in ("train", "tune"):
        model = argv[argv.index("--model") + 1] if "--model" in argv else "cifar_resnet20"
        dataset = argv[argv.index("--dataset") + 1] if "--dataset" in argv else "digits"
        data = SHAPES if dataset == "shapes" else DIGITS
        if command == "tune":  # the search space sets the batch size
            data = [a for i, a in enumerate(data) if "--batch-size" not in data[max(i - 1, 0):i + 1]]
        extra += data + NARROW.get(model, [])
    if command == "export" and "qat" not in argv:  # --epochs is QAT's fine-tuning
        extra = extra[:extra.index("--epochs")] + extra[extra.index("--epochs") + 2:]
    if command == "export" and "qat" in argv:  # QAT's parity bar (0.5 % of the decisive images) needs more than 32
        extra = extra[:extra.index("--eval-samples")] + extra[extra.index("--eval-samples") + 2:]
    return argv + extra


def _tiny_run(runs):
    from keras_resnets.cli import main

    if not (runs / "tiny").exists():
        assert main(["train", "--run-name", "tiny", *SHRINK["train"], *DIGITS, *NARROW["cifar_resnet20"]]) == 0


def test_the_list_of_commands_not_run_names_documented_commands():
    commands = [c for _, _, c in documented_commands()]
    assert len(commands) > 30
    for pattern, _ in NOT_RUN:
        assert any(pattern in c for c in commands), f"NOT_RUN pattern {pattern!r} matches no documented command"
    for known in KNOWN_FAILURES:
        assert any(c == "keras-resnets " + known for c in commands), known


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_every_documented_command_runs(tmp_path, monkeypatch, capsys):
    from keras_resnets.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # calibrate's cache
    runs = tmp_path / "runs"
    failures, seen, unexpected_passes = [], set(), []
    for document, line, command in documented_commands():
        if command in seen or _reason_not_run(command) or not command.startswith("keras-resnets "):
            continue
        seen.add(command)
        argv = shlex.split(command)[1:]
        if "runs/<run>" in argv and not (runs.exists() and any(runs.glob("*/config.json"))):
            _tiny_run(runs)
        started, cpu = time.perf_counter(), time.process_time()
        try:
            code = main(_shrunk(argv, runs))
        except SystemExit as exit_:  # argparse refusals
            code = exit_.code
        output = capsys.readouterr()
        with capsys.disabled():  # the cost of each command, in the test log
            print(f"\n{time.perf_counter() - started:7.1f} s wall {time.process_time() - cpu:7.1f} s cpu  exit {code}  "
                  f"{command}", flush=True)
        known = KNOWN_FAILURES.get(command[len("keras-resnets "):])
        if code != 0 and not (known and known in output.err):
            failures.append(f"{document}:{line}: {command}\n    exit {code}: {output.err.strip()[-500:]}")
        elif code == 0 and known:
            unexpected_passes.append(f"{document}:{line}: {command} (remove it from KNOWN_FAILURES)")
    assert not failures and not unexpected_passes, "\n".join(failures + unexpected_passes)

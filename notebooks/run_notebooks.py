"""Execute the reproduction notebooks with nbclient, failing on the first cell error.

    python notebooks/run_notebooks.py [--small] [--in-place] [NOTEBOOK ...]

``--small`` sets ``SMALL=1`` (the notebooks' smoke mode); ``--in-place`` writes the outputs back
into the notebooks (what ``make notebooks`` does after a full run) and runs them from ``notebooks/``;
otherwise they run from ``--out-dir``, with a copy of ``lab.py``, so their figures land there and the
committed ones stay as they are. The repository is on ``PYTHONPATH`` either way.
"""
import argparse
import os
import pathlib
import shutil
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
REPRODUCTIONS = sorted(p.name for p in HERE.glob("0*.ipynb"))


def execute(path: pathlib.Path, out_path: pathlib.Path, small: bool, timeout: int) -> float:
    """Run every cell of ``path`` in a fresh kernel and write the executed notebook to ``out_path``."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["SMALL"] = "1" if small else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(path, as_version=4)
    workdir = out_path.parent
    if workdir.resolve() != HERE:
        shutil.copy(HERE / "lab.py", workdir / "lab.py")
    (workdir / "figures").mkdir(exist_ok=True)
    start = time.time()
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    finally:
        nbformat.write(notebook, out_path)  # a failed run keeps its partial outputs for reading
    return time.time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help=f"default: {' '.join(REPRODUCTIONS)}")
    parser.add_argument("--small", action="store_true", help="SMALL=1: the quick smoke mode")
    parser.add_argument("--in-place", action="store_true", help="write outputs back into the notebooks")
    parser.add_argument("--out-dir", default="runs/notebooks", help="where executed copies go without --in-place")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args()
    names = args.notebooks or REPRODUCTIONS
    unknown = [n for n in names if not (HERE / pathlib.Path(n).name).is_file()]
    if unknown:
        parser.error(f"no such notebook(s) {', '.join(unknown)}; allowed: {', '.join(REPRODUCTIONS)}")
    out_dir = pathlib.Path(args.out_dir)
    if not args.in_place:
        out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = HERE / pathlib.Path(name).name
        target = path if args.in_place else out_dir / path.name
        seconds = execute(path, target, args.small, args.timeout)
        print(f"{path.name}: executed in {seconds:.0f} s -> {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

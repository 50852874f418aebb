"""docs/export.md's zoo section is the one ``bench_export_zoo.py --docs`` writes from the committed results."""
import importlib.util
import os

import keras_resnets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_export_zoo", os.path.join(ROOT, "benchmarks", "bench_export_zoo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # numpy only at import: no Keras or TensorFlow
    return module


def test_docs_zoo_section_matches_the_results():
    bench = _load_bench()
    rows = bench._update(bench.RESULTS, 32)
    assert rows, "benchmarks/results/bench_export_zoo.json has no rows at --size 32"
    expected = bench.docs_section(rows, 32, keras_resnets.list_models())
    with open(os.path.join(ROOT, "docs", "export.md")) as f:
        text = f.read()
    written = text.split(bench.DOCS_BEGIN, 1)[1].split(bench.DOCS_END, 1)[0].strip("\n")
    assert written == expected, "docs/export.md is stale: run benchmarks/bench_export_zoo.py --docs docs/export.md"

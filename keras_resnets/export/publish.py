"""Publishing an export: every file staged in one temporary folder inside the output folder, then
moved into place, so an export is there completely or not at all (TFLite and SavedModel alike).

A publish step is the place to add files to an export: :func:`publish` takes ``name -> content``
(bytes, text, or a staged folder) and refuses to overwrite without ``force``.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from keras_resnets.export import metadata as tflite_metadata, ops as ops_report, report as report_lib
from keras_resnets.export.errors import ExportError
from keras_resnets.export.variants import artifact_files


@dataclasses.dataclass
class ExportResult:
    """What :func:`~keras_resnets.export.export_model` wrote.

    Attributes:
        artifact: the ``.tflite`` file or SavedModel directory.
        report_json, report_md: the verification report next to it.
        metadata: the edge sidecar (``<artifact>.json``; ``None`` for SavedModel).
        report: the report as a dict.
    """

    artifact: Path
    report_json: Path
    report_md: Path
    metadata: Path | None
    report: dict


def refuse_overwrite(out_dir: Path, names, force: bool, candidates=None) -> None:
    """Refuse existing files unless ``force``; ``candidates``: the variants ``auto`` may write."""
    existing = [n for n in names if (out_dir / n).exists()]
    if existing and not force:
        also = f" (--quantize auto may write any of {', '.join(candidates)})" if candidates else ""
        raise ExportError(f"{out_dir / existing[0]} already exists{also}; pass --force (force=True) to overwrite "
                          "or choose another --output")


class Staging:
    """A temporary folder inside ``out_dir`` (same file system: the final moves are renames)."""

    def __init__(self, out_dir: Path, prefix: str):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.path = Path(tempfile.mkdtemp(prefix=f".{prefix}-", dir=out_dir))

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def write(self, files: dict) -> None:
        """Write ``name -> bytes | str | dict`` (a dict is written as JSON) into the staging folder."""
        for name, content in files.items():
            target = self.path / name
            if isinstance(content, dict):
                report_lib.write_json(target, content)
            elif isinstance(content, str):
                target.write_text(content)
            else:
                target.write_bytes(content)

    def publish(self, names, force: bool) -> None:
        """Move the staged ``names`` (files or folders) into ``out_dir``, then update its index."""
        refuse_overwrite(self.out_dir, names, force)
        for name in names:
            target = self.out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            (self.path / name).replace(target)
        report_lib.write_index(self.out_dir)


def publish_tflite(source, built, out_dir: Path, force: bool, batch_size, preprocessing: bool) -> ExportResult:
    """The artifact, its edge sidecar, its report (JSON and Markdown) and any further files of ``built``
    (a :class:`~keras_resnets.export.job.Built`), published together."""
    from keras_resnets.export.verify import TFLiteRunner

    extra = dict(built.extra)
    files = extra.pop("_files", {})
    names = {k: v for k, v in artifact_files(built.variant).items() if k != "chart"}
    refuse_overwrite(out_dir, [*names.values(), *files], force)
    # standard TFLite metadata (labels packed in the file), then the delegate/op section of the bytes written
    flatbuffer, standard = tflite_metadata.for_source(built.flatbuffer, source, preprocessing=preprocessing)
    delegates = ops_report.delegate_report(flatbuffer, full_integer=built.section["precision"].startswith("int8"))
    with Staging(out_dir, built.variant) as staging:
        staging.write({names["artifact"]: flatbuffer})
        runner = TFLiteRunner(staging.path / names["artifact"])  # the file on disk loads
        metadata = report_lib.sidecar_metadata(source, runner, artifact_name=names["artifact"],
                                               preprocessing=preprocessing)
        report = {"artifact": names["artifact"], "source": str(source.model_path), "format": "tflite",
                  "task": source.task.name, "batch": batch_size,
                  "input_pixels": "raw" if preprocessing else "normalized", "size_bytes": len(flatbuffer),
                  "io": {"input": metadata["input"]["dtype"], "output": metadata["output"]["dtype"]},
                  **built.section, "metadata": names["metadata"], "standard_metadata": standard,
                  "delegates": delegates, **extra}
        report.setdefault("size_vs_float32", None)
        staging.write({names["metadata"]: metadata, names["report_json"]: report,
                       names["report_md"]: report_lib.markdown_report(report), **files})
        staging.publish([*names.values(), *files], force)
    return ExportResult(artifact=out_dir / names["artifact"], report_json=out_dir / names["report_json"],
                        report_md=out_dir / names["report_md"], metadata=out_dir / names["metadata"], report=report)

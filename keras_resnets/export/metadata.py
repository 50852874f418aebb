"""Standard TFLite metadata: the flatbuffer describes its own input, output and labels.

Image clients (MediaPipe Tasks' ``ImageClassifier`` / ``ImageSegmenter``, the LiteRT Support
Library, Android Studio's model binding) read the ``TFLITE_METADATA`` buffer of the model
(``metadata_schema.fbs``, file identifier ``M001``) and the label files packed into a zip archive
appended to the flatbuffer. This module writes both from the schema directly with the pinned
``flatbuffers`` package: the writer libraries either fail to import (``mediapipe`` 1.x: a compiled
module is missing) or pin an ``absl-py`` that conflicts with ``tensorflow-model-optimization``.

:func:`with_metadata` is pure: flatbuffer bytes and what describes the input in, bytes out.
"""
from __future__ import annotations

import dataclasses
import io
import zipfile

import numpy as np

from keras_resnets.export.errors import ExportError

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every field written here exists since schema version 1.0.0
LABELS_FILE = "labels.txt"
# MediaPipe Tasks (ImageToTensorCalculator) feed uint8 or float32 image tensors only, and take one
# mean/std for all channels.
CLIENT_INPUT_TYPES = ("uint8", "float32")

# metadata_schema.fbs enums and union tags
_RGB, _GRAYSCALE = 1, 2
_TENSOR_AXIS_LABELS = 2
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_NORMALIZATION_OPTIONS = 1


@dataclasses.dataclass(frozen=True)
class ImageInput:
    """What the artifact's input tensor takes.

    Attributes:
        height, width, channels: the input image size.
        mean, std: per-channel normalisation in the 0..255 scale, or ``None`` for raw pixels
            (a model exported with ``--include-preprocessing`` normalises them itself).
    """

    height: int
    width: int
    channels: int
    mean: tuple | None = None
    std: tuple | None = None


@dataclasses.dataclass(frozen=True)
class Metadata:
    """The result of :func:`with_metadata`.

    Attributes:
        flatbuffer: the model with its metadata buffer and the packed labels file.
        labels_file: the packed file's name; ``labels``: its text (one class name a line).
        section: the report's ``metadata`` section (what was written, and client notes).
    """

    flatbuffer: bytes
    labels_file: str
    labels: str
    section: dict


def with_metadata(flatbuffer: bytes, *, name: str, description: str, task, image: ImageInput,
                  labels, version: str = "") -> Metadata:
    """Return ``flatbuffer`` with standard metadata and an associated labels file.

    The normalisation written is what the input expects before any quantization: ``image.mean`` /
    ``image.std`` for normalised-input models, mean 0 / std 1 (identity) for raw-pixel models; a
    uint8 input must take the pixels themselves (quantization scale 1, zero point 0), which is what
    clients feed it.

    Raises:
        ExportError: the model is not one a standard image client can feed (not 3 channels, a
            uint8 input that is not pixel values, a flatbuffer that already has metadata) or the
            labels do not match the output.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    from keras_resnets.tasks import TASKS, get_task

    try:
        task = get_task(task)
    except ValueError:
        raise ExportError(f"metadata task must be one of {', '.join(TASKS)}; got {task!r}") from None
    if image.channels != 3:
        raise ExportError(f"standard image metadata describes RGB input; this model takes {image.channels} "
                          f"channel(s) (MediaPipe and the Support Library feed 3-channel images): train on RGB "
                          f"data (channels=3) for artifacts that image clients load")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    if any(m.name.decode() == METADATA_NAME for m in model.metadata or []):
        raise ExportError(f"the flatbuffer already has {METADATA_NAME}")
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ExportError(f"image metadata needs one input and one output; the model has {len(graph.inputs)} "
                          f"and {len(graph.outputs)}")
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    input_type = _TYPE_NAMES.get(inp.type, str(inp.type))
    classes = int(out.shape[-1])
    labels = [str(label) for label in labels]
    if len(labels) != classes:
        raise ExportError(f"{len(labels)} labels for an output of {classes} classes")
    if input_type == "uint8":
        scale, zero_point = _quantization(inp)
        if not (abs(scale - 1.0) < 1e-6 and zero_point == 0):
            raise ExportError(f"the uint8 input is quantized with scale {scale:g}, zero point {zero_point}; image "
                              f"clients feed pixels 0..255 as they are (scale 1, zero point 0): export with "
                              f"--include-preprocessing for a uint8 pixel input")
    raw = image.mean is None
    if raw:  # pixels as they are (a uint8 input is refused above unless it is pixels)
        mean, std = [0.0], [1.0]
    else:
        mean, std = [float(v) for v in image.mean], [float(v) for v in image.std]
    low = [(0.0 - m) / s for m, s in zip(mean, std)]
    high = [(255.0 - m) / s for m, s in zip(mean, std)]
    blob = _metadata_buffer(name=name, description=description, version=version, per_pixel=task.per_pixel, mean=mean, std=std,
                            low=low, high=high, output_range=(0.0, 1.0), input_name=_tensor_name(inp),
                            output_name=_tensor_name(out))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(blob, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    text = "\n".join(labels) + "\n"
    packed = _append_zip(bytes(flatbuffer_utils.convert_object_to_bytearray(model)), {LABELS_FILE: text})
    notes = client_notes(input_type, mean, std)
    section = {"standard": True, "writer": "metadata_schema.fbs via flatbuffers", "name": name, "task": task.name,
               "color_space": "RGB", "input_type": input_type, "input_pixels": "raw" if raw else "normalized",
               "normalization": {"mean": mean, "std": std}, "labels_file": LABELS_FILE, "labels": len(labels),
               "mediapipe": "loadable" if not notes else "; ".join(notes)}
    return Metadata(flatbuffer=packed, labels_file=LABELS_FILE, labels=text, section=section)


def client_notes(input_type: str, mean, std) -> list:
    """Why MediaPipe Tasks would refuse an artifact with this input (empty: it loads it)."""
    notes = []
    if input_type not in CLIENT_INPUT_TYPES:
        notes.append(f"MediaPipe feeds {' or '.join(CLIENT_INPUT_TYPES)} image inputs, not {input_type} "
                     f"(export with --include-preprocessing: uint8 pixel input)")
    if len(set(mean)) > 1 or len(set(std)) > 1:
        notes.append("MediaPipe takes one mean/std for all channels, not per-channel normalisation "
                     "(export with --include-preprocessing)")
    return notes


def skipped(reason: str) -> dict:
    """The report's ``metadata`` section of an artifact left without standard metadata."""
    return {"standard": False, "reason": reason, "mediapipe": f"not loadable: {reason}"}


def read_metadata(flatbuffer: bytes) -> dict:
    """Decode the essentials back (for checks): name, normalisation, label file names per tensor, packed files."""
    import flatbuffers
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    entry = next((m for m in model.metadata or [] if m.name.decode() == METADATA_NAME), None)
    if entry is None:
        return {}
    blob = bytes(np.asarray(model.buffers[entry.buffer].data, np.uint8))
    if not flatbuffers.util.BufferHasIdentifier(blob, 0, METADATA_IDENTIFIER):
        raise ExportError(f"{METADATA_NAME} lacks the {METADATA_IDENTIFIER.decode()} identifier")
    root = _Table(blob, flatbuffers.encode.Get(flatbuffers.packer.uoffset, blob, 0))
    graph = root.tables(3)[0]
    inp, out = graph.tables(2)[0], graph.tables(3)[0]
    norm = inp.tables(4)[0].table(1)
    with zipfile.ZipFile(io.BytesIO(flatbuffer)) as archive:
        files = {n: archive.read(n).decode() for n in archive.namelist()}
    return {"name": root.string(0), "min_parser_version": root.string(7), "mean": norm.floats(0),
            "std": norm.floats(1), "output_files": [f.string(0) for f in out.tables(6)], "files": files}


_TYPE_NAMES = {0: "float32", 3: "uint8", 9: "int8"}


def _quantization(tensor) -> tuple:
    q = tensor.quantization
    scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
    zero_point = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
    return scale, zero_point


def _tensor_name(tensor) -> str:
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


class _FlatBuffer:
    """A ``flatbuffers.Builder`` with the few writers the metadata tables need."""

    def __init__(self):
        import flatbuffers

        self.builder = flatbuffers.Builder(1024)

    def table(self, fields):  # fields: (slot, kind, value) with kind "offset", "uint32", "int8", "uint8"
        b = self.builder
        b.StartObject(max(slot for slot, _, _ in fields) + 1)
        for slot, kind, value in fields:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "uint32":
                b.PrependUint32Slot(slot, value, 0)
            elif kind == "int8":
                b.PrependInt8Slot(slot, value, 0)
            else:
                b.PrependUint8Slot(slot, value, 0)
        return b.EndObject()

    def vector(self, offsets):
        self.builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return self.builder.EndVector()

    def floats(self, values):
        self.builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.builder.PrependFloat32(value)
        return self.builder.EndVector()

    def stats(self, maximum, minimum):  # Stats: max 0, min 1
        max_vec, min_vec = self.floats(maximum), self.floats(minimum)
        return self.table([(0, "offset", max_vec), (1, "offset", min_vec)])


def _metadata_buffer(*, name, description, version, per_pixel, mean, std, low, high, output_range, input_name,
                     output_name) -> bytes:
    """The ``ModelMetadata`` flatbuffer (slots numbered as in metadata_schema.fbs; a union takes two)."""
    fb = _FlatBuffer()
    table, vector, floats, stats, b = fb.table, fb.vector, fb.floats, fb.stats, fb.builder

    s = b.CreateString
    # input: TensorMetadata name 0, description 1, content 3, process_units 4, stats 5, associated_files 6
    in_name, in_desc = s(input_name), s("Input image, RGB, " + ("pixels 0..255" if mean == [0.0] and std == [1.0]
                                                                   else "(pixels - mean) / std per channel"))
    mean_vec, std_vec = floats(mean), floats(std)
    normalization = table([(0, "offset", mean_vec), (1, "offset", std_vec)])
    unit = table([(0, "uint8", _NORMALIZATION_OPTIONS), (1, "offset", normalization)])
    units = vector([unit])
    image_properties = table([(0, "int8", _RGB)])
    in_content = table([(0, "uint8", _IMAGE_PROPERTIES), (1, "offset", image_properties)])
    in_stats = stats(high, low)
    input_meta = table([(0, "offset", in_name), (1, "offset", in_desc), (3, "offset", in_content),
                        (4, "offset", units), (5, "offset", in_stats)])
    # output: probabilities per class (per pixel for segmentation), labels on the class axis
    label_name, label_desc = s(LABELS_FILE), s("Class names, one a line, in output order")
    label_file = table([(0, "offset", label_name), (1, "offset", label_desc), (2, "int8", _TENSOR_AXIS_LABELS)])
    files = vector([label_file])
    out_name = s(output_name)
    out_desc = s("Per-pixel class probabilities" if per_pixel else "Class probabilities")
    if per_pixel:
        out_properties = table([(0, "int8", _GRAYSCALE)])  # a category mask, as ImageSegmenter reads it
        out_content = table([(0, "uint8", _IMAGE_PROPERTIES), (1, "offset", out_properties)])
    else:
        feature = _empty_table(b)
        out_content = table([(0, "uint8", _FEATURE_PROPERTIES), (1, "offset", feature)])
    out_stats = stats([output_range[1]], [output_range[0]])
    output_meta = table([(0, "offset", out_name), (1, "offset", out_desc), (3, "offset", out_content),
                         (5, "offset", out_stats), (6, "offset", files)])
    # SubGraphMetadata: input_tensor_metadata 2, output_tensor_metadata 3
    inputs, outputs = vector([input_meta]), vector([output_meta])
    graph_name = s(name)
    graph = table([(0, "offset", graph_name), (2, "offset", inputs), (3, "offset", outputs)])
    graphs = vector([graph])
    # ModelMetadata: name 0, description 1, version 2, subgraph_metadata 3, min_parser_version 7
    model_name, model_desc, model_version, parser = s(name), s(description), s(version), s(MIN_PARSER_VERSION)
    root = table([(0, "offset", model_name), (1, "offset", model_desc), (2, "offset", model_version),
                  (3, "offset", graphs), (7, "offset", parser)])
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _empty_table(builder) -> int:
    builder.StartObject(0)
    return builder.EndObject()


def _append_zip(flatbuffer: bytes, files: dict) -> bytes:
    """Append a zip archive of ``files`` (stored uncompressed) after the flatbuffer, as clients expect."""
    out = io.BytesIO(flatbuffer)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


class _Table:
    """Read access to a flatbuffer table by slot number (enough to read the metadata back)."""

    def __init__(self, buf: bytes, pos: int):
        import flatbuffers

        self._t = flatbuffers.table.Table(bytearray(buf), pos)

    def _offset(self, slot):
        return self._t.Offset(4 + 2 * slot)

    def string(self, slot):
        o = self._offset(slot)
        return self._t.String(o + self._t.Pos).decode() if o else None

    def table(self, slot):
        o = self._offset(slot)
        return _Table(self._t.Bytes, self._t.Indirect(o + self._t.Pos)) if o else None

    def tables(self, slot):
        o = self._offset(slot)
        if not o:
            return []
        start = self._t.Vector(o)
        return [_Table(self._t.Bytes, self._t.Indirect(start + 4 * i)) for i in range(self._t.VectorLen(o))]

    def floats(self, slot):
        import flatbuffers

        o = self._offset(slot)
        if not o:
            return []
        start = self._t.Vector(o)
        return [flatbuffers.encode.Get(flatbuffers.packer.float32, self._t.Bytes, start + 4 * i)
                for i in range(self._t.VectorLen(o))]


def for_source(flatbuffer: bytes, source, *, preprocessing: bool) -> tuple:
    """:func:`with_metadata` for an :class:`~keras_resnets.export.source.ExportSource`'s artifact.

    Returns ``(flatbuffer, section)``: the artifact with standard metadata, or, where the metadata
    step refuses the model (a grayscale input, a uint8 input that is not pixels), the flatbuffer
    unchanged and a section giving the one-line reason.
    """
    height, width, channels = source.input_shape
    image = ImageInput(height, width, channels, None if preprocessing else tuple(source.mean),
                       None if preprocessing else tuple(source.std))
    description = (f"{source.name}: {'per-pixel ' if source.task.per_pixel else ''}{source.task.name} "
                   f"into {len(source.class_names)} classes, {height}x{width} RGB input")
    try:
        result = with_metadata(flatbuffer, name=source.name, description=description, task=source.task,
                               image=image, labels=source.class_names)
    except ExportError as err:
        return flatbuffer, skipped(str(err))
    return result.flatbuffer, result.section


def markdown_lines(section: dict | None) -> list:
    """The report's ``## Standard metadata`` lines."""
    if not section:
        return []
    if not section["standard"]:
        return ["", "## Standard metadata", "", f"Not written: {section['reason']}"]
    norm = section["normalization"]
    return ["", "## Standard metadata", "",
            f"- TFLite metadata ({section['writer']}): {section['task']}, {section['color_space']} "
            f"{section['input_type']} input of {section['input_pixels']} pixels, normalisation mean {norm['mean']} "
            f"std {norm['std']}; {section['labels']} labels packed as `{section['labels_file']}`",
            f"- MediaPipe Tasks: {section['mediapipe']}"]

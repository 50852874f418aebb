"""The named models: each a configuration of a generic builder, registered without importing Keras.

Builders are ``"module:function"`` references, imported when a model is first built, so listing the
names, families and descriptions (``keras-resnets list``, ``keras_resnets.list_models``) stays light.
"""
CATALOG = []  # (name, builder, keywords of register_model): registered by keras_resnets.models.registry


def _model(name: str, builder: str, **keywords) -> None:
    CATALOG.append((name, builder, keywords))


_RESNET = "keras_resnets.models.resnet:ResNet"
_CIFAR_RESNET = "keras_resnets.models.resnet:CifarResNet"
_DENSENET = "keras_resnets.models.densenet:DenseNet"
_CIFAR_DENSENET = "keras_resnets.models.densenet:CifarDenseNet"
_SEGMENTATION = "keras_resnets.models.segmentation:SegmentationNet"

# --- ResNet (He et al. 2016a, 2016b) ------------------------------------------------------------
_IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
_V2 = dict(placement="full_preact", stride_position="3x3")

for _depth, (_unit, _stages) in _IMAGENET_DEPTHS.items():
    _model(f"resnet{_depth}", _RESNET, family="resnet",
                   description=f"ResNet-{_depth} v1 (He et al. 2016a), {_unit} units",
                   stage_depths=_stages, unit=_unit)
    _model(f"resnet{_depth}_v2", _RESNET, family="resnet_v2",
                   description=f"pre-activation ResNet-{_depth} v2 (He et al. 2016b)",
                   stage_depths=_stages, unit=_unit, **_V2)
for _depth in (18, 34):
    _model(f"plain{_depth}", _RESNET, family="plain",
                   description=f"plain-{_depth}: ResNet-{_depth} without shortcuts (degradation experiment)",
                   stage_depths=_IMAGENET_DEPTHS[_depth][1], plain=True)

for _depth in (20, 32, 44, 56, 110, 1202):
    _model(f"cifar_resnet{_depth}", _CIFAR_RESNET, family="cifar_resnet",
                   description=f"CIFAR ResNet-{_depth} (6n+2, n={(_depth - 2) // 6}), option A shortcuts",
                   depth=_depth)
for _depth in (20, 32, 44, 56, 110):
    _model(f"cifar_plain{_depth}", _CIFAR_RESNET, family="plain",
                   description=f"CIFAR plain-{_depth}: no shortcuts", depth=_depth, plain=True)
_model("preact_resnet110", _CIFAR_RESNET, family="preact_resnet",
               description="pre-activation CIFAR ResNet-110 (6n+2, basic units)",
               depth=110, placement="full_preact", downsample="B")
for _depth in (164, 1001):
    _model(f"preact_resnet{_depth}", _CIFAR_RESNET, family="preact_resnet",
                   description=f"pre-activation CIFAR ResNet-{_depth} (9n+2, bottleneck units, outputs 64/128/256)",
                   depth=_depth, unit="bottleneck", placement="full_preact", downsample="B")

# --- DenseNet (Huang et al. 2017) ---------------------------------------------------------------
IMAGENET_BLOCK_DEPTHS = {
    121: (6, 12, 24, 16),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
    264: (6, 12, 64, 48),
}
for _depth, _blocks in IMAGENET_BLOCK_DEPTHS.items():
    _model(f"densenet{_depth}", _DENSENET, family="densenet",
                   description=f"DenseNet-BC-{_depth} for ImageNet (Huang et al. 2017), k=32, blocks {_blocks}",
                   block_depths=_blocks)

_CIFAR_DENSENETS = {
    # name: (L, k, bottleneck and compression)
    "cifar_densenet40": (40, 12, False),
    "cifar_densenet100": (100, 12, False),
    "cifar_densenet100_k24": (100, 24, False),
    "cifar_densenet_bc100": (100, 12, True),
    "cifar_densenet_bc250": (250, 24, True),
    "cifar_densenet_bc190": (190, 40, True),
}
for _name, (_depth, _k, _bc) in _CIFAR_DENSENETS.items():
    _model(_name, _CIFAR_DENSENET, family="cifar_densenet",
                   description=f"CIFAR DenseNet{'-BC' if _bc else ''} (L={_depth}, k={_k})",
                   depth=_depth, growth_rate=_k, bottleneck=_bc, compression=0.5 if _bc else 1.0)

# --- dilated networks for segmentation (Yu & Koltun 2016, Yu et al. 2017) -------------------------
_model("dilation8_frontend", _SEGMENTATION, family="segmentation",
               description="Yu & Koltun's dilated VGG-16 front-end at 1/8 resolution, bilinear upsampling",
               backbone="vgg16", context=None)
_model("dilation8_context", _SEGMENTATION, family="segmentation",
               description="Yu & Koltun's front-end + basic context module (dilations 1,1,2,4,8,16,1)",
               backbone="vgg16", context="basic")
for _depth in (18, 50, 101):
    _model(f"dilated_resnet{_depth}_seg", _SEGMENTATION, family="segmentation",
                   description=f"dilated ResNet-{_depth} at 1/8 + basic context module, bilinear upsampling",
                   backbone=f"resnet{_depth}", context="basic")
_model("dilated_resnet18_seg_narrow", _SEGMENTATION, family="segmentation",
               description="dilated_resnet18_seg at a quarter of the widths (16-128): the CPU-sized quick start",
               backbone="resnet18", context="basic", backbone_kwargs={"stage_widths": (16, 32, 64, 128), "stem_width": 16})

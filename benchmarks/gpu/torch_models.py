"""PyTorch versions of keras_resnets networks, layer for layer, for the GPU throughput baseline.

Each builder mirrors the registry configuration of the Keras model of the same name (read in
``keras_resnets/models/resnet.py`` and ``keras_resnets/layers``), so both sides train the same
network: same depth, widths, shortcut option, BN/activation placement, bias-free convolutions,
BN epsilon 1.001e-5 and momentum 0.9 (PyTorch's ``momentum=0.1``), global average pool and a dense
classifier with bias. ``bench_gpu_throughput.py`` checks that the parameter counts agree with the
Keras models before it compares speeds.

* :func:`cifar_resnet56` — ``CifarResNet(depth=56)``: 3×3 stem (16) + BN + ReLU, three stages of
  nine basic units (16/32/64), original placement conv-BN-ReLU-conv-BN, add, ReLU; option A
  shortcuts (every second pixel, new channels zero-padded after the existing ones).
* :func:`preact_resnet164` — ``CifarResNet(depth=164, unit="bottleneck", placement="full_preact",
  downsample="B")``: 3×3 stem (16) without BN, three stages of 18 bottleneck units (base 16/32/64,
  outputs 64/128/256), each BN-ReLU once before the split, 1×1 (strided, ``stride_position="1x1"``)
  / BN-ReLU-3×3 / BN-ReLU-1×1; option B: a 1×1 projection of the pre-activated input where the
  channel count changes, identity elsewhere; final BN-ReLU.
* :func:`resnet50_v1` — torchvision's ResNet-50 with the stride moved from the 3×3 to the first 1×1
  convolution of each downsampling bottleneck, which is ResNet-50 v1 as in *Deep Residual Learning*
  and our ``resnet50`` (``stride_position="1x1"``); torchvision's own is "v1.5" (same parameters,
  about 6 % more FLOPs).

Needs only ``torch`` (and ``torchvision`` for DenseNet-121); nothing here imports Keras.
"""
from __future__ import annotations

import re

import torch
from torch import nn

BN_EPSILON = 1.001e-5
BN_MOMENTUM = 0.1  # PyTorch's convention: 1 - Keras' momentum 0.9


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """Bias-free convolution with symmetric padding (Keras: explicit ZeroPadding2D where it strides)."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)


def _init(module: nn.Module) -> nn.Module:
    """He et al.'s fan-out normal for convolutions, as ``keras_resnets.layers.units.kernel_initializer``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return module


class OptionAShortcut(nn.Module):
    """Keep every ``stride``-th pixel and append zero channels up to ``out_channels`` (parameter-free)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride, self.pad = stride, out_channels - in_channels

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, 0, self.pad))


class BasicUnit(nn.Module):
    """Original placement: conv-BN-ReLU-conv-BN, add the shortcut, ReLU (option A where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, cout, 3, stride), _bn(cout)
        self.conv2, self.bn2 = _conv(cout, cout, 3), _bn(cout)
        self.shortcut = OptionAShortcut(cin, cout, stride) if (cin != cout or stride > 1) else nn.Identity()

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class PreactBottleneck(nn.Module):
    """Full pre-activation bottleneck; the projection (option B) reads the pre-activated input."""

    def __init__(self, cin: int, width: int, stride: int, expansion: int = 4):
        super().__init__()
        cout = width * expansion
        self.preact_bn = _bn(cin)
        self.conv1 = _conv(cin, width, 1, stride)  # stride_position="1x1"
        self.bn1, self.conv2 = _bn(width), _conv(width, width, 3)
        self.bn2, self.conv3 = _bn(width), _conv(width, cout, 1)
        self.projection = _conv(cin, cout, 1, stride) if cin != cout else None
        self.stride = stride

    def forward(self, x):
        preact = torch.relu(self.preact_bn(x))
        y = self.conv1(preact)
        y = self.conv2(torch.relu(self.bn1(y)))
        y = self.conv3(torch.relu(self.bn2(y)))
        if self.projection is not None:
            shortcut = self.projection(preact)
        elif self.stride > 1:
            shortcut = x[:, :, :: self.stride, :: self.stride]
        else:
            shortcut = x
        return y + shortcut


class CifarNet(nn.Module):
    """3×3 stem, three stages, (final BN-ReLU for pre-activation), global average pool, linear.

    ``stages[s][u]`` is Keras' ``stage{s+1}_unit{u+1}``.
    """

    def __init__(self, stem: nn.Module, stages: list, channels: int, classes: int, preact: bool):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*(nn.Sequential(*units) for units in stages))
        self.post = nn.Sequential(_bn(channels), nn.ReLU()) if preact else nn.Identity()
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.post(self.stages(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def cifar_resnet(depth: int = 56, classes: int = 10, widths=(16, 32, 64)) -> nn.Module:
    """CIFAR ResNet of depth 6n+2 with option A shortcuts (our ``cifar_resnet<depth>``)."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth {depth} is not of the form 6n+2")
    n = (depth - 2) // 6
    stem = nn.Sequential(_conv(3, widths[0], 3), _bn(widths[0]), nn.ReLU())
    stages, cin = [], widths[0]
    for s, width in enumerate(widths):
        stages.append([])
        for u in range(n):
            stages[-1].append(BasicUnit(cin, width, 2 if (s > 0 and u == 0) else 1))
            cin = width
    return _init(CifarNet(stem, stages, cin, classes, preact=False))


def preact_resnet(depth: int = 164, classes: int = 10, widths=(16, 32, 64), expansion: int = 4) -> nn.Module:
    """Pre-activation CIFAR ResNet of depth 9n+2 with bottlenecks (our ``preact_resnet<depth>``)."""
    if (depth - 2) % 9:
        raise ValueError(f"pre-activation bottleneck ResNet depth {depth} is not of the form 9n+2")
    n = (depth - 2) // 9
    stem = _conv(3, 16, 3)  # pre-activation: no BN/ReLU after the stem
    stages, cin = [], 16
    for s, width in enumerate(widths):
        stages.append([])
        for u in range(n):
            stages[-1].append(PreactBottleneck(cin, width, 2 if (s > 0 and u == 0) else 1, expansion))
            cin = width * expansion
    return _init(CifarNet(stem, stages, cin, classes, preact=True))


def cifar_resnet56(classes: int = 10) -> nn.Module:
    """Our ``cifar_resnet56`` in PyTorch."""
    return cifar_resnet(56, classes)


def preact_resnet164(classes: int = 10) -> nn.Module:
    """Our ``preact_resnet164`` in PyTorch."""
    return preact_resnet(164, classes)


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck`` (same module names), post-activation, BN after every conv."""

    def __init__(self, cin: int, width: int, stride: int, stride_on_3x3: bool):
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = _conv(cin, width, 1, 1 if stride_on_3x3 else stride), _bn(width)
        self.conv2, self.bn2 = _conv(width, width, 3, stride if stride_on_3x3 else 1), _bn(width)
        self.conv3, self.bn3 = _conv(width, cout, 1), _bn(cout)
        self.downsample = (nn.Sequential(_conv(cin, cout, 1, stride), _bn(cout))
                           if stride > 1 or cin != cout else None)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """torchvision's ``resnet50`` architecture written out (torchvision itself is not needed).

    Module names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``,
    ``fc``), so :func:`keras_layer_name` maps both. ``stride_on_3x3=False`` is ResNet-50 v1 (ours).
    """

    def __init__(self, classes: int = 1000, stride_on_3x3: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = _bn(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin, layers = 64, []
        for s, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            units = []
            for b in range(blocks):
                units.append(Bottleneck(cin, width, 2 if (s > 0 and b == 0) else 1, stride_on_3x3))
                cin = width * 4
            layers.append(nn.Sequential(*units))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(cin, classes)
        _init(self)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet50_v1(classes: int = 1000) -> nn.Module:
    """torchvision ResNet-50 with v1 strides (on the first 1×1 conv of each downsampling bottleneck)."""
    return ResNet50(classes, stride_on_3x3=False)


def torchvision_resnet50(classes: int = 1000) -> nn.Module:
    """torchvision's own ResNet-50 ("v1.5": stride on the 3×3 conv)."""
    return ResNet50(classes, stride_on_3x3=True)


def torchvision_densenet121(classes: int = 1000) -> nn.Module:
    """torchvision DenseNet-121 (BN-ReLU-conv composite functions, k=32, blocks 6/12/24/16)."""
    import torchvision

    return torchvision.models.densenet121(num_classes=classes)


# Name of a keras_resnets model -> (builder, description) of its PyTorch counterpart.
TORCH_MODELS = {
    "resnet50": (resnet50_v1, "torchvision resnet50, v1 strides"),
    "cifar_resnet56": (cifar_resnet56, "torch cifar_resnet56 (benchmarks/gpu/torch_models.py)"),
    "preact_resnet164": (preact_resnet164, "torch preact_resnet164 (benchmarks/gpu/torch_models.py)"),
    "densenet121": (torchvision_densenet121, "torchvision densenet121"),
}


def keras_layer_name(path: str) -> str:
    """The Keras layer (of the model of the same name) that a PyTorch module at ``path`` mirrors.

    Covers every module with weights of the four networks above (our CIFAR modules, torchvision's
    ResNet-50 and DenseNet-121); ``ValueError`` names a path that has no counterpart.
    """
    unit_parts = {"preact_bn": "preact_bn", "projection": "shortcut_conv", "downsample.0": "shortcut_conv",
                  "downsample.1": "shortcut_bn"}
    dense_parts = {"norm1": "bn1", "conv1": "conv1", "norm2": "bn2", "conv2": "conv2"}
    fixed = {"stem": "stem_conv", "stem.0": "stem_conv", "stem.1": "stem_bn", "conv1": "stem_conv", "bn1": "stem_bn",
             "post.0": "post_bn", "fc": "predictions", "features.conv0": "stem_conv", "features.norm0": "stem_bn",
             "features.norm5": "post_bn", "classifier": "predictions"}
    if path in fixed:
        return fixed[path]
    match = re.fullmatch(r"stages\.(\d+)\.(\d+)\.(.+)", path) or re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", path)
    if match:
        stage = int(match.group(1)) + (1 if path.startswith("stages") else 0)
        part = match.group(3)
        if re.fullmatch(r"(conv|bn)\d", part) or part in unit_parts:
            return f"stage{stage}_unit{int(match.group(2)) + 1}_{unit_parts.get(part, part)}"
    match = re.fullmatch(r"features\.denseblock(\d+)\.denselayer(\d+)\.(\w+)", path)
    if match and match.group(3) in dense_parts:
        return f"block{match.group(1)}_layer{match.group(2)}_{dense_parts[match.group(3)]}"
    match = re.fullmatch(r"features\.transition(\d+)\.(norm|conv)", path)
    if match:
        return f"transition{match.group(1)}_{'bn' if match.group(2) == 'norm' else 'conv'}"
    raise ValueError(f"no Keras layer corresponds to the PyTorch module {path!r}")


@torch.no_grad()
def copy_keras_weights(model: nn.Module, keras_weights) -> int:
    """Load a Keras model's weights into its PyTorch mirror (to check that both compute the same function).

    Args:
        model: a network built here.
        keras_weights: ``layer_name -> list of numpy arrays`` (``keras_model.get_layer(name).get_weights()``).

    Returns:
        The number of layers copied.
    """
    copied = 0
    for path, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            continue
        weights = [torch.from_numpy(w.copy()) for w in keras_weights(keras_layer_name(path))]
        if isinstance(module, nn.Conv2d):  # HWIO -> OIHW
            module.weight.copy_(weights[0].permute(3, 2, 0, 1))
            if module.bias is not None:
                module.bias.copy_(weights[1])
        elif isinstance(module, nn.BatchNorm2d):  # gamma, beta, moving mean, moving variance
            for target, value in zip((module.weight, module.bias, module.running_mean, module.running_var), weights):
                target.copy_(value)
        else:
            module.weight.copy_(weights[0].T)
            module.bias.copy_(weights[1])
        copied += 1
    return copied


def parameter_counts(model: nn.Module) -> dict:
    """Trainable parameters and BN running statistics (``num_batches_tracked`` left out, Keras has none)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return {"trainable": int(trainable), "non_trainable": int(stats)}

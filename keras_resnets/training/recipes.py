"""Named training recipes: each paper's CIFAR setting, the ImageNet one, the CIFAR-10 study's, the demo's.

A recipe holds defaults; every field can be overridden per run (``train(..., lr=0.05)``).
All paper recipes share He et al.'s optimiser: SGD, momentum 0.9, weight decay 1e-4, batch 128,
lr 0.1 (ImageNet: batch 256). The ImageNet recipes use the streaming input pipeline (their
augmentations crop the source photos; ``image_size`` defaults to 224). Weight decay is applied as an L2 penalty on convolution and dense kernels (coupled, as in
the papers' Caffe/Torch code, where it goes through momentum); ``weight_decay_mode="decoupled"``
selects Keras' decoupled ``SGD(weight_decay=...)`` instead, which decays about 10x less at
momentum 0.9 for the same coefficient.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from keras_resnets.runs import RunConfig

WEIGHT_DECAY_MODES = ("l2", "decoupled")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of a training run.

    Attributes:
        name: recipe name.
        description: one line: where the setting comes from.
        epochs: training epochs; ``None`` means derive them from ``iterations``.
        iterations: total optimiser iterations of the paper (used when ``epochs`` is ``None``).
        batch_size: images per batch.
        lr: initial learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: decay coefficient (see ``weight_decay_mode``).
        weight_decay_mode: ``"l2"`` (coupled penalty on kernels) or ``"decoupled"``.
        schedule: ``lr_ratio``, ``milestones``, ``cosine`` or ``constant``.
        lr_ratio: shares at lr, lr/10, lr/100 for the ``lr_ratio`` schedule.
        warmup_steps: iterations at ``lr / 10`` first.
        augment: augmentation policy.
        expand: augmented copies added statically (0: augment on the fly).
        optimizer: ``sgd`` (with ``momentum``, ``nesterov``: the papers') or ``adam``.
    """

    name: str
    description: str
    epochs: int | None = None
    iterations: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    weight_decay_mode: str = "l2"
    schedule: str = "lr_ratio"
    lr_ratio: str = "5:3:2"
    warmup_steps: int = 0
    augment: str = "crop_flip"
    expand: int = 0
    optimizer: str = "sgd"

    def to_dict(self) -> dict:
        """JSON-ready dict of the fields."""
        return asdict(self)


RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "he2016_cifar",
            "Deep Residual Learning, CIFAR-10: lr 0.1 /10 at 32k and 48k iterations, stop at 64k, "
            "pad-4 crop + flip",
            iterations=64000,
            schedule="milestones",
        ),
        Recipe(
            "he2016_cifar_warmup",
            "Deep Residual Learning, CIFAR-10 ResNet-110: as he2016_cifar with 400 warm-up "
            "iterations at lr 0.01",
            iterations=64000,
            schedule="milestones",
            warmup_steps=400,
        ),
        Recipe(
            "he2016_identity_cifar",
            "Identity Mappings, CIFAR: lr 0.1 /10 at 32k and 48k iterations, stop at 64k, "
            "pad-4 crop + flip, 400 warm-up iterations at lr 0.01 (ResNet-110/164/1001)",
            iterations=64000,
            schedule="milestones",
            warmup_steps=400,
        ),
        Recipe(
            "cifar10_study",
            "The CIFAR-10 study: lr 0.1 then 0.01 then 0.001 by an epoch ratio (default 5:3:2), "
            "crop + flip",
            epochs=100,
            schedule="lr_ratio",
            lr_ratio="5:3:2",
        ),
        Recipe(
            "cosine",
            "Modern option: cosine decay from lr 0.1 to 0 over 200 epochs, crop + flip, weight decay 5e-4",
            epochs=200,
            schedule="cosine",
            weight_decay=5e-4,
        ),
        Recipe(
            "he2016_imagenet",
            "Deep Residual Learning, ImageNet: batch 256, lr 0.1 /10 at epochs 30 and 60, stop at 90 "
            "(the fixed-epoch form of /10 at plateaus), shorter side in [256, 480] + random 224 crop + "
            "flip + colour (PCA lighting)",
            epochs=90,
            batch_size=256,
            schedule="lr_ratio",
            lr_ratio="1:1:1",
            augment="imagenet_scale",
        ),
        Recipe(
            "imagenet_inception_crop",
            "As he2016_imagenet with the random-resized-crop augmentation (8-100 % of the area, aspect "
            "3/4-4/3, 224x224) + flip + colour, the common variant of later ImageNet ResNets",
            epochs=90,
            batch_size=256,
            schedule="lr_ratio",
            lr_ratio="1:1:1",
            augment="inception_crop",
        ),
        Recipe(
            "digits_demo",
            "The offline demo: a few minutes on two CPU cores on the embedded 8x8 digits",
            epochs=12,
            batch_size=64,
            lr=0.05,
            schedule="cosine",
            weight_decay=5e-4,
            augment="crop",
        ),
        Recipe(
            "dilation_shapes",
            "Yu & Koltun's VGG-16 front-end (no batch normalisation) on the generated shapes: as "
            "shapes_segmentation but Adam at lr 1e-4 (at 1e-2 the loss explodes to ~1e6-1e8 in the first "
            "epoch; at 1e-3 it still jumps before settling)",
            epochs=12,
            batch_size=16,
            lr=1e-4,
            schedule="constant",
            augment="none",
            optimizer="adam",
        ),
        Recipe(
            "shapes_segmentation",
            "Segmentation on the generated shapes: Adam at a constant lr 1e-2, batch 16, weight decay 1e-4, no "
            "augmentation (the tiny set trains too slowly with SGD); dilated_resnet18_seg_narrow on the default 512 "
            "images at 64x64: 3 minutes on two shared CPU cores (145 s training, 42 images/s; the full-width "
            "dilated_resnet18_seg trains about 15x slower)",
            epochs=12,
            batch_size=16,
            lr=1e-2,
            schedule="constant",
            augment="none",
            optimizer="adam",
        ),
    )
}


# Models whose default recipe is not their task's: one row per model.
MODEL_RECIPES = {
    "dilation8_frontend": "dilation_shapes",
    "dilation8_context": "dilation_shapes",
}


def default_recipe(model: str, task) -> str:
    """The recipe a run of ``model`` uses when it names none: the model's own (``MODEL_RECIPES``),
    else its task's (``task.default_recipe``)."""
    return MODEL_RECIPES.get(model, task.default_recipe)


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; allowed: {', '.join(RECIPES)}")
    return RECIPES[name]


def with_overrides(recipe: Recipe, **overrides) -> Recipe:
    """A copy of ``recipe`` with the non-``None`` ``overrides`` applied."""
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None})


def recipe_of(config) -> Recipe:
    """The recipe a ``RunConfig`` trains with (its name and fields)."""
    fields = {k: getattr(config, k) for k in Recipe.__dataclass_fields__ if k in RunConfig.keys()}
    base = RECIPES.get(config.recipe) or Recipe(config.recipe or "custom", "")
    return with_overrides(base, **fields)

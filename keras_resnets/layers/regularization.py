"""Regularisers that act on a residual branch."""
from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_resnets")
class StochasticDepth(keras.layers.Layer):
    """Drop a whole residual branch per sample during training (Huang et al., 2016).

    At training time each sample's branch is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)``; at inference the layer is the identity.

    Args:
        rate: drop probability in [0, 1).
        seed: optional seed for the dropping pattern.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"stochastic depth rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        batch = keras.ops.shape(inputs)[0]
        mask = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < keep
        return inputs * keras.ops.cast(mask, inputs.dtype) / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}

"""Packaging for keras_resnets.

Pinned, tested versions live in ``requirements.lock``; ``make test`` / ``make demo``
install exactly those into ``.venv``. The ranges below are what the code supports.
"""
from setuptools import find_packages, setup

setup(
    name="keras_resnets",
    version="0.1.0",
    description="Residual networks (ResNet v1/v2, the Identity Mappings ablations, plain nets, "
    "DenseNet, dilated ResNets) for Keras 3: build, train, tune and ship to TFLite.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_resnets", "keras_resnets.*"]),
    install_requires=[
        "keras>=3.15,<3.16",
        "numpy>=1.26",
    ],
    extras_require={
        # Everything a CPU machine needs for data, training, tuning and export.
        "tf": [
            "tensorflow-cpu>=2.21,<2.22",
            "tensorboard>=2.21,<2.22",
            "tensorflow-datasets>=4.9.10",
            "keras-tuner==1.4.8",
            "tensorflow-model-optimization==0.8.1",
            "tf_keras>=2.21,<2.22",
            "ai-edge-litert==2.3.0",
            "scikit-learn",
            "matplotlib",
            "tqdm",
        ],
        # `keras-resnets export --to onnx`: Keras' ONNX export (tf2onnx) and the onnxruntime check.
        "onnx": [
            "tf2onnx==1.17.0",
            "onnx==1.23.2",
            "onnxruntime==1.32.0",
        ],
        # Executing the reproduction notebooks (notebooks/run_notebooks.py, tests/notebooks).
        "notebooks": [
            "nbclient==0.11.0",
            "nbformat==5.11.1",
            "ipykernel==7.4.0",
        ],
        # NVIDIA GPU machines: JAX with CUDA 12 for the model code (KERAS_BACKEND=jax),
        # TensorFlow with its CUDA libraries for tf.data / export.
        "gpu": [
            "jax[cuda12]",
            "tensorflow[and-cuda]>=2.21,<2.22",
        ],
        "test": ["pytest", "pytest-timeout", "pytest-xdist", "jax[cpu]", "torch"],
    },
    entry_points={"console_scripts": ["keras-resnets=keras_resnets.cli:main"]},
)

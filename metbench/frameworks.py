"""The frameworks an entry may declare (``framework`` in ``metbench.toml``), in one registry.

Everything that depends on an entry's framework reads it from here: the manifest check, the
results schema, the modules whose versions a result records, the device check, the GPU memory
measurement and the site's "ML" kind.

=========  ==============================  ====  ==========================================
name       modules recorded                ML    device check for ``--device cuda``
=========  ==============================  ====  ==========================================
numpy      (none)                          no    always runs on the CPU
torch      torch                           yes   ``torch.cuda.is_available()``
keras      tensorflow, keras               yes   a TensorFlow GPU device; with
                                                 ``KERAS_BACKEND=torch``, PyTorch's
onnx       onnxruntime                     yes   onnxruntime's ``CUDAExecutionProvider``
=========  ==============================  ====  ==========================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["FRAMEWORKS", "DeviceUnavailable", "Framework", "framework"]


class DeviceUnavailable(Exception):
    """``--device cuda`` was asked for and the framework sees no GPU (the message says so)."""


def _cpu_only() -> str:
    return "cpu"


def _torch_cuda() -> str:
    import torch

    if not torch.cuda.is_available():
        raise DeviceUnavailable("--device cuda: PyTorch sees no CUDA device here; use --device cpu")
    return f"cuda:{torch.cuda.get_device_name(0)}"


def _keras_on_torch() -> bool:
    """Whether Keras runs on PyTorch here (``KERAS_BACKEND=torch``, read as Keras reads it)."""
    return os.environ.get("KERAS_BACKEND", "").strip() == "torch"


def _keras_cuda() -> str:
    if _keras_on_torch():  # e.g. a GPU machine with PyTorch and Keras but no TensorFlow
        return _torch_cuda()
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        raise DeviceUnavailable("--device cuda: TensorFlow sees no GPU here; use --device cpu")
    return "cuda"


def _onnx_cuda() -> str:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise DeviceUnavailable("--device cuda: onnxruntime has no CUDAExecutionProvider here")
    return "cuda"


def _torch_memory_hooks() -> tuple[Callable[[], int | None], Callable[[], None]]:
    import torch

    return (lambda: int(torch.cuda.max_memory_allocated())), torch.cuda.reset_peak_memory_stats


def _keras_memory_hooks() -> tuple[Callable[[], int | None], Callable[[], None]]:
    if _keras_on_torch():
        return _torch_memory_hooks()
    return (lambda: None), (lambda: None)  # TensorFlow's allocator is not read


@dataclass(frozen=True)
class Framework:
    """One framework.

    Attributes
    ----------
    name
        As written in ``metbench.toml`` and in results.
    modules
        The modules whose versions a result records.
    machine_learning
        Entries of this framework are learned models (the site's "ML" kind).
    cuda_device
        Checks that a GPU is usable and names it (raises :class:`DeviceUnavailable`).
    gpu_memory_hooks
        ``(peak bytes, reset)`` of the GPU memory the framework allocates, or None where it
        cannot tell.
    """

    name: str
    modules: tuple[str, ...]
    machine_learning: bool
    cuda_device: Callable[[], str]
    gpu_memory_hooks: Callable[[], tuple[Callable[[], int | None], Callable[[], None]]] | None = (
        None
    )

    def device(self, requested: str) -> str:
        """The device an entry runs on when ``requested`` (``cpu`` or ``cuda``) is asked for."""
        return "cpu" if requested == "cpu" else self.cuda_device()

    def memory_hooks(self, device: str) -> tuple[Any, Any]:
        """``(peak, reset)`` GPU memory hooks on ``device``, or ``(None, None)``."""
        if device == "cpu" or self.gpu_memory_hooks is None:
            return None, None
        return self.gpu_memory_hooks()


#: Every framework, by name.
FRAMEWORKS: Final[dict[str, Framework]] = {
    f.name: f
    for f in (
        Framework("numpy", (), False, _cpu_only),
        Framework("torch", ("torch",), True, _torch_cuda, _torch_memory_hooks),
        Framework("keras", ("tensorflow", "keras"), True, _keras_cuda, _keras_memory_hooks),
        Framework("onnx", ("onnxruntime",), True, _onnx_cuda),
    )
}


def framework(name: str) -> Framework:
    """The registry's entry of ``name`` (a KeyError naming the known ones otherwise)."""
    try:
        return FRAMEWORKS[name]
    except KeyError:
        raise KeyError(f"framework {name!r} is not one of {', '.join(FRAMEWORKS)}") from None

"""ONNX export of the torch entries and their onnxruntime inference: one code for every entry.

Each torch entry takes ``runtime = "torch" | "onnx"``; its ``save`` writes ``<weights>.onnx``
beside the state dict with :func:`export_onnx` (PyTorch's dynamo exporter, dynamic batch and
candidate axes), and the ``onnx`` runtime runs that file with :class:`OnnxRunner` on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["RUNTIMES", "OnnxRunner", "check_runtime", "export_onnx"]

#: The runtimes a torch entry offers.
RUNTIMES: Final[tuple[str, ...]] = ("torch", "onnx")


def check_runtime(runtime: str) -> str:
    """``runtime`` if it is one of :data:`RUNTIMES`; a ValueError otherwise."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be 'torch' or 'onnx', not {runtime!r}")
    return runtime


def export_onnx(
    network: Any,
    examples: tuple[Any, ...],
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: tuple[dict[int, Any], ...],
    path: Path,
) -> None:
    """Export ``network`` (a torch module, in eval mode; exported from the CPU and put back on its
    device) to ``path``, atomically.

    Parameters
    ----------
    examples
        One example input per network argument; the sizes of the dynamic axes must differ from
        each other and from 1, or the exporter would tie or specialise them.
    dynamic_shapes
        Per argument, ``{axis: torch.export.Dim}``.
    """
    import torch

    from metbench.data.store import atomic_path

    device = next(network.parameters()).device
    try:
        program = torch.onnx.export(
            network.cpu().eval(), examples, input_names=input_names, output_names=output_names,
            dynamic_shapes=dynamic_shapes, dynamo=True, verbose=False,
        )  # fmt: skip
    finally:
        network.to(device)  # the caller's module stays where it was
    with atomic_path(path) as tmp:
        program.save(str(tmp))


class OnnxRunner:
    """An onnxruntime CPU session on an exported network, opened on first use.

    Parameters
    ----------
    path
        The ``.onnx`` file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._session: Any = None

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The first output for named inputs."""
        if self._session is None:
            import onnxruntime

            if not self.path.is_file():
                raise FileNotFoundError(
                    f"{self.path} does not exist: train the entry (metbench train) and adopt the training (metbench adopt)"
                )
            self._session = onnxruntime.InferenceSession(
                str(self.path), providers=["CPUExecutionProvider"]
            )
        return np.asarray(self._session.run(None, inputs)[0])

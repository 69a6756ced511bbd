"""DeepMET on a GPU machine without TensorFlow: the same Keras 3 network and committed weights run
on PyTorch (``KERAS_BACKEND=torch``) give the MET that TensorFlow gives, event by event."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]

#: Predict the first 40 test events of a dataset with the committed resolution weights; the
#: backend is the one KERAS_BACKEND names (Keras reads it at import).
SCRIPT = """
import sys
import numpy as np
import keras
from metbench.data.source import EventSource
from tests.shipped import shipped

batch = next(iter(EventSource(sys.argv[1], "test", batch_size=40)))
model = shipped("deepmet-keras")(weights_file="weights/resolution.weights.h5",
                                 weights_dir=sys.argv[3])
np.save(sys.argv[2], model.predict(batch.for_estimator()))
print(keras.backend.backend())
"""


def _predict(backend: str, dataset: Path, out: Path) -> np.ndarray:
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(dataset), str(out), str(ROOT / "submissions" / "deepmet-keras")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == backend
    return np.load(out)


def test_keras_on_pytorch_gives_tensorflows_met(tiny_dataset, tmp_path):
    tf_met = _predict("tensorflow", tiny_dataset, tmp_path / "tf.npy")
    torch_met = _predict("torch", tiny_dataset, tmp_path / "torch.npy")
    assert tf_met.shape == torch_met.shape and len(tf_met) > 0
    assert np.median(np.hypot(*tf_met.T)) > 5.0  # a real MET, not zeros
    # float32 arithmetic in another order: agreement to a few MeV on MET of tens of GeV
    np.testing.assert_allclose(torch_met, tf_met, atol=0.01, rtol=1e-4)

"""The plugin contract (metbench.estimators.protocol) and the framework registry
(metbench.frameworks): every reference entry meets the protocols its manifest implies, and every
place that knows frameworks reads the one registry."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from metbench.estimators.protocol import (
    CovarianceEstimator,
    Estimator,
    NeutrinoEstimator,
    TrainableEstimator,
    missing_methods,
    satisfies,
)
from metbench.estimators.submission import FRAMEWORKS, load_submission
from metbench.frameworks import FRAMEWORKS as REGISTRY
from metbench.frameworks import DeviceUnavailable, framework
from metbench.results import RESULTS_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
#: The repository's own entries (baselines, references, oracle), whose code this process imports;
#: a stranger's (category "submission") runs only in the harness's sandboxed child, which checks
#: its protocol there.
ENTRIES = sorted(
    p.parent.name
    for p in (ROOT / "submissions").glob("*/metbench.toml")
    if load_submission(p.parent, require_weights=False).manifest.category != "submission"
)


def _entry_class(name: str) -> type:
    sub = load_submission(ROOT / "submissions" / name, require_weights=False)
    module_name, class_name = sub.manifest.entry.split(":")
    sys.path.insert(0, str(sub.folder))
    try:
        return getattr(importlib.import_module(module_name), class_name)
    finally:
        sys.path.remove(str(sub.folder))


@pytest.mark.parametrize("name", ENTRIES)
def test_every_entry_meets_the_protocols_its_manifest_implies(name):
    sub = load_submission(ROOT / "submissions" / name, require_weights=False)
    cls = _entry_class(name)
    assert missing_methods(cls, Estimator) == []
    trainable = missing_methods(cls, TrainableEstimator) == []
    assert trainable == sub.manifest.trainable, missing_methods(cls, TrainableEstimator)
    if name == "metnetsig-torch":
        assert missing_methods(cls, CovarianceEstimator) == []
    if name in ("deelema-torch", "nu-wmass"):  # the kinematic task's entries
        assert missing_methods(cls, NeutrinoEstimator) == []


def test_missing_methods_names_what_a_protocol_needs():
    class OnlyPredict:
        def predict(self, batch):
            return batch

    class NotCallable:
        predict = 3

    assert satisfies(OnlyPredict(), Estimator) and not satisfies(NotCallable(), Estimator)
    assert isinstance(NotCallable(), Estimator)  # why the worker does not rely on isinstance
    assert missing_methods(OnlyPredict(), TrainableEstimator) == ["fit", "save"]
    assert missing_methods(OnlyPredict(), CovarianceEstimator) == ["predict_uncertainty"]
    assert missing_methods(NotCallable(), Estimator) == ["predict"]
    assert not satisfies(OnlyPredict(), NeutrinoEstimator)


def test_every_place_that_knows_frameworks_reads_the_registry():
    assert FRAMEWORKS == tuple(REGISTRY) == ("numpy", "torch", "keras", "onnx")
    enum = RESULTS_SCHEMA["properties"]["entry"]["properties"]["framework"]["enum"]
    assert enum == [*REGISTRY, "unknown"]
    assert [f.name for f in REGISTRY.values() if f.machine_learning] == ["torch", "keras", "onnx"]
    assert framework("keras").modules == ("tensorflow", "keras")
    assert framework("numpy").device("cuda") == "cpu"  # a NumPy entry runs on the CPU anyway
    assert framework("torch").memory_hooks("cpu") == (None, None)
    with pytest.raises(KeyError, match="not one of numpy, torch, keras, onnx"):
        framework("jax")


def test_cuda_without_a_gpu_is_one_clear_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(
        DeviceUnavailable, match="PyTorch sees no CUDA device here; use --device cpu"
    ):
        framework("torch").device("cuda")


def test_a_manifest_with_an_unknown_framework_is_refused(tmp_path):
    folder = tmp_path / "jaxy"
    folder.mkdir()
    (folder / "metbench.toml").write_text(
        'name = "jaxy"\nentry = "model:M"\nframework = "jax"\ncategory = "submission"\n'
        'description = "x"\n'
    )
    (folder / "model.py").write_text("class M:\n    def predict(self, batch):\n        return 0\n")
    with pytest.raises(Exception, match=r"framework 'jax' is not one of numpy, torch, keras, onnx"):
        load_submission(folder)

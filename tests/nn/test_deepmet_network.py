"""The Keras DeepMET: same architecture as CMS's graphs (their weights load and give the graph's
output), PF MET at initialisation, padding-independent, a training that resumes, and the same MET
on PyTorch (``KERAS_BACKEND=torch``: a GPU machine without TensorFlow) as on TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from metbench.data.cache import converted_file
from metbench.data.source import EventSource
from metbench.nn.deepmet_graph import graph_weights, run_graph
from metbench.nn.deepmet_inputs import producer_inputs
from metbench.nn.deepmet_network import build_model, load_official_weights
from metbench.nn.training import TrainSettings
from tests.shipped import shipped, shipped_module

ROOT = Path(__file__).resolve().parents[2]
DeepMetKeras = shipped("deepmet-keras")
network_inputs = shipped_module("deepmet-keras", "deepmet_keras").network_inputs


@pytest.fixture(scope="module")
def pfnano_batch(shared_data, tmp_path_factory):
    os.environ.setdefault("METBENCH_DATA", str(tmp_path_factory.mktemp("cache")))
    folder = converted_file(shared_data / "pfnano.root")
    return next(iter(EventSource(folder, "test", batch_size=10))).for_estimator()


@pytest.mark.parametrize(
    "name", ["deepmet_v1_2018", "deepmet_resp_v1_2018", "deepmet_resp_v1_2016"]
)
def test_official_weights_reproduce_the_graph(shared_data, pfnano_batch, name):
    """The proof that the architecture is CMS's: their weights, their graph's output, 1e-4."""
    path = shared_data / "cms-deepmet" / f"{name}.graphdef"
    inputs = producer_inputs(pfnano_batch)
    model = build_model(4500, count_padding=True)
    load_official_weights(model, graph_weights(path))
    ones = np.ones(inputs[1].shape, np.float32)
    keras_out = np.asarray(model([inputs[0], *(a.astype(np.int32) for a in inputs[1:]), ones]))
    graph_out = run_graph(path, *inputs)
    assert np.abs(graph_out).max() > 1.0  # MET of tens of GeV, not a degenerate comparison
    np.testing.assert_allclose(keras_out, graph_out, rtol=1e-4, atol=1e-4)


def test_estimator_with_official_graph_equals_cms_official_entry(shared_data, pfnano_batch):
    DeepMetOfficial = shipped("deepmet-cms-official")

    graph = shared_data / "cms-deepmet" / "deepmet_v1_2018.graphdef"
    ours = DeepMetKeras(official_graph=str(graph)).predict(pfnano_batch)
    np.testing.assert_allclose(
        ours, DeepMetOfficial(str(graph)).predict(pfnano_batch), rtol=1e-4, atol=1e-3
    )


def test_untrained_network_is_pf_met(mini_dataset):
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=16))).for_estimator()
    out = np.asarray(build_model(None)(network_inputs(batch))) * 50.0
    pt, phi = batch.feature("pt").astype(np.float64), batch.feature("phi")
    pf = -np.stack([(pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)], axis=1)
    np.testing.assert_allclose(out, pf, rtol=1e-4, atol=1e-2)


def test_output_does_not_depend_on_padding(mini_dataset):
    """Trained networks leave padded candidates out (CMS's graphs count them)."""
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=8))).for_estimator()
    model = build_model(None)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial weights everywhere
        layer.set_weights([w + rng.normal(0, 0.1, w.shape) for w in layer.get_weights()])
    short = np.asarray(model(network_inputs(batch)))
    longer = np.asarray(model(network_inputs(batch, pad_to=batch.max_particles + 300)))
    assert np.abs(short).max() > 0.1
    np.testing.assert_allclose(short, longer, rtol=1e-5, atol=1e-5)


def test_training_resumes_where_it_stopped(tiny_dataset, tmp_path):
    """Two epochs in one go, or one epoch, a stop, and a resumed second: the same weights."""
    train = EventSource(tiny_dataset, "train")
    val = EventSource(tiny_dataset, "val")
    common = {"batch_size": 8, "seed": 4, "progress": False, "patience": 5}

    straight = DeepMetKeras(weights_dir=str(tmp_path))
    state = straight.fit(train, val, TrainSettings(tmp_path / "a", epochs=2, **common))
    assert [h["epoch"] for h in state.history] == [1, 2]

    interrupted = DeepMetKeras(weights_dir=str(tmp_path))
    interrupted.fit(train, val, TrainSettings(tmp_path / "b", epochs=1, **common))
    resumed = DeepMetKeras(weights_dir=str(tmp_path))
    state_b = resumed.fit(train, val, TrainSettings(tmp_path / "b", epochs=2, **common))
    assert [h["epoch"] for h in state_b.history] == [1, 2]
    np.testing.assert_allclose(
        state_b.history[1]["val_loss"], state.history[1]["val_loss"], rtol=1e-4
    )
    batch = next(iter(val)).for_estimator()
    np.testing.assert_allclose(
        resumed.predict(batch), straight.predict(batch), rtol=1e-4, atol=1e-3
    )


def _events(dataset: Path, split: str) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in (dataset / "events" / split).glob("*.parquet"))


def test_training_follows_the_originals_cyclic_rate(tiny_dataset, tmp_path):
    """No --learning-rate: DeepMETTraining's triangular2 from 3e-4 to 1e-3 with a half cycle of
    (train + validation events) / batch size steps; the rate of each epoch's last step, worked
    out from the piecewise-linear definition (the third epoch is in the second, half-high cycle)."""
    train, val = EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val")
    n_train, n_val = _events(tiny_dataset, "train"), _events(tiny_dataset, "val")
    batch = 8
    steps_per_epoch = -(-n_train // batch)
    half_cycle = (n_train + n_val) / batch
    assert 2 * half_cycle < 3 * steps_per_epoch  # the third epoch reaches the second cycle
    settings = TrainSettings(
        tmp_path / "a", epochs=3, batch_size=batch, seed=4, progress=False, patience=5
    )
    state = DeepMetKeras(weights_dir=str(tmp_path)).fit(train, val, settings)
    for h in state.history:
        i = h["epoch"] * steps_per_epoch - 1  # steps before the epoch's last one
        if i <= half_cycle:  # climbing in cycle 1
            expected = 3e-4 + 7e-4 * i / half_cycle
        elif i <= 2 * half_cycle:  # falling in cycle 1
            expected = 3e-4 + 7e-4 * (2 - i / half_cycle)
        elif i <= 3 * half_cycle:  # climbing in cycle 2, to half the height
            expected = 3e-4 + 3.5e-4 * (i / half_cycle - 2)
        else:
            expected = 3e-4 + 3.5e-4 * (4 - i / half_cycle)
        assert h["learning_rate"] == pytest.approx(expected, rel=1e-5), h


def test_training_can_start_from_given_weights(tiny_dataset, tmp_path):
    """--init-weights (the fine-tuning of committed weights): with a vanishing learning rate the
    first epoch's validation loss is near that of the given weights, far from the PF-MET
    start's."""
    train, val = EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val")
    common = {"batch_size": 8, "seed": 4, "progress": False, "epochs": 1}
    trained = DeepMetKeras(weights_dir=str(tmp_path))
    a = trained.fit(train, val, TrainSettings(tmp_path / "a", learning_rate=1e-2, **common))
    trained.save(tmp_path)
    weights = tmp_path / trained.weights_path.relative_to(trained.folder)
    still = {**common, "learning_rate": 1e-12}
    warm = DeepMetKeras(weights_dir=str(tmp_path))
    w = warm.fit(train, val, TrainSettings(tmp_path / "b", init_weights=weights, **still))
    cold = DeepMetKeras(weights_dir=str(tmp_path))
    c = cold.fit(train, val, TrainSettings(tmp_path / "c", **still))
    # the BatchNorm statistics still move during the epoch, so "close", not "equal"
    warm_gap = abs(w.history[0]["val_loss"] - a.best_val_loss)
    cold_gap = abs(c.history[0]["val_loss"] - a.best_val_loss)
    assert warm_gap < 0.05 * a.best_val_loss and warm_gap < 0.2 * cold_gap, (warm_gap, cold_gap)


def test_chunked_trimmed_prediction_equals_one_call(mini_dataset):
    """The entry cuts padding and runs large batches in chunks: the same MET as one call on the
    fully padded batch."""
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=40))).for_estimator()
    folder = ROOT / "submissions" / "deepmet-keras"
    small = DeepMetKeras(weights_dir=str(folder), chunk=7)
    whole = np.asarray(small.model(network_inputs(batch))) * 50.0
    np.testing.assert_allclose(small.predict(batch), whole, rtol=1e-4, atol=1e-3)


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
    pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    tf_met = _predict("tensorflow", tiny_dataset, tmp_path / "tf.npy")
    torch_met = _predict("torch", tiny_dataset, tmp_path / "torch.npy")
    assert tf_met.shape == torch_met.shape and len(tf_met) > 0
    assert np.median(np.hypot(*tf_met.T)) > 5.0  # a real MET, not zeros
    # float32 arithmetic in another order: agreement to a few MeV on MET of tens of GeV
    np.testing.assert_allclose(torch_met, tf_met, atol=0.01, rtol=1e-4)

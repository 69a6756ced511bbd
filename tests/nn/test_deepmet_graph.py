"""CMS's official DeepMET graphs: weights, an independent NumPy forward pass, and the agreement
with the DeepMET values CMS stored in PFNano."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from metbench.data.cache import converted_file
from metbench.data.source import EventSource
from metbench.nn.deepmet_graph import forward_numpy, graph_weights, run_graph
from metbench.nn.deepmet_inputs import producer_inputs
from tests.shipped import shipped

ROOT = Path(__file__).resolve().parents[2]
DeepMetOfficial = shipped("deepmet-cms-official")

GRAPHS = ("deepmet_v1_2018", "deepmet_resp_v1_2018", "deepmet_resp_v1_2016")


@pytest.fixture(scope="module")
def pfnano_batch(shared_data, tmp_path_factory):
    os.environ.setdefault("METBENCH_DATA", str(tmp_path_factory.mktemp("cache")))
    folder = converted_file(shared_data / "pfnano.root")
    return next(iter(EventSource(folder, "test", batch_size=10))).for_estimator()


@pytest.mark.parametrize("name", GRAPHS)
def test_numpy_forward_pass_equals_the_graph(shared_data, pfnano_batch, name):
    path = shared_data / "cms-deepmet" / f"{name}.graphdef"
    w = graph_weights(path)
    assert w["embedding0/embeddings"].shape == (3, 8)
    assert w["embedding1/embeddings"].shape == (11, 8)
    assert w["embedding2/embeddings"].shape == (4, 8)
    assert [w[f"dense_{i}/kernel"].shape for i in (1, 2, 3, 4)] == [
        (32, 64),
        (64, 32),
        (32, 16),
        (16, 3),
    ]
    assert w["output/kernel"].shape == (4, 2)
    inputs = producer_inputs(pfnano_batch)
    np.testing.assert_allclose(
        forward_numpy(w, *inputs), run_graph(path, *inputs), rtol=1e-4, atol=1e-5
    )


def test_producer_encodings(pfnano_batch):
    cont, charge, pdg, from_pv = producer_inputs(pfnano_batch)
    assert cont.shape == (10, 4500, 8) and charge.shape == (10, 4500)
    m = pfnano_batch.mask
    np.testing.assert_array_equal(charge[:, : m.shape[1]][m], pfnano_batch.feature("charge")[m] + 1)
    photons = pfnano_batch.feature("pdg_id")[m] == 22
    assert np.all(pdg[:, : m.shape[1]][m][photons] == 8)
    np.testing.assert_allclose(
        cont[:, : m.shape[1], 4][m], pfnano_batch.feature("pt")[m] / 50, rtol=1e-6
    )
    np.testing.assert_array_equal(from_pv[:, : m.shape[1]][m], pfnano_batch.feature("from_pv")[m])
    assert np.all(cont[:, m.shape[1] :] == 0) and set(np.unique(from_pv)) <= {0, 1, 2, 3}


def test_agreement_with_the_stored_deepmet(shared_data, pfnano_batch):
    """Measured, not yet 1% on 10/10: see the entry's README for what differs."""
    import uproot

    tree = uproot.open(shared_data / "pfnano.root")["Events"]
    events = tree["event"].array(library="np")
    idx = [int(np.flatnonzero(events == e)[0]) for e in pfnano_batch.event["event_id"]]
    model = DeepMetOfficial(str(shared_data / "cms-deepmet" / "deepmet_v1_2018.graphdef"))
    met = model.predict(pfnano_batch)
    ratio = np.hypot(*met.T) / tree["DeepMETResolutionTune_pt"].array(library="np")[idx]
    assert np.sum(np.abs(ratio - 1) < 0.01) >= 4
    assert np.median(np.abs(ratio - 1)) < 0.03


def test_compare_command(shared_data, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "metbench.cli", "compare", "submissions/pf", "--stored", "RawMET",
         "--dataset", str(shared_data / "pfnano.root")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "METBENCH_DATA": str(tmp_path)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "10 of 10 events within 1.0% in |MET|" in r.stdout


def test_the_official_graphs_run_sandboxed_through_their_weights_links(shared_data, tmp_path):
    """The graphs are weights of the entry (links into ../shared/data/cms-deepmet, never
    copied): the sandboxed child sees them, and the stored DeepMET of the PFNano file comes out
    as the entry's README says (most events within a few percent; the file does not store what
    fixes the rest, see the README)."""
    r = subprocess.run(
        [sys.executable, "-m", "metbench.cli", "compare", "submissions/deepmet-cms-official",
         "--variant", "resolution", "--stored", "DeepMETResolutionTune",
         "--dataset", str(shared_data / "pfnano.root")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "METBENCH_DATA": str(tmp_path)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    within = int(r.stdout.split(" of 10 events within 1.0%")[0].split()[-1])
    median = float(r.stdout.split("median |ratio - 1| ")[1].split("%")[0])
    assert within >= 3 and median < 3.0, r.stdout


def test_compare_resample(shared_data, tmp_path, tiny_dataset):
    """--resample on PFNano prints the redrawn range; a negative count is refused."""
    env = {**os.environ, "METBENCH_DATA": str(tmp_path)}

    def compare(*args):
        return subprocess.run(
            [sys.executable, "-m", "metbench.cli", "compare", "submissions/track",
             "--stored", "TkMET", *args],
            capture_output=True, text=True, cwd=ROOT, timeout=600, env=env,
        )  # fmt: skip

    # the track MET reads fromPV, which is redrawn for the soft bare tracks: it moves
    r = compare("--dataset", str(shared_data / "pfnano.root"), "--resample", "3")
    assert r.returncode == 0, r.stderr
    assert "resampled min" in r.stdout and "with the unstored inputs drawn 3 times" in r.stdout
    bad = compare("--dataset", str(shared_data / "pfnano.root"), "--resample", "-1")
    assert bad.returncode != 0 and "--resample must be >= 0" in bad.stderr
    # a generated dataset stores every track's d0 and dz: there is nothing to redraw (the command
    # then refuses in one line)
    from metbench.data.readers.cms import resample_unstored
    from metbench.data.source import EventSource

    generated = next(iter(EventSource(tiny_dataset, "test", batch_size=20))).for_estimator()
    same = resample_unstored(generated, np.random.default_rng(0))
    np.testing.assert_array_equal(same.particles, generated.particles)


def test_what_pfnano_does_not_store_moves_deepmet_beyond_one_percent(shared_data, pfnano_batch):
    """Why 1% on 10/10 cannot be demanded from this file: redrawing the d0, dz and fromPV that
    PFNano does not store for soft charged candidates (41% of them) moves the official network's
    |MET| by more than 1% in most events (measured with 16 draws: 9 of 10)."""
    from metbench.data.readers.cms import resample_unstored

    model = DeepMetOfficial(str(shared_data / "cms-deepmet" / "deepmet_v1_2018.graphdef"))
    rng = np.random.default_rng(1)
    met = np.stack(
        [np.hypot(*model.predict(resample_unstored(pfnano_batch, rng)).T) for _ in range(8)], 1
    )
    spread = (met.max(1) - met.min(1)) / np.median(met, 1)
    assert np.sum(spread > 0.01) >= 8

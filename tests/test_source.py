"""Padding, truncation and streaming of EventBatches."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from metbench.data.source import EventSource, pad_particles, read_events
from metbench.errors import DatasetError
from metbench.events import PARTICLE_FEATURES, TRUTH_EVENT_COLUMNS


def test_pad_orders_by_pt_and_truncates_the_softest():
    pf = ak.Array(
        [
            [
                {"pt": 1.0, "eta": 0.1},
                {"pt": 5.0, "eta": 0.5},
                {"pt": 3.0, "eta": 0.3},
                {"pt": 2.0, "eta": 0.2},
            ],
            [{"pt": 7.0, "eta": 0.7}],
            [],
        ]
    )
    particles, mask, extras, n_truncated = pad_particles(pf, 3, ("pt", "eta"))
    assert particles.shape == (3, 3, 2) and particles.dtype == np.float32
    np.testing.assert_array_equal(particles[0, :, 0], [5.0, 3.0, 2.0])  # the 1 GeV one is dropped
    np.testing.assert_allclose(particles[0, :, 1], [0.5, 0.3, 0.2])  # features travel with pt
    np.testing.assert_array_equal(mask, [[True, True, True], [True, False, False], [False] * 3])
    np.testing.assert_array_equal(particles[1, 1:], 0.0)
    assert n_truncated == 1
    assert extras == {}


def test_event_source_streams_fixed_size_batches(mini_dataset):
    source = EventSource(mini_dataset, "train", batch_size=100)
    sizes, n_seen = [], 0
    for batch in source:
        sizes.append(len(batch))
        n_seen += len(batch)
        assert batch.particles.shape == (len(batch), 4500, len(PARTICLE_FEATURES))
        assert batch.particles.dtype == np.float32
        assert batch.mask.shape == (len(batch), 4500)
        pt = batch.feature("pt")
        assert np.all(pt[:, :-1] >= pt[:, 1:])  # hardest first, zero padding last
        assert np.all(pt[~batch.mask] == 0)
        assert set(batch.event) == {"event_id", "mu", "n_pv"}
        assert set(TRUTH_EVENT_COLUMNS) <= set(batch.truth)
        assert batch.truth["truth_is_pileup"].shape == batch.mask.shape
    assert n_seen == len(source)
    assert all(s == 100 for s in sizes[:-1]) and 0 < sizes[-1] <= 100


def test_truncation_is_counted(mini_dataset):
    arr = read_events(mini_dataset, "val", columns=["pf.pt"])
    counts = ak.to_numpy(ak.num(arr.pf))
    limit = int(np.percentile(counts, 70))
    source = EventSource(
        mini_dataset, "val", batch_size=64, max_particles=limit, features=("pt", "charge")
    )
    kept = sum(int(b.mask.sum()) for b in source)
    assert source.n_truncated == int(np.sum(counts > limit)) > 0
    assert kept == int(np.minimum(counts, limit).sum())


def test_estimator_view_has_no_truth(mini_dataset):
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=8)))
    view = batch.for_estimator()
    assert view.truth == {}
    assert not any(k.startswith("truth_") or k in TRUTH_EVENT_COLUMNS for k in view.event)
    assert view.particles is batch.particles
    with pytest.raises(KeyError, match="not in this batch"):
        batch.feature("truth_is_pileup")


def test_bad_requests_are_clear(mini_dataset):
    with pytest.raises(DatasetError, match="unknown split"):
        EventSource(mini_dataset, "testing")
    with pytest.raises(DatasetError, match="unknown candidate feature"):
        EventSource(mini_dataset, features=("pt", "truth_is_pileup"))
    with pytest.raises(DatasetError, match="no process"):
        EventSource(mini_dataset, processes=["ww"])
    one = EventSource(mini_dataset, "test", processes=["z_mumu"])
    assert all(f.split("/")[-1].startswith("z_mumu") for f in one.files)


def test_take_and_hardest_slice_every_array_alike(mini_dataset):
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=8)))
    rows = batch.take(np.array([5, 1]))
    np.testing.assert_array_equal(rows.particles, batch.particles[[5, 1]])
    np.testing.assert_array_equal(rows.event["event_id"], batch.event["event_id"][[5, 1]])
    np.testing.assert_array_equal(rows.truth["gen_met_x"], batch.truth["gen_met_x"][[5, 1]])
    cut = batch.hardest(10)
    assert cut.particles.shape[1] == cut.mask.shape[1] == 10
    np.testing.assert_array_equal(cut.feature("pt"), batch.feature("pt")[:, :10])
    assert cut.truth["truth_is_pileup"].shape == (8, 10)  # per-candidate truth cut too
    np.testing.assert_array_equal(cut.truth["gen_met_x"], batch.truth["gen_met_x"])

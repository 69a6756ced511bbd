"""Padding, truncation and streaming of EventBatches."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from metbench.data.source import EventSource, pad_particles, read_events, to_event_batch
from metbench.errors import DatasetError
from metbench.events import PARTICLE_FEATURES, TRUTH_EVENT_COLUMNS, concatenate_batches


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
        # the entry's width whatever the batch holds: an estimate may not depend on its batch
        assert batch.particles.shape == (len(batch), 4500, len(PARTICLE_FEATURES))
        assert batch.particles.dtype == np.float32
        assert batch.mask.shape == (len(batch), 4500)
        busiest = int(batch.mask.sum(axis=1).max())
        assert batch.trimmed().particles.shape == (len(batch), busiest, len(PARTICLE_FEATURES))
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


def _hand_padded(pf: ak.Array, width: int, feature: str) -> np.ndarray:
    """The padded view by a Python loop: each event's candidates sorted by pt, cut, zero-padded."""
    out = np.zeros((len(pf), width), np.float32)
    for i, event in enumerate(ak.to_list(pf)):
        values = [c[feature] for c in sorted(event, key=lambda c: -c["pt"])][:width]
        out[i, : len(values)] = values
    return out


@pytest.mark.parametrize("cut", [3, 100])
def test_padded_and_jagged_views_hold_the_same_candidates(cut):
    rng = np.random.default_rng(5)
    counts = [4, 0, 7, 1, 2]
    pf = ak.Array(
        [
            [
                {"pt": float(p), "eta": float(e)}
                for p, e in zip(rng.exponential(5, k), rng.normal(size=k), strict=True)
            ]
            for k in counts
        ]
    )  # unsorted, as a foreign file may be
    pf = ak.values_astype(pf, np.float32)  # as stored
    particles, mask, _, n_truncated = pad_particles(pf, cut, ("pt", "eta"))
    width = cut
    np.testing.assert_array_equal(mask.sum(axis=1), np.minimum(counts, cut))
    assert particles.shape == (5, cut, 2)
    for k, name in enumerate(("pt", "eta")):
        np.testing.assert_array_equal(particles[..., k], _hand_padded(pf, width, name))
    assert n_truncated == sum(c > cut for c in counts)

    arr = ak.Array({"pf": pf, "event_id": np.arange(5), "mu": np.zeros(5), "n_pv": np.ones(5)})
    batch = to_event_batch(arr, cut, ("pt", "eta"))
    jagged = batch.jagged
    np.testing.assert_array_equal(jagged.counts, np.minimum(counts, cut))
    for i in range(5):  # event i's flat slice is its padded row without the padding
        rows = slice(jagged.offsets[i], jagged.offsets[i + 1])
        np.testing.assert_array_equal(
            jagged.values["pt"][rows], batch.feature("pt")[i][batch.mask[i]]
        )
    picked = batch.take(np.array([2, 0]))
    np.testing.assert_array_equal(picked.jagged.values["eta"], np.concatenate(
        [batch.feature("eta")[i][batch.mask[i]] for i in (2, 0)]))  # fmt: skip
    hard = batch.hardest(2)
    np.testing.assert_array_equal(hard.jagged.counts, np.minimum(jagged.counts, 2))
    np.testing.assert_array_equal(hard.jagged.values["pt"], hard.feature("pt")[hard.mask])


def test_stored_candidates_reach_the_jagged_view_without_a_copy(mini_dataset):
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=64)))
    jagged = batch.jagged
    assert not jagged.values["pt"].flags.owndata  # a view of the stored column, not a copy
    np.testing.assert_array_equal(jagged.values["pt"], batch.feature("pt")[batch.mask])
    np.testing.assert_array_equal(jagged.counts, batch.mask.sum(axis=1))
    head = batch.take(slice(10, 20))
    assert np.shares_memory(head.jagged.values["pt"], jagged.values["pt"])
    np.testing.assert_array_equal(head.jagged.values["dz"], head.feature("dz")[head.mask])


def test_concatenated_batches_pad_to_the_widest_and_trim_back(mini_dataset):
    small, large = (
        next(iter(EventSource(mini_dataset, "test", batch_size=8, max_particles=m)))
        for m in (50, 300)
    )
    both = concatenate_batches([small, large])
    assert both.max_particles == 300 and len(both) == 16
    np.testing.assert_array_equal(both.particles[:8, :50], small.particles)
    assert not both.mask[:8, 50:].any()
    np.testing.assert_array_equal(
        both.jagged.counts, np.r_[small.jagged.counts, large.jagged.counts]
    )
    first = both.take(slice(0, 8)).trimmed()
    assert first.max_particles == 50
    np.testing.assert_array_equal(first.particles, small.particles)


@pytest.mark.parametrize("max_particles", [4500, 300])
def test_reading_without_truth_gives_the_batches_of_the_general_path(mini_dataset, max_particles):
    """A source without truth (a submission's) reads pyarrow tables straight into batches; they
    hold exactly what the awkward path makes of the same records (candidates, order, cut,
    counts, event columns and dtypes)."""
    source = EventSource(mini_dataset, "test", batch_size=100, max_particles=max_particles,
                         truth=())  # fmt: skip
    fast = list(source)
    general = [
        to_event_batch(arr, max_particles) for arr in source.iter_arrays()
    ]  # the same files, the general path
    assert [len(b) for b in fast] == [len(b) for b in general] and len(fast) > 2
    assert source.n_truncated == sum(b.n_truncated for b in general)
    for a, b in zip(fast, general, strict=True):
        assert a.n_truncated == b.n_truncated and a.max_particles == b.max_particles
        assert a.event.keys() == b.event.keys() and a.truth == {} and b.truth == {}
        for k in a.event:
            assert a.event[k].dtype == b.event[k].dtype
            np.testing.assert_array_equal(a.event[k], b.event[k])
        np.testing.assert_array_equal(a.jagged.offsets, b.jagged.offsets)
        for k in PARTICLE_FEATURES:
            assert a.jagged.values[k].dtype == b.jagged.values[k].dtype
            np.testing.assert_array_equal(a.jagged.values[k], b.jagged.values[k])
        np.testing.assert_array_equal(a.particles, b.particles)
        np.testing.assert_array_equal(a.mask, b.mask)


def test_padding_is_made_once_on_first_use_and_shared(mini_dataset):
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=32, truth=())))
    assert batch._candidates._particles is None  # nothing padded while only flat arrays are read
    _ = batch.jagged.values["pt"].sum()
    assert batch._candidates._particles is None
    view = batch.for_estimator()
    assert view.particles is batch.particles  # made once, shared by the replaced batch
    assert batch.particles.shape == (32, 4500, len(PARTICLE_FEATURES))
    # replacing the padded arrays makes them the reference: the jagged view follows them
    from dataclasses import replace

    particles = batch.particles.copy()
    particles[:, :, PARTICLE_FEATURES.index("pt")] *= 2
    doubled = replace(batch, particles=particles)
    np.testing.assert_array_equal(doubled.jagged.values["pt"], 2 * batch.jagged.values["pt"])
    np.testing.assert_array_equal(doubled.mask, batch.mask)

"""METNet / METNetSig: the working-point inputs against the baselines they come from, azimuthal
symmetry, the covariance of METNetSig, ONNX parity, and a training that resumes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("fastjet")

from metbench.data.source import EventSource
from metbench.nn.metnet import (
    FEATURE_NAMES,
    N_TRUTH_BINS,
    RESOLUTION_FEATURES,
    METNetEstimator,
    METNetSigEstimator,
    flat_truth_weights,
    metnet_features,
    rotate,
    truth_bin,
)
from metbench.nn.training import TrainSettings
from tests.shipped import shipped

ROOT = Path(__file__).resolve().parents[2]
TrackMet, AtlasWorkingPointMet = shipped("track"), shipped("atlas-wp")


@pytest.fixture(scope="module")
def batch(mini_dataset):
    return next(iter(EventSource(mini_dataset, "test", batch_size=48))).for_estimator()


def column(features, name):
    return features[:, FEATURE_NAMES.index(name)].astype(np.float64)


def test_features_agree_with_the_baselines(batch):
    features, tight_phi = metnet_features(batch)
    assert features.shape == (48, len(FEATURE_NAMES)) and np.isfinite(features).all()
    tight = AtlasWorkingPointMet("tight").predict(batch)
    np.testing.assert_allclose(column(features, "tight_et"), np.hypot(*tight.T), rtol=1e-4)
    np.testing.assert_allclose(tight_phi, np.arctan2(tight[:, 1], tight[:, 0]), atol=1e-6)
    loose = rotate(AtlasWorkingPointMet("loose").predict(batch), -tight_phi)
    np.testing.assert_allclose(column(features, "loose_ex"), loose[:, 0], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(column(features, "loose_ey"), loose[:, 1], rtol=1e-4, atol=1e-3)
    track = TrackMet().predict(batch)
    np.testing.assert_allclose(column(features, "track_et"), np.hypot(*track.T), rtol=1e-4)
    np.testing.assert_array_equal(column(features, "n_pv"), batch.event["n_pv"])


def rotated_batch(batch, angle):
    particles = batch.particles.copy()
    k = batch.features.index("phi")
    phi = particles[:, :, k].astype(np.float64) + angle
    particles[:, :, k] = np.where(batch.mask, np.mod(phi + np.pi, 2 * np.pi) - np.pi, 0.0)
    return replace(batch, particles=particles)


@pytest.fixture(scope="module")
def trained_sig(tiny_dataset, tmp_path_factory):
    """A METNetSig trained for two epochs on the tiny dataset (saved with its ONNX export)."""
    folder = tmp_path_factory.mktemp("metnetsig")
    model = METNetSigEstimator(weights_dir=str(folder), widths=[32, 32])
    settings = TrainSettings(folder / "ckpt", epochs=2, batch_size=16, progress=False)
    model.fit(EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val"), settings)
    model.save(folder)
    return folder


def test_prediction_turns_with_the_event(trained_sig, batch):
    """Rotating every candidate by an angle rotates METNet's MET by it (the inputs are taken in
    the Tight-MET frame) and leaves the covariance's eigenvalues unchanged."""
    model = METNetSigEstimator(weights_dir=str(trained_sig), widths=[32, 32])
    angle = 0.7
    met = model.predict(batch)
    cov = model.predict_uncertainty(batch)
    turned = rotated_batch(batch, angle)
    turned.event["event_id"] = batch.event["event_id"] + 1  # a new batch for the cache
    met_turned = model.predict(turned)
    cov_turned = model.predict_uncertainty(turned)
    np.testing.assert_allclose(met_turned, rotate(met, np.full(len(met), angle)), atol=0.05)
    np.testing.assert_allclose(
        np.linalg.eigvalsh(cov_turned), np.linalg.eigvalsh(cov), rtol=1e-3, atol=1e-3
    )
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_onnx_export_matches_torch(trained_sig, batch):
    torch_model = METNetSigEstimator(weights_dir=str(trained_sig), widths=[32, 32])
    onnx_model = METNetSigEstimator(weights_dir=str(trained_sig), widths=[32, 32], runtime="onnx")
    np.testing.assert_allclose(
        onnx_model.predict(batch), torch_model.predict(batch), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(
        onnx_model.predict_uncertainty(batch),
        torch_model.predict_uncertainty(batch),
        rtol=1e-5,
        atol=1e-3,
    )


def test_committed_weights_have_a_matching_onnx_export(batch):
    """Every committed training of both entries, read by the entry's own class (as the harness
    reads it): the ONNX export gives the torch network's MET, covariance and degrees of freedom."""
    from metbench.estimators.submission import load_submission

    for name in ("metnet-torch", "metnetsig-torch"):
        folder = ROOT / "submissions" / name
        cls = shipped(name)
        trainings = [w for w in load_submission(folder).manifest.weights if w.endswith(".pt")]
        assert len(trainings) == 5, trainings  # the five seeds (issue 17)
        for weights in trainings:
            a = cls(weights_file=weights, weights_dir=str(folder))
            b = cls(weights_file=weights, weights_dir=str(folder), runtime="onnx")
            np.testing.assert_allclose(b.predict(batch), a.predict(batch), rtol=1e-5, atol=1e-3)
            for answer in ("predict_uncertainty", "predict_dof"):
                if hasattr(cls, answer):
                    np.testing.assert_allclose(
                        getattr(b, answer)(batch), getattr(a, answer)(batch), rtol=1e-4, atol=1e-3
                    )


def test_training_resumes_where_it_stopped(tiny_dataset, tmp_path):
    train, val = EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val")
    common = {"batch_size": 16, "progress": False, "seed": 2}
    straight = METNetEstimator(weights_dir=str(tmp_path), widths=[16])
    s = straight.fit(train, val, TrainSettings(tmp_path / "a" / "x", epochs=3, **common))
    part = METNetEstimator(weights_dir=str(tmp_path), widths=[16])
    part.fit(train, val, TrainSettings(tmp_path / "b" / "x", epochs=1, **common))
    resumed = METNetEstimator(weights_dir=str(tmp_path), widths=[16])
    r = resumed.fit(train, val, TrainSettings(tmp_path / "b" / "x", epochs=3, **common))
    assert [h["epoch"] for h in r.history] == [1, 2, 3]
    np.testing.assert_allclose(
        [h["val_loss"] for h in r.history], [h["val_loss"] for h in s.history], rtol=1e-5
    )


def test_training_can_start_from_given_weights(tiny_dataset, tmp_path):
    """--init-weights: with a vanishing learning rate the first epoch's validation loss is the
    given weights' loss (and not that of a fresh initialisation); a wrong file is one message."""
    from metbench.errors import MetbenchError
    from metbench.nn.torch_training import save_torch

    train, val = EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val")
    common = {"batch_size": 16, "progress": False, "seed": 2}
    trained = METNetEstimator(weights_dir=str(tmp_path), widths=[16])
    s = trained.fit(train, val, TrainSettings(tmp_path / "a", epochs=3, **common))
    weights = tmp_path / "trained.pt"
    save_torch(trained.network.state_dict(), weights)
    still = {**common, "epochs": 1, "learning_rate": 1e-12}
    warm = METNetEstimator(weights_dir=str(tmp_path), widths=[16])
    w = warm.fit(train, val, TrainSettings(tmp_path / "b", init_weights=weights, **still))
    cold = METNetEstimator(weights_dir=str(tmp_path), widths=[16])
    c = cold.fit(train, val, TrainSettings(tmp_path / "c", **still))
    np.testing.assert_allclose(w.history[0]["val_loss"], s.best_val_loss, rtol=1e-5)
    assert abs(c.history[0]["val_loss"] - s.best_val_loss) > 0.01 * s.best_val_loss
    other = METNetEstimator(weights_dir=str(tmp_path), widths=[32])
    with pytest.raises(MetbenchError, match="not weights of this network"):
        other.fit(train, val, TrainSettings(tmp_path / "d", init_weights=weights, **still))


def test_distribution_terms_against_direct_computations():
    """The optional geomloss terms on two small point clouds: the energy distance equals its
    closed form, the Sinkhorn divergence (p = 1, blur 0.01) approaches the exact Wasserstein-1
    distance of an optimal one-to-one assignment (scipy) from below."""
    import torch
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    from metbench.nn.metnet import distribution_distance

    rng = np.random.default_rng(3)
    a = rng.normal(0.0, 1.0, (40, 2))
    b = rng.normal([0.5, -0.3], [1.4, 0.8], (40, 2))
    ta, tb = torch.as_tensor(a), torch.as_tensor(b)
    ab, aa, bb = cdist(a, b).mean(), cdist(a, a).mean(), cdist(b, b).mean()
    energy = float(distribution_distance("energy")(ta, tb))
    np.testing.assert_allclose(
        energy, ab - 0.5 * aa - 0.5 * bb, rtol=1e-4
    )  # geomloss: sqrt(d² + ε)
    rows, cols = linear_sum_assignment(cdist(a, b))
    w1 = cdist(a, b)[rows, cols].mean()
    sinkhorn = float(distribution_distance("sinkhorn")(ta, tb))
    # the original's settings keep geomloss's coarse annealing (scaling 0.5), which stays below
    # W1 here (0.78 against 0.90; 0.89 with scaling 0.99); p = 2 or the energy would be far off
    assert 0.8 * w1 < sinkhorn <= 1.02 * w1, (sinkhorn, w1)
    assert float(distribution_distance("sinkhorn")(ta, ta)) < 1e-3


def test_training_with_a_distribution_term(tiny_dataset, tmp_path):
    """The loss of a batch is the Huber term plus weight x the Sinkhorn term; a bad name or a
    negative weight is refused."""
    import torch

    from metbench.nn.metnet import distribution_distance

    train, val = EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val")
    settings = TrainSettings(tmp_path / "x", epochs=1, batch_size=16, progress=False)
    plain = METNetEstimator(weights_dir=str(tmp_path), widths=[16])
    plain.fit(train, val, settings)
    both = METNetEstimator(
        weights_dir=str(tmp_path), widths=[16], distribution_loss="sinkhorn",
        distribution_weight=0.5,
    )  # fmt: skip
    net = plain.network
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(64, len(FEATURE_NAMES))))
    x = (x * net.x_std + net.x_mean).float()
    y = (net(x)[:, :2] + 20.0 * torch.randn(64, 2)).detach()
    out = net.standardised(x)[:, :2]
    y_std = (y - net.y_mean) / net.y_std
    expected = torch.nn.HuberLoss()(out, y_std) + 0.5 * distribution_distance("sinkhorn")(
        out, y_std
    )
    np.testing.assert_allclose(float(both._loss()(net, x, y)), float(expected), rtol=1e-5)
    assert float(both._loss()(net, x, y)) > float(plain._loss()(net, x, y)) + 1e-3
    with pytest.raises(ValueError, match="not one of sinkhorn, sinkhorn2, energy"):
        METNetEstimator(weights_dir=str(tmp_path), distribution_loss="wasserstein")
    with pytest.raises(ValueError, match="must be >= 0"):
        METNetEstimator(weights_dir=str(tmp_path), distribution_weight=-1.0)
    trained = METNetEstimator(
        weights_dir=str(tmp_path), widths=[16], distribution_loss="energy", distribution_weight=1.0
    )
    state = trained.fit(train, val, replace(settings, checkpoint_dir=tmp_path / "y"))
    assert np.isfinite(state.best_val_loss)


def test_the_resolution_network_cannot_see_the_met(trained_sig, batch):
    """METNetSig's sigma depends on the resolution inputs only: every MET vector and magnitude
    among the inputs can change without moving it (the MET does move), a sum ET cannot."""
    import torch

    model = METNetSigEstimator(weights_dir=str(trained_sig), widths=[32, 32])
    x = torch.as_tensor(metnet_features(batch)[0])
    met_columns = [i for i, name in enumerate(FEATURE_NAMES) if name not in RESOLUTION_FEATURES]
    assert {"loose_ex", "tight_et", "track_ey", "tenacious_sig"} <= {
        FEATURE_NAMES[i] for i in met_columns
    }
    changed = x.clone()
    changed[:, met_columns] *= 1.7
    changed[:, met_columns] += 30.0
    with torch.no_grad():
        out, out_changed = model.network(x), model.network(changed)
        assert not torch.allclose(out[:, :2], out_changed[:, :2])
        torch.testing.assert_close(out[:, 2], out_changed[:, 2])
        more_pileup = x.clone()
        more_pileup[:, FEATURE_NAMES.index("tight_soft_sumet")] += 300.0
        assert not torch.allclose(model.network(more_pileup)[:, 2], out[:, 2])


def test_the_covariance_is_sigma_squared_times_the_unit_matrix(trained_sig, batch):
    """One resolution per component, the network's sigma, in every direction."""
    import torch

    model = METNetSigEstimator(weights_dir=str(trained_sig), widths=[32, 32])
    model.predict(batch)
    cov = model.predict_uncertainty(batch)
    with torch.no_grad():
        sigma = model.network(torch.as_tensor(metnet_features(batch)[0]))[:, 2].double().numpy()
    assert np.all(sigma > 0)
    np.testing.assert_allclose(cov[:, 0, 0], sigma**2, rtol=1e-5)
    np.testing.assert_allclose(cov[:, 1, 1], sigma**2, rtol=1e-5)
    np.testing.assert_array_equal(cov[:, 0, 1], 0.0)


def test_flat_truth_weights_give_every_populated_bin_the_same_weight():
    """Against a histogram made with numpy: 0 GeV exactly is its own bin, 10-GeV bins follow,
    the last bin is open; each populated bin carries the same total weight; mean weight 1."""
    import torch

    rng = np.random.default_rng(3)
    t = np.concatenate([np.zeros(500), rng.exponential(40.0, 1500), [1e-3, 9.99, 10.0, 2000.0]])
    bins = truth_bin(torch.as_tensor(t)).numpy()
    edges = np.concatenate([[-1.0, 1e-12], np.arange(10.0, 401.0, 10.0), [np.inf]])
    expected = np.digitize(t, edges) - 1
    np.testing.assert_array_equal(bins, expected)
    assert bins[-4:].tolist() == [1, 1, 2, N_TRUTH_BINS - 1]
    table = flat_truth_weights(torch.as_tensor(t)).numpy().astype(np.float64)
    per_event = table[bins]
    assert per_event.mean() == pytest.approx(1.0, rel=1e-6)
    totals = np.bincount(bins, weights=per_event, minlength=N_TRUTH_BINS)
    populated = np.bincount(bins, minlength=N_TRUTH_BINS) > 0
    np.testing.assert_allclose(totals[populated], totals[populated][0], rtol=1e-6)
    assert np.all(table[~populated] == 0)


def test_the_resolution_likelihood_against_a_hand_computation():
    """The 2-d isotropic Gaussian NLL of the detached estimate's error, by hand."""
    import torch

    from metbench.nn.metnet import build_network, resolution_nll

    net = build_network(len(FEATURE_NAMES), (8,), significance=True)
    net.y_mean.copy_(torch.tensor([5.0, -1.0]))
    net.y_std.copy_(torch.tensor([20.0, 30.0]))
    out = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, np.log(2.0)]], requires_grad=True)
    y = torch.tensor([[10.0, 10.0], [0.0, 0.0]])
    # estimates [GeV]: (25, -1) and (5, 29); errors (15, -11) and (5, 29); sigma 25 and 50 GeV
    hand = ((15**2 + 11**2) / (2 * 25**2) + ((5**2 + 29**2) / (2 * 50**2) + 2 * np.log(2))) / 2
    nll = resolution_nll(net, out, y)
    assert nll.item() == pytest.approx(hand, rel=1e-5)
    nll.backward()
    assert torch.all(out.grad[:, :2] == 0)  # the MET is fixed: no gradient reaches it


def test_the_student_t_likelihood_is_scipys_multivariate_t():
    """The Student t NLL of the resolution network against scipy's multivariate_t: differences
    between events equal differences of -logpdf (the constant dropped), in the network's units;
    the Gaussian's NLL as nu grows."""
    import torch
    from scipy import stats

    from metbench.nn.metnet import build_network, resolution_nll

    net = build_network(len(FEATURE_NAMES), (8,), significance=True, student_t=True)
    net.y_mean.copy_(torch.tensor([5.0, -1.0]))
    net.y_std.copy_(torch.tensor([20.0, 30.0]))
    rng = np.random.default_rng(6)
    n = 6
    out = torch.tensor(
        np.concatenate(
            [rng.normal(size=(n, 2)), rng.normal(0, 0.5, (n, 1)), rng.normal(0, 1.5, (n, 1))], 1
        )
    )
    y = torch.tensor(rng.normal(0.0, 40.0, (n, 2)))
    per_event = torch.stack([resolution_nll(net, out[i : i + 1], y[i : i + 1]) for i in range(n)])
    unit = 25.0  # the mean of y_std: the network's unit of sigma
    err = (out[:, :2] * net.y_std + net.y_mean - y).numpy() / unit
    sigma, nu = np.exp(out[:, 2].numpy()), 2.0 + np.exp(out[:, 3].numpy())
    logpdf = np.array([
        stats.multivariate_t(np.zeros(2), np.eye(2) * sigma[i] ** 2 * (nu[i] - 2) / nu[i],
                             df=nu[i]).logpdf(err[i])
        for i in range(n)
    ])  # fmt: skip
    np.testing.assert_allclose(
        per_event.numpy() - per_event.numpy()[0], -(logpdf - logpdf[0]), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(per_event.numpy(), -logpdf - np.log(2 * np.pi), rtol=1e-9)
    # nu -> infinity: the Gaussian NLL of the same sigma
    big = out.clone()
    big[:, 3] = np.log(1e7)
    gauss = resolution_nll(net, out[:, :3], y)
    assert resolution_nll(net, big, y).item() == pytest.approx(gauss.item(), rel=1e-5)


def test_a_student_t_metnetsig_gives_degrees_of_freedom_in_torch_and_onnx(
    tiny_dataset, tmp_path, batch
):
    """METNetSigTEstimator trained briefly: nu > 2 per event, the covariance unchanged in form,
    and the ONNX export gives the same MET, covariance and nu."""
    from metbench.nn.metnet import METNetSigTEstimator

    model = METNetSigTEstimator(weights_dir=str(tmp_path), widths=[32, 32])
    settings = TrainSettings(tmp_path / "ckpt", epochs=2, batch_size=16, progress=False)
    model.fit(EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val"), settings)
    model.save(tmp_path)
    torch_model = METNetSigTEstimator(weights_dir=str(tmp_path), widths=[32, 32])
    onnx_model = METNetSigTEstimator(weights_dir=str(tmp_path), widths=[32, 32], runtime="onnx")
    met = torch_model.predict(batch)
    cov = torch_model.predict_uncertainty(batch)
    dof = torch_model.predict_dof(batch)
    assert dof.shape == (len(batch),) and np.all(dof > 2.0)
    np.testing.assert_array_equal(cov[:, 0, 1], 0.0)
    np.testing.assert_allclose(onnx_model.predict(batch), met, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(onnx_model.predict_uncertainty(batch), cov, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(onnx_model.predict_dof(batch), dof, rtol=1e-5)
    # the Gaussian METNetSig does not load these weights (one more output): it says so when used
    with pytest.raises(ValueError, match="does not fit this version"):
        METNetSigEstimator(weights_dir=str(tmp_path), widths=[32, 32]).predict(batch)


def test_weights_of_another_architecture_fail_when_used_not_when_trained(tmp_path, batch):
    """Weights of an earlier version of the network (here METNet's in METNetSig's place) do not
    stop a training from starting; running them says what to do."""
    import torch

    from metbench.nn.metnet import build_network

    (tmp_path / "weights").mkdir()
    old = build_network(len(FEATURE_NAMES), (32, 32)).state_dict()
    torch.save(old, tmp_path / "weights" / "metnetsig.pt")
    model = METNetSigEstimator(weights_dir=str(tmp_path), widths=[32, 32])
    with pytest.raises(ValueError, match=r"does not fit this version.*metbench train"):
        model.predict(batch)


def test_the_covariance_reuses_the_met_pass(trained_sig, batch, monkeypatch):
    """predict, then predict_uncertainty and predict_dof on the same batch share one pass of the
    network; predict itself always computes (as when throughput is timed), and another batch is
    not answered from the last one's outputs."""
    import metbench.nn.metnet as metnet

    passes = []
    features = metnet.metnet_features
    monkeypatch.setattr(metnet, "metnet_features", lambda b: passes.append(1) or features(b))
    model = METNetSigEstimator(weights_dir=str(trained_sig), widths=[32, 32])
    met = model.predict(batch)
    cov = model.predict_uncertainty(batch)
    assert len(passes) == 1
    np.testing.assert_allclose(model.predict_uncertainty(batch), cov)
    assert len(passes) == 1
    np.testing.assert_allclose(model.predict(batch), met)
    assert len(passes) == 2
    half = batch.take(slice(0, len(batch) // 2))
    assert model.predict_uncertainty(half).shape == (len(batch) // 2, 2, 2)
    assert len(passes) == 3


def test_metnetsig_runs_through_the_harness_with_its_committed_weights(tiny_dataset, tmp_path):
    """The entry as users run it: weights found in its folder, MET and covariance scored."""
    import json

    from tests.commands import cli

    r = cli(
        "run", "submissions/metnetsig-torch", "--variant", "onnx", "--dataset", tiny_dataset,
        "--results", tmp_path, "--no-throughput", "--n-boot", "0",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(next(tmp_path.rglob("metnetsig-torch-onnx.json")).read_text())
    cov = doc["scores"]["covariance"]
    assert 0.2 < cov["pull_width_1"] < 5 and 0 < cov["coverage_1sigma"] < 1
    assert doc["entry"]["n_parameters"] > 100_000

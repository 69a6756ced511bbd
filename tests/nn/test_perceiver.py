"""The Perceiver: its inputs, permutation and padding invariance, a save/load round trip, a cost
linear in the number of candidates (latency growth is measured by ``metbench bench scaling``, not
timed here); the original's training recipe (signlog target, Huber in its units, tt only, flat
gen-MET) and the summation variant (its output scales with the candidates, the mean's does not)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from metbench.data.source import EventSource
from metbench.nn.perceiver import (
    INFERENCE_SLOTS,
    CandidateTable,
    PerceiverEstimator,
    build_perceiver,
    decode_target,
    encode_target,
    inference_groups,
    perceiver_inputs,
    signlog,
    signlog_inverse,
)
from metbench.nn.training import TrainSettings

ROOT = Path(__file__).resolve().parents[2]
#: The training recipe of submissions/perceiver-torch (the original's train.sh).
RECIPE = {
    "processes": ["ttbar_2l2nu"], "flat_met": [0.0, 400.0, 40], "input_scale": "original",
    "target": "signlog", "target_scale": 3.67, "huber_delta": 1.0, "learning_rate": 3e-4,
    "weight_decay": 0.1, "decay_linear_only": True, "grad_clip": 0.5,
    "reduce_lr_on_plateau": False, "rotate": False, "init": "xavier_normal",
}  # fmt: skip
SMALL = {"embed_dim": 16, "n_latents": 8, "n_heads": 2, "n_layers": 1}

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def batch(mini_dataset):
    return next(iter(EventSource(mini_dataset, "test", batch_size=6))).for_estimator()


def test_inputs(batch):
    charged, charged_mask, _, neutral_mask = perceiver_inputs(batch)
    charge = batch.feature("charge")
    np.testing.assert_array_equal(charged_mask.sum(1), ((charge != 0) & batch.mask).sum(1))
    np.testing.assert_array_equal(neutral_mask.sum(1), ((charge == 0) & batch.mask).sum(1))
    # the hardest charged candidate of event 0, by hand
    sel = np.flatnonzero((charge[0] != 0) & batch.mask[0])[0]
    pt, phi = float(batch.feature("pt")[0, sel]), float(batch.feature("phi")[0, sel])
    px = pt * np.cos(phi)
    assert charged[0, 0, 0] == pytest.approx(np.sign(px) * np.log1p(abs(px)), rel=1e-5)
    assert charged[0, 0, 3] == charge[0, sel]
    assert charged[0, 0, 7] == (batch.feature("from_pv")[0, sel] == 0)
    # the augmentation turns every candidate by the event's angle
    turned = perceiver_inputs(batch, np.full(len(batch), np.pi / 2))
    c = np.cos(phi + np.pi / 2) * pt
    assert turned[0][0, 0, 0] == pytest.approx(np.sign(c) * np.log1p(abs(c)), rel=1e-4, abs=1e-5)


def test_order_and_padding_do_not_matter(batch):
    torch.manual_seed(0)
    net = build_perceiver(embed_dim=32, n_latents=8, n_heads=4).eval()
    x = [torch.as_tensor(a) for a in perceiver_inputs(batch)]
    with torch.no_grad():
        out = net(*x)
        perm = torch.randperm(x[0].shape[1])  # the candidate axis, shared by both kinds
        shuffled = net(*(a[:, perm] for a in x))
        padded = net(
            *(torch.nn.functional.pad(a, (0, 0, 0, 50) if a.ndim == 3 else (0, 50)) for a in x)
        )
    assert out.abs().max() > 0
    torch.testing.assert_close(shuffled, out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(padded, out, rtol=1e-4, atol=1e-5)


def test_inference_groups_take_each_event_once_sorted_and_bounded():
    n = np.random.default_rng(4).integers(0, 6000, 300)
    n[:3] = [0, 9000, 9000]  # an empty event, and two larger than a group's slots
    groups = inference_groups(n, 8)
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), np.arange(len(n)))
    flat = np.concatenate(groups)
    assert (np.diff(n[flat]) >= 0).all()  # sorted by their candidates
    for g in groups:
        assert 1 <= len(g) <= 8
        assert len(g) == 1 or len(g) * n[g].max() <= INFERENCE_SLOTS
    # greedy: a group ends because the next event would not fit
    for g, following in itertools.pairwise(groups):
        bigger = len(g) + 1
        assert bigger > 8 or bigger * n[following[0]] > INFERENCE_SLOTS
    assert inference_groups(np.zeros(0, np.int64), 8) == []


def test_predict_is_each_event_alone_whatever_its_batch(mini_dataset):
    """The grouped inference gives every event the MET it gets alone (no padding at all), to
    float precision, in a batch of 64 events of all sizes (the committed weights)."""
    events = next(iter(EventSource(mini_dataset, "test", batch_size=64))).for_estimator()
    model = PerceiverEstimator(weights_dir=str(ROOT / "submissions" / "perceiver-torch"))
    grouped = model.predict(events)
    alone = np.concatenate([model.predict(events.take(slice(i, i + 1))) for i in range(64)])
    cfg = model.network_config

    def units(met):
        return encode_target(met, cfg["target"], cfg["target_scale"])

    np.testing.assert_allclose(units(grouped), units(alone), rtol=0, atol=1e-5)
    assert np.abs(grouped).max() > 1


def test_an_event_without_candidates_gives_a_finite_met(batch):
    empty = replace(batch, mask=np.zeros_like(batch.mask))
    net = PerceiverEstimator(embed_dim=16, n_latents=4, n_heads=2)
    with torch.no_grad():
        out = net.network(*net._tensors(perceiver_inputs(empty)))
    assert torch.isfinite(out).all()


def test_fit_save_load_predict(tiny_dataset, tmp_path):
    arch = {"embed_dim": 16, "n_latents": 8, "n_heads": 2, "n_layers": 1}
    model = PerceiverEstimator(weights_dir=str(tmp_path), **arch)
    settings = TrainSettings(tmp_path / "ckpt", epochs=2, batch_size=8, progress=False)
    state = model.fit(
        EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val"), settings
    )
    assert len(state.history) == 2 and all(np.isfinite(h["val_loss"]) for h in state.history)
    model.save(tmp_path)
    assert (tmp_path / "weights" / "perceiver.pt").is_file()
    loaded = PerceiverEstimator(weights_dir=str(tmp_path), **arch)
    test = next(iter(EventSource(tiny_dataset, "test", batch_size=5))).for_estimator()
    np.testing.assert_allclose(loaded.predict(test), model.predict(test), rtol=1e-5, atol=1e-4)
    # save wrote the ONNX export: onnxruntime gives the same MET, with batch and candidate
    # counts other than the export's examples
    onnx = PerceiverEstimator(weights_dir=str(tmp_path), runtime="onnx", chunk=3, **arch)
    np.testing.assert_allclose(onnx.predict(test), model.predict(test), rtol=1e-5, atol=1e-5)


def test_committed_weights_have_a_matching_onnx_export(batch):
    folder = ROOT / "submissions" / "perceiver-torch"
    torch_model = PerceiverEstimator(weights_dir=str(folder))
    onnx_model = PerceiverEstimator(weights_dir=str(folder), runtime="onnx")
    cfg = torch_model.network_config

    def units(met):  # the network's own output units (signlog or linear, as trained)
        return encode_target(met, cfg["target"], cfg["target_scale"])

    # parity to 1e-5 in the network's units
    np.testing.assert_allclose(
        units(onnx_model.predict(batch)), units(torch_model.predict(batch)), rtol=0, atol=1e-5
    )


def test_bench_scaling_prints_latency_per_size(tiny_dataset):
    from tests.commands import cli

    r = cli(
        "bench", "scaling", "submissions/pf", "--dataset", tiny_dataset,
        "--sizes", "10,40,160", "--duration", "0.05",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "linear fit" in r.stdout
    for n in ("10", "40", "160"):
        assert any(line.strip("│ ").startswith(n) for line in r.stdout.splitlines())
    r = cli("bench", "scaling", "submissions/pf", "--dataset", tiny_dataset, "--sizes", "99999")
    assert r.returncode == 2 and "fewer than 99999" in r.stderr
    r = cli("bench", "scaling", "submissions/pf", "--dataset", tiny_dataset, "--sizes", "ten")
    assert r.returncode == 2 and "comma-separated integers" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_entries_train_the_recipe():
    import tomllib

    for name in ("perceiver-torch", "perceiver-sum-torch"):
        params = tomllib.loads((ROOT / "submissions" / name / "metbench.toml").read_text())
        assert {k: params["parameters"][k] for k in RECIPE} == RECIPE, name


def test_signlog_and_its_inverse():
    import math

    x = np.array([-250.0, -1.5, -1e-3, 0.0, 2e-4, 0.7, 33.0, 1e4])
    by_hand = np.array([math.copysign(math.log1p(abs(v)), v) for v in x])
    np.testing.assert_allclose(signlog(x), by_hand, rtol=1e-12)
    np.testing.assert_allclose(signlog_inverse(by_hand), x, rtol=1e-12, atol=1e-15)
    met = np.array([[120.0, -35.0], [0.4, 0.0]])
    np.testing.assert_allclose(encode_target(met, "signlog", 3.67), by_hand_2d := np.vectorize(
        lambda v: math.copysign(math.log1p(abs(v)), v) / 3.67)(met))  # fmt: skip
    np.testing.assert_allclose(decode_target(by_hand_2d, "signlog", 3.67), met, rtol=1e-12)
    np.testing.assert_allclose(encode_target(met, "linear", 50.0), met / 50.0)
    np.testing.assert_allclose(decode_target(met / 50.0, "linear", 50.0), met)


def test_candidate_table_gives_the_inputs(batch):
    rng = np.random.default_rng(0)
    events = np.array([4, 1, 1, 0])  # any subset, repeats allowed
    angle = rng.uniform(-np.pi, np.pi, len(events))
    from_table = CandidateTable(batch).inputs(events, angle)
    direct = perceiver_inputs(batch.take(events), angle)
    for a, b in zip(from_table, direct, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    charged, charged_mask, _, neutral_mask = direct
    assert not (charged_mask & neutral_mask).any()
    n_charged = charged_mask.sum(1)
    # one axis: the charged candidates first, then the neutral ones, then padding
    for i in range(len(events)):
        total = n_charged[i] + neutral_mask[i].sum()
        assert charged_mask[i, : n_charged[i]].all() and neutral_mask[i, n_charged[i] : total].all()
    assert charged.shape[1] == max((charged_mask | neutral_mask).sum(1))


def _reference_forward(net, x):
    """The network evaluated the plain way: ``nn.MultiheadAttention`` on projected candidates."""
    c, cm, n, nm = x
    c, n = c / net.charged_scale, n / net.neutral_scale
    source = torch.where(nm[..., None], net.neutral_projection(n), net.charged_projection(c))
    mask = cm | nm
    cross = net.cross
    latent = net.latent.expand(len(c), -1, -1)
    kv = cross.norm_kv(source)
    z = (
        latent
        + cross.attention(cross.norm_q(latent), kv, kv, key_padding_mask=~mask, need_weights=False)[
            0
        ]
    )
    z = z + cross.mlp(cross.norm_mlp(z))
    for _ in range(net.n_layers):
        z = net.self_attention(z)
    if hasattr(net, "head"):
        return net.head(z.mean(1))
    sm = net.summation
    zn = sm.norm_latents(z)
    attended = sm.attention(sm.norm_candidates(source), zn, zn, need_weights=False)[0]
    w = (1.0 + sm.readout(source + attended)[..., 0]) * mask
    logp = torch.where(nm[..., None], x[2][..., :2], x[0][..., :2])  # signlog(px), signlog(py)
    met = -(w[..., None] * torch.sign(logp) * torch.expm1(logp.abs())).sum(1)
    return torch.sign(met) * torch.log1p(met.abs()) / 3.67


@pytest.mark.parametrize("head", ["mean", "sum"])
def test_reassociated_attention_is_multihead_attention(batch, head):
    torch.manual_seed(1)
    net = build_perceiver(**SMALL, head=head, input_scale="original", target="signlog",
                          target_scale=3.67).eval()  # fmt: skip
    for p in net.parameters():  # every bias and norm away from its initial value
        p.data += 0.1 * torch.randn_like(p)
    x = [torch.as_tensor(a) for a in perceiver_inputs(batch)]
    with torch.no_grad():
        torch.testing.assert_close(net(*x), _reference_forward(net, x), rtol=1e-4, atol=1e-5)


def test_sum_scales_with_the_candidates_the_mean_does_not(batch):
    """Every candidate twice: the true -sum p doubles; the summation variant's MET doubles, the
    original's (softmax over candidates, mean over latents) stays where it was."""
    x = perceiver_inputs(batch)
    doubled = [np.concatenate([a, a], axis=1) for a in x]
    for head in ("mean", "sum"):
        torch.manual_seed(2)
        net = build_perceiver(**SMALL, head=head, target="signlog", target_scale=3.67).eval()
        with torch.no_grad():
            for p in net.parameters():  # away from the start (the sum head's is the PF MET)
                p += 0.1 * torch.randn_like(p)
            once, twice = (
                decode_target(net(*map(torch.as_tensor, a)).numpy(), "signlog", 3.67)
                for a in (x, doubled)
            )
        assert np.abs(once).max() > 1.0
        if head == "sum":
            np.testing.assert_allclose(twice, 2 * once, rtol=1e-4, atol=1e-3)
        else:  # blind to the number of candidates
            np.testing.assert_allclose(twice, once, rtol=1e-4, atol=1e-4)


def test_the_summation_variant_starts_as_the_pf_met(batch):
    """Initialised as its training initialises it, the summation variant is the PF MET,
    -sum pt (cos phi, sin phi) over the candidates (computed here from pt and phi, not from the
    network's signlog inputs), as DeepMET's untrained network is."""
    from metbench.nn.perceiver import _xavier_normal_

    torch.manual_seed(3)
    net = build_perceiver(head="sum", input_scale="original", target="signlog", target_scale=3.67)
    _xavier_normal_(net)
    with torch.no_grad():
        met = decode_target(net(*map(torch.as_tensor, perceiver_inputs(batch))).numpy(),
                            "signlog", 3.67)  # fmt: skip
    pt, phi = batch.feature("pt").astype(np.float64), batch.feature("phi").astype(np.float64)
    pf_met = -np.stack([(batch.mask * pt * np.cos(phi)).sum(1),
                        (batch.mask * pt * np.sin(phi)).sum(1)], 1)  # fmt: skip
    assert np.hypot(*pf_met.T).min() > 5.0
    np.testing.assert_allclose(met, pf_met, rtol=1e-4, atol=2e-3)


def test_weights_files_keep_their_units_whatever_the_parameters(batch, tmp_path):
    """A weights file is decoded with the encoding it was trained with, not the entry's
    parameters: the committed weights (written by ``save``: the original recipe, signlog / 3.67)
    read by an entry whose parameters say linear / 50 GeV give the same MET; a bare state dict
    (the first committed weights' format) is read as linear / 50 GeV under the recipe's
    parameters, its output times 50 GeV."""
    from metbench.nn.perceiver import LEGACY_ENCODING

    folder = ROOT / "submissions" / "perceiver-torch"
    plain = PerceiverEstimator(weights_dir=str(folder))
    assert plain.network_config["target"] == "signlog"
    assert plain.network_config["target_scale"] == pytest.approx(3.67)
    first = PerceiverEstimator(weights_dir=str(folder), target="linear", target_scale=50.0)
    assert first.network_config["target"] == "signlog"
    np.testing.assert_allclose(first.predict(batch), plain.predict(batch), rtol=1e-6)

    torch.manual_seed(4)
    net = build_perceiver(**SMALL, **LEGACY_ENCODING).eval()
    (tmp_path / "weights").mkdir()
    torch.save(net.state_dict(), tmp_path / "weights" / "perceiver.pt")
    bare = PerceiverEstimator(weights_dir=str(tmp_path), **SMALL, **RECIPE)
    assert bare.network_config["target"] == "linear"
    with torch.no_grad():
        raw = net(*map(torch.as_tensor, perceiver_inputs(batch))).numpy()
    np.testing.assert_allclose(bare.predict(batch), 50.0 * raw, rtol=1e-5, atol=1e-5)


def test_huber_in_the_transformed_units(tiny_dataset):
    est = PerceiverEstimator(weights_file="none.pt", **SMALL, **RECIPE)
    table, truth = est._read(EventSource(tiny_dataset, "train"), None)
    source = EventSource(tiny_dataset, "train", processes=["ttbar_2l2nu"])
    gen = np.concatenate([np.stack([b.truth["gen_met_x"], b.truth["gen_met_y"]], -1)
                          for b in source])  # fmt: skip
    np.testing.assert_allclose(truth, gen, rtol=1e-6)  # tt only
    (x, y), *rest = est.training_batches(table, truth, batch_size=len(table))
    assert not rest
    by_hand = np.sign(gen) * np.log(1 + np.abs(gen)) / 3.67
    np.testing.assert_allclose(y.numpy(), by_hand, rtol=1e-5)
    pred = torch.as_tensor(by_hand + np.linspace(-2.5, 2.5, by_hand.size).reshape(by_hand.shape))
    d = np.abs(pred.numpy() - by_hand)
    huber = np.where(d <= 1.0, 0.5 * d**2, 1.0 * (d - 0.5)).mean()  # delta = 1
    loss = est.training_loss()(lambda *_: pred.float(), x, y)
    assert float(loss) == pytest.approx(huber, rel=1e-5)


def test_recipe_training_resumes_and_records_its_segments(tiny_dataset, tmp_path):
    import json

    train, val = EventSource(tiny_dataset, "train"), EventSource(tiny_dataset, "val")
    arch = {**SMALL, "head": "sum", "weights_file": "weights/perceiver-sum.pt"}
    recipe = {**RECIPE, "processes": ["w_lnu", "z_mumu"]}  # tiny's val split has no tt
    model = PerceiverEstimator(weights_dir=str(tmp_path), **arch, **recipe)
    settings = TrainSettings(tmp_path / "ckpt", epochs=1, batch_size=8, progress=False)
    model.fit(train, val, settings)
    state = model.fit(train, val, replace(settings, epochs=2))  # resumed for one more epoch
    assert [(s["first_epoch"], s["start"]) for s in state.segments] == [
        (1, "scratch"),
        (2, "checkpoint"),
    ]
    model.save(tmp_path)
    saved = torch.load(tmp_path / "weights" / "perceiver-sum.pt", weights_only=True)
    assert saved["network"]["head"] == "sum" and saved["network"]["target"] == "signlog"
    history = json.loads((tmp_path / "weights" / "perceiver-sum.history.json").read_text())
    assert len(history["segments"]) == 2 and history["recipe"]["grad_clip"] == 0.5
    # loaded with other parameters, the file's own configuration decides
    loaded = PerceiverEstimator(weights_dir=str(tmp_path), **arch)
    test = next(iter(EventSource(tiny_dataset, "test", batch_size=5))).for_estimator()
    np.testing.assert_allclose(loaded.predict(test), model.predict(test), rtol=1e-5, atol=1e-4)
    onnx = PerceiverEstimator(weights_dir=str(tmp_path), runtime="onnx", **arch)
    np.testing.assert_allclose(onnx.predict(test), model.predict(test), rtol=1e-4, atol=1e-3)
    # a new training from these weights embeds their history
    fresh = PerceiverEstimator(weights_dir=str(tmp_path / "b"), **arch, **recipe)
    start = replace(settings, checkpoint_dir=tmp_path / "ckpt-b",
                    init_weights=tmp_path / "weights" / "perceiver-sum.pt")  # fmt: skip
    state = fresh.fit(train, val, start)
    assert state.segments[0]["start"] == "init_weights"
    assert len(fresh._history["init_weights_history"]["segments"]) == 2

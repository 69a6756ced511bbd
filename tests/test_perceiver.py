"""The Perceiver: its inputs, permutation and padding invariance, a save/load round trip, and a
cost linear in the number of candidates (latency growth is measured by ``metbench bench
scaling``, not timed here)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from metbench.data.source import EventSource
from metbench.models.perceiver import PerceiverEstimator, build_perceiver, perceiver_inputs
from metbench.training import TrainSettings

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
        perm = torch.randperm(x[0].shape[1])
        shuffled = net(x[0][:, perm], x[1][:, perm], x[2], x[3])
        padded = net(
            torch.nn.functional.pad(x[0], (0, 0, 0, 50)),
            torch.nn.functional.pad(x[1], (0, 50)),
            x[2],
            x[3],
        )
    assert out.abs().max() > 0
    torch.testing.assert_close(shuffled, out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(padded, out, rtol=1e-4, atol=1e-5)


def test_an_event_without_candidates_gives_a_finite_met(batch):
    empty = replace(batch, mask=np.zeros_like(batch.mask))
    net = PerceiverEstimator(embed_dim=16, n_latents=4, n_heads=2)
    with torch.no_grad():
        out = net.network(*net._tensors(empty))
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
    from metbench.models.perceiver import OUTPUT_SCALE

    folder = Path(__file__).resolve().parents[1] / "submissions" / "perceiver-torch"
    torch_model = PerceiverEstimator(weights_dir=str(folder))
    onnx_model = PerceiverEstimator(weights_dir=str(folder), runtime="onnx")
    # parity to 1e-5 in the network's own units (the MET / OUTPUT_SCALE GeV)
    np.testing.assert_allclose(
        onnx_model.predict(batch) / OUTPUT_SCALE, torch_model.predict(batch) / OUTPUT_SCALE,
        rtol=0, atol=1e-5,
    )  # fmt: skip


def test_bench_scaling_prints_latency_per_size(tiny_dataset):
    from .test_harness import cli

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

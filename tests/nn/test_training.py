"""The generic training pieces against independent computations: the flat resampling, gradient
clipping in the PyTorch loop, its constant-learning-rate option and the segment record of a
resumed training."""

from __future__ import annotations

import numpy as np
import pytest

from metbench.nn.training import TrainSettings, TrainState, flat_resample, flat_sampling_weights

torch = pytest.importorskip("torch")


def test_flat_sampling_weights_are_inverse_bin_counts():
    values = np.array([5.0, 15.0, 12.0, 18.0, 25.0, 400.0, -3.0])
    edges = np.array([0.0, 10.0, 20.0, 30.0])
    # by hand: bins [0,10): 5 and -3 (under the range, in the first bin); [10,20): 15, 12, 18;
    # [20,30]: 25 and 400 (over the range, in the last bin)
    expected = np.array([1 / 2, 1 / 3, 1 / 3, 1 / 3, 1 / 2, 1 / 2, 1 / 2])
    np.testing.assert_allclose(flat_sampling_weights(values, edges), expected)
    with pytest.raises(ValueError, match="increasing"):
        flat_sampling_weights(values, np.array([0.0, 0.0, 1.0]))


def test_flat_resample_flattens_an_exponential():
    rng = np.random.default_rng(1)
    met = rng.exponential(60.0, 20_000)  # falls by e^-6.7 from 0 to 400 GeV
    edges = np.linspace(0.0, 400.0, 41)
    drawn = flat_resample(met, edges, 200_000, np.random.default_rng(2))
    counts, _ = np.histogram(np.clip(met[drawn], 0, 400), edges)
    nonempty = np.histogram(np.clip(met, 0, 400), edges)[0] > 0
    expected = counts[nonempty].sum() / nonempty.sum()
    # every populated bin within 5 sigma of the same count (Poisson)
    assert np.all(np.abs(counts[nonempty] - expected) < 5 * np.sqrt(expected))
    # the unweighted sample is far from flat: the first bin holds ~150x the last populated ones
    raw = np.histogram(met, edges)[0]
    assert raw[0] > 50 * raw[nonempty][-1]
    # same generator, same draw (a resumed epoch sees the same events)
    again = flat_resample(met, edges, 200_000, np.random.default_rng(2))
    np.testing.assert_array_equal(drawn, again)


def _linear_fit(tmp_path, grad_clip, **kwargs):
    """One SGD step of a bias-free linear model on one batch, through fit_torch."""
    from metbench.nn.torch_training import fit_torch

    x = torch.tensor([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]])
    y = torch.tensor([[4.0], [-2.0]])
    net = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.3, -0.2, 0.1]]))
    settings = TrainSettings(tmp_path / "ckpt", epochs=1, progress=False, learning_rate=0.1)
    fit_torch(
        net,
        lambda m, a, b: torch.nn.functional.mse_loss(m(a), b),
        lambda epoch: [(x, y)],
        lambda: [(x, y)],
        settings,
        optimizer_class="SGD",
        grad_clip=grad_clip,
        **kwargs,
    )
    return net.weight.detach().numpy()[0]


def test_gradient_clipping_is_applied(tmp_path):
    w0 = np.array([0.3, -0.2, 0.1])
    x = np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]])
    y = np.array([4.0, -2.0])
    grad = 2 * (x @ w0 - y) @ x / len(y)  # d/dw of the mean squared error, by hand
    assert np.linalg.norm(grad) > 0.5
    clipped = grad * 0.5 / np.linalg.norm(grad)
    np.testing.assert_allclose(_linear_fit(tmp_path / "a", 0.5), w0 - 0.1 * clipped, rtol=1e-5)
    np.testing.assert_allclose(_linear_fit(tmp_path / "b", None), w0 - 0.1 * grad, rtol=1e-5)
    # a bound above the norm changes nothing
    np.testing.assert_allclose(_linear_fit(tmp_path / "c", 1e3), w0 - 0.1 * grad, rtol=1e-5)


def test_constant_learning_rate_and_segments(tmp_path):
    from metbench.nn.torch_training import fit_torch

    x, y = torch.ones(4, 1), torch.zeros(4, 1)
    net = torch.nn.Linear(1, 1)
    ckpt = tmp_path / "ckpt"

    def run(epochs: int, scheduler: bool) -> TrainState:
        # the validation loss never improves after epoch 1: a plateau scheduler would act
        return fit_torch(
            net,
            lambda m, a, b: (m(a) - b).sum() * 0 + 1.0,
            lambda epoch: [(x, y)],
            lambda: [(x, y)],
            TrainSettings(ckpt, epochs=epochs, patience=99, progress=False, learning_rate=0.01),
            optimizer_class="SGD",
            reduce_lr_on_plateau=scheduler,
        )

    state = run(2, False)
    assert [s["start"] for s in state.segments] == ["scratch"]
    state = run(5, False)  # resumed for three more epochs
    assert [(s["first_epoch"], s["start"]) for s in state.segments] == [
        (1, "scratch"),
        (3, "checkpoint"),
    ]
    assert [h["learning_rate"] for h in state.history] == [0.01] * 5
    assert TrainState.load(ckpt).segments == state.segments  # saved with the state
    assert state.segments[1]["settings"]["epochs"] == 5
    state = run(5, False)  # finished: nothing runs, no segment
    assert len(state.segments) == 2
    halved = run(12, True)  # the plateau scheduler, for comparison, halves it
    assert halved.history[-1]["learning_rate"] < 0.01


def test_an_epoch_schedule_decays_the_rate_and_resumes_where_it_was(tmp_path):
    """A polynomial decay (DeeLeMa's original: power 2 over the epochs): each epoch's recorded
    rate is the one it trained with, by hand, and a training resumed from its checkpoint continues
    the schedule instead of starting it again."""
    from metbench.nn.torch_training import fit_torch

    x, y = torch.ones(4, 1), torch.zeros(4, 1)

    def run(folder, epochs):
        torch.manual_seed(0)
        net = torch.nn.Linear(1, 1)
        return fit_torch(
            net,
            lambda m, a, b: ((m(a) - b) ** 2).mean(),
            lambda epoch: [(x, y)],
            lambda: [(x, y)],
            TrainSettings(folder, epochs=epochs, patience=99, progress=False, learning_rate=0.01),
            epoch_schedule=lambda opt: torch.optim.lr_scheduler.PolynomialLR(
                opt, total_iters=6, power=2.0
            ),
        )

    expected = [0.01 * (1 - e / 6) ** 2 for e in range(6)]
    straight = run(tmp_path / "a", 6)
    np.testing.assert_allclose([h["learning_rate"] for h in straight.history], expected)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 6)
    np.testing.assert_allclose([h["learning_rate"] for h in resumed.history], expected)
    np.testing.assert_allclose(
        [h["val_loss"] for h in resumed.history], [h["val_loss"] for h in straight.history]
    )

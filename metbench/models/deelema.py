"""DeeLeMa (Yonsei-HEP-COSMO/DeeLeMa, arXiv:2212.12836): neutrino momenta of tt -> 2l2nu from
mass constraints, learned without the neutrinos' truth, in PyTorch.

Inputs per event: the two b quarks and the two leptons of the top and antitop chains (truth-matched,
``(E, px, py, pz)``) and the MET (PUPPI), in units of 100 GeV. An MLP (GELU, tanh approximation)
gives ``(qx_0, qy_1, qz_0, qz_1)``; the remaining transverse components follow from the MET,
``q_0 + q_1 = MET`` exactly in x and y; neutrinos are massless. Two learned mass parameters,
``m_W = elu(a_W) + 1`` and ``m_top = m_W + elu(a_top) + 1`` (in 100 GeV, as the original's
ordered parametrisation with a massless invisible particle), and the loss sums Huber distances
between the two chains' reconstructed W masses and between each and ``m_W``, and likewise for the
top. The neutrino truth is used only for scoring.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from metbench.events import EventBatch

__all__ = ["DeeLeMaEstimator", "build_deelema", "deelema_inputs"]

SCALE: Final[float] = 100.0  # GeV


def deelema_inputs(batch: EventBatch, met: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x (n, 18) float32, usable (n,) bool)``: (E, px, py, pz) of b_0, b_1, l_0, l_1 and the
    MET (px, py), divided by 100 GeV; ``usable`` where both chains are complete."""
    b, lep = batch.truth["truth_b_quarks"], batch.truth["truth_leptons"]
    usable = np.isfinite(b).all((1, 2)) & np.isfinite(lep).all((1, 2))
    epxpypz = [3, 0, 1, 2]
    parts = [b[:, 0, epxpypz], b[:, 1, epxpypz], lep[:, 0, epxpypz], lep[:, 1, epxpypz], met]
    x = np.concatenate(parts, axis=1) / SCALE
    x[~usable] = 0.0
    return x.astype(np.float32), usable


def build_deelema(
    hidden: int = 128, layers: int = 3, m_w: float = 70.0, m_top: float = 150.0
) -> Any:
    """The DeeLeMa network (a ``torch.nn.Module``): ``forward(x) -> (n, 2, 3)`` neutrino momenta
    in units of 100 GeV; ``masses()`` gives the learned (m_W, m_top) [GeV]; ``loss(x)`` the
    mass-consistency loss."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def inverse_elu_plus_one(value: float) -> float:  # elu(a) + 1 = value, value > 0
        return float(value - 1.0) if value >= 1.0 else float(np.log(value))

    class DeeLeMa(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            blocks: list[nn.Module] = [nn.Linear(18, hidden), nn.GELU(approximate="tanh")]
            for _ in range(layers):
                blocks += [nn.Linear(hidden, hidden), nn.GELU(approximate="tanh")]
            blocks.append(nn.Linear(hidden, 4))
            self.net = nn.Sequential(*blocks)
            self.a_w = nn.Parameter(torch.tensor(inverse_elu_plus_one(m_w / SCALE)))
            self.a_top = nn.Parameter(torch.tensor(inverse_elu_plus_one((m_top - m_w) / SCALE)))

        def mass_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
            m_w = F.elu(self.a_w) + 1.0
            return m_w, m_w + F.elu(self.a_top) + 1.0

        def masses(self) -> tuple[float, float]:
            m_w, m_top = self.mass_parameters()
            return float(m_w.detach()) * SCALE, float(m_top.detach()) * SCALE

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q = self.net(x)
            met_x, met_y = x[:, 16], x[:, 17]
            q0 = torch.stack([q[:, 0], met_y - q[:, 1], q[:, 2]], dim=1)
            q1 = torch.stack([met_x - q[:, 0], q[:, 1], q[:, 3]], dim=1)
            return torch.stack([q0, q1], dim=1)

        def loss(self, x: torch.Tensor, delta: float = 0.1) -> torch.Tensor:
            q = self(x)
            nu = torch.cat([q.norm(dim=-1, keepdim=True), q], dim=-1)  # (n, 2, 4) E, p
            b = torch.stack([x[:, 0:4], x[:, 4:8]], dim=1)
            lep = torch.stack([x[:, 8:12], x[:, 12:16]], dim=1)

            def mass(p: torch.Tensor) -> torch.Tensor:
                m2 = p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)
                return torch.sqrt(torch.clamp(m2, min=1e-8))

            m_w_chains = mass(lep + nu)
            m_top_chains = mass(lep + nu + b)
            m_w, m_top = self.mass_parameters()
            total = torch.zeros((), device=x.device)
            for chains, target in ((m_w_chains, m_w), (m_top_chains, m_top)):
                ones = torch.ones_like(chains[:, 0])
                total = total + (
                    F.huber_loss(chains[:, 0], chains[:, 1], delta=delta)
                    + F.huber_loss(chains[:, 0], target * ones, delta=delta)
                    + F.huber_loss(chains[:, 1], target * ones, delta=delta)
                )
            return total

    return DeeLeMa()


class DeeLeMaEstimator:
    """DeeLeMa as a metbench entry (truth-matched b quarks and leptons; MET from PUPPI).

    Its MET is the PUPPI MET it is constrained to (the sum of its two neutrinos); its neutrinos
    go to the kinematic-reconstruction task.

    Parameters
    ----------
    weights_file
        The ``state_dict`` (``.pt``), relative to the submission folder; the ONNX export sits
        beside it with the suffix ``.onnx``.
    hidden, layers
        Width and depth of the MLP.
    runtime
        ``torch``, or ``onnx`` (onnxruntime on the export).
    weights_dir, device
        Given by the harness.
    """

    #: Parameters that change how the trained network is run, not what is trained.
    inference_parameters = ("runtime",)

    def __init__(
        self,
        weights_file: str = "weights/deelema.pt",
        hidden: int = 128,
        layers: int = 3,
        runtime: str = "torch",
        weights_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        from pathlib import Path

        import torch

        from metbench.baselines.met import PuppiMet
        from metbench.models.onnx_runtime import OnnxRunner, check_runtime

        self.runtime = check_runtime(runtime)

        self.folder = Path(weights_dir) if weights_dir else Path.cwd()
        self.weights_path = self.folder / weights_file
        self.hidden, self.layers = hidden, layers
        self.network = build_deelema(hidden, layers)
        if self.weights_path.is_file():
            self.network.load_state_dict(
                torch.load(self.weights_path, map_location="cpu", weights_only=True)
            )
        self.network.eval()
        self.met = PuppiMet()
        self._onnx = OnnxRunner(self.weights_path.with_suffix(".onnx"))

    def predict(self, batch: EventBatch) -> np.ndarray:
        return self.met.predict(batch)

    def predict_neutrinos(self, batch: EventBatch) -> np.ndarray:
        import torch

        if not self.weights_path.is_file():
            raise FileNotFoundError(f"{self.weights_path} does not exist: run metbench train")
        x, usable = deelema_inputs(batch, self.met.predict(batch))
        if self.runtime == "onnx":
            q = self._onnx({"inputs": x}).astype(np.float64) * SCALE
        else:
            with torch.no_grad():
                q = self.network(torch.as_tensor(x)).numpy().astype(np.float64) * SCALE
        q[~usable] = np.nan
        return q

    def _sample(self, source: Any, cap: int | None) -> np.ndarray:
        from metbench.data.source import EventSource, to_event_batch
        from metbench.training import read_sample

        ttbar = EventSource(source.folder, source.split, processes=["ttbar_2l2nu"])
        arr = read_sample(ttbar, cap)
        xs = []
        for i in range(0, len(arr), 256):
            batch = to_event_batch(arr[i : i + 256])
            x, usable = deelema_inputs(batch, self.met.predict(batch))
            xs.append(x[usable])
        return np.concatenate(xs)

    def fit(self, train: Any, val: Any, settings: Any) -> Any:
        """Unsupervised: the mass-consistency loss only (no neutrino truth)."""
        import torch

        from metbench.models.torch_training import fit_torch
        from metbench.training import describe

        xt = torch.as_tensor(self._sample(train, settings.train_events_per_process))
        xv = torch.as_tensor(self._sample(val, settings.val_events_per_process))
        print(f"train: {len(xt)} tt events, val: {len(xv)}", flush=True)
        torch.manual_seed(settings.seed)
        net = build_deelema(self.hidden, self.layers)

        def train_batches(epoch: int) -> Any:
            generator = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
            order = torch.randperm(len(xt), generator=generator)
            for i in range(0, len(xt), settings.batch_size):
                idx = order[i : i + settings.batch_size]
                yield xt[idx], xt[idx, :1]

        def val_batches() -> Any:
            yield xv, xv[:, :1]

        state = fit_torch(net, lambda m, x, _y: m.loss(x), train_batches, val_batches, settings)
        self.network = net.eval()
        m_w, m_top = net.masses()
        print(f"learned masses: m_W = {m_w:.1f} GeV, m_top = {m_top:.1f} GeV", flush=True)
        self._history = {
            "settings": describe(settings), "learned_masses": {"w": m_w, "top": m_top},
            **vars(state),
        }  # fmt: skip
        return state

    def save(self, folder: Any) -> None:
        """The state dict and the training history (with the learned masses)."""
        from metbench.models.torch_training import save_weights_and_history

        target = folder / self.weights_path.relative_to(self.folder)
        save_weights_and_history(self.network, target, getattr(self, "_history", None))
        self.export_onnx(target.with_suffix(".onnx"))

    def export_onnx(self, path: Any) -> None:
        """Export the network ((n, 18) inputs in, (n, 2, 3) neutrino momenta out) to ONNX."""
        import torch

        from metbench.models.onnx_runtime import export_onnx

        export_onnx(
            self.network, (torch.zeros((2, 18)),), ["inputs"], ["neutrinos"],
            ({0: torch.export.Dim("n")},), path,
        )  # fmt: skip

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

``canonical=True`` runs the MLP in a canonical frame of each event (rotated so that the MET points
along +x, boosted along z so that the visible system has pz = 0, and mirrored in z so that chain 0's
visible pz is >= 0) and transforms its neutrinos back. Masses and the MET constraint are invariant
under these transformations, so the loss is unchanged, but the network becomes exactly equivariant
under rotations about z, longitudinal boosts and z -> -z. The last matters for the neutrino pz: the
loss cannot tell the (up to four) solutions of an event apart, and a network without the z-mirror
symmetry settles on a z-even offset that shows as a pz bias (-57 GeV for the committed lab-frame
weights); an equivariant network has none by construction. ``zflip`` (training) adds mirrored
copies of the inputs (pz -> -pz of every visible particle, a symmetry of pp collisions).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from metbench.events import EventBatch

__all__ = [
    "ORIGINAL_BATCH_SIZE",
    "ORIGINAL_LEARNING_RATE",
    "PZ_COLUMNS",
    "SCALE",
    "build_deelema",
    "chain_inputs",
    "deelema_inputs",
    "fit_deelema",
    "original_schedule",
    "zflip",
]

SCALE: Final[float] = 100.0  # GeV
#: The original's training (``train.py``): Adam at 1e-2, batches of 64, decayed per epoch as
#: (1 - epoch / epochs)^2 (``PolynomialLR``, power 2) to zero at the last epoch.
ORIGINAL_LEARNING_RATE: Final[float] = 1e-2
ORIGINAL_BATCH_SIZE: Final[int] = 64
#: Columns of the (n, 18) inputs holding a pz (b_0, b_1, l_0, l_1).
PZ_COLUMNS: Final[tuple[int, ...]] = (3, 7, 11, 15)


def chain_inputs(b: np.ndarray, lep: np.ndarray, met: np.ndarray) -> np.ndarray:
    """The ``(n, 18)`` float32 inputs from ``(n, 2, 4)`` (px, py, pz, E) b quarks and leptons of
    the two chains [GeV] and the ``(n, 2)`` MET [GeV]: (E, px, py, pz) of b_0, b_1, l_0, l_1 and
    the MET (px, py), divided by 100 GeV."""
    epxpypz = [3, 0, 1, 2]
    parts = [b[:, 0, epxpypz], b[:, 1, epxpypz], lep[:, 0, epxpypz], lep[:, 1, epxpypz], met]
    return (np.concatenate(parts, axis=1) / SCALE).astype(np.float32)


def deelema_inputs(batch: EventBatch, met: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x (n, 18) float32, usable (n,) bool)``: :func:`chain_inputs` of the truth-matched b
    quarks and leptons; ``usable`` where both chains are complete (zeros elsewhere)."""
    b, lep = batch.truth["truth_b_quarks"], batch.truth["truth_leptons"]
    usable = np.isfinite(b).all((1, 2)) & np.isfinite(lep).all((1, 2))
    x = chain_inputs(b, lep, met)
    x[~usable] = 0.0
    return x, usable


def zflip(x: Any) -> Any:
    """The inputs mirrored in z (pz -> -pz of the b quarks and leptons; MET unchanged): numpy or
    torch, a copy."""
    y = x.clone() if hasattr(x, "clone") else x.copy()
    y[:, list(PZ_COLUMNS)] = -y[:, list(PZ_COLUMNS)]
    return y


def original_schedule(epochs: int) -> Any:
    """``epoch_schedule`` for :func:`metbench.nn.torch_training.fit_torch`: the original's
    polynomial decay of the learning rate, power 2, over ``epochs`` epochs.

    The decay is what lets the masses close: as the rate falls, the network solves the events
    more precisely and the learned masses climb to the kinematic endpoint (with a constant rate
    they stay 5-10 % low; ``metbench.nn.deelema_closure``)."""
    import torch

    return lambda optimizer: torch.optim.lr_scheduler.PolynomialLR(
        optimizer, total_iters=epochs, power=2.0
    )


def fit_deelema(network: Any, train: Any, val: Any, settings: Any) -> Any:
    """Train a :func:`build_deelema` network and its masses the original's way.

    ``train``, ``val``: ``(n, 18)`` float32 tensors of :func:`chain_inputs` (``train`` already
    augmented, if at all). Batches of ``settings.batch_size`` in an order drawn from
    ``settings.seed`` and the epoch; Adam at ``settings.learning_rate`` or the original's 1e-2,
    decayed by :func:`original_schedule` over ``settings.epochs``; the learned masses recorded in
    every epoch's history (``m_w``, ``m_top`` [GeV]). Returns the
    :class:`~metbench.nn.training.TrainState`; the network holds the best epoch's weights (on
    ``val``)."""
    import torch

    from metbench.nn.torch_training import fit_torch

    def train_batches(epoch: int) -> Any:
        generator = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
        order = torch.randperm(len(train), generator=generator)
        for i in range(0, len(train), settings.batch_size):
            rows = order[i : i + settings.batch_size]
            yield train[rows], train[rows, :1]

    def val_batches() -> Any:
        yield val, val[:, :1]

    def masses(model: Any) -> dict[str, float]:
        m_w, m_top = model.masses()
        return {"m_w": m_w, "m_top": m_top}

    return fit_torch(
        network,
        lambda model, x, _y: model.loss(x),
        train_batches,
        val_batches,
        settings,
        default_lr=ORIGINAL_LEARNING_RATE,
        epoch_log=masses,
        epoch_schedule=original_schedule(settings.epochs),
    )


def build_deelema(
    hidden: int = 256,
    layers: int = 5,
    m_w: float = 70.0,
    m_top: float = 150.0,
    canonical: bool = False,
    boost: bool = True,
) -> Any:
    """The DeeLeMa network (a ``torch.nn.Module``).

    ``forward(x) -> (n, 2, 3)`` neutrino momenta in units of 100 GeV; ``masses()`` gives the
    learned (m_W, m_top) [GeV]; ``chain_masses(x, q)`` the two chains' m(l nu) and m(l nu b);
    ``loss(x)`` the mass-consistency loss. ``canonical``: the MLP sees each event in its
    canonical frame (see the module docstring); the parameters are the same either way.
    ``boost=False`` leaves the longitudinal boost out of that frame (rotation and z-mirror only):
    the z-mirror equivariance, which removes the pz bias, stays; boosting the neutrinos back
    multiplies the network's pz errors by up to e^|y| of the visible system.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    def inverse_elu_plus_one(value: float) -> float:  # elu(a) + 1 = value, value > 0
        return float(value - 1.0) if value >= 1.0 else float(np.log(value))

    def mass(p: torch.Tensor) -> torch.Tensor:
        m2 = p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)
        return torch.sqrt(torch.clamp(m2, min=1e-8))

    class DeeLeMa(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            blocks: list[nn.Module] = [nn.Linear(18, hidden), nn.GELU(approximate="tanh")]
            for _ in range(layers):
                blocks += [nn.Linear(hidden, hidden), nn.GELU(approximate="tanh")]
            blocks.append(nn.Linear(hidden, 4))
            self.net = nn.Sequential(*blocks)
            self.canonical = canonical
            self.a_w = nn.Parameter(torch.tensor(inverse_elu_plus_one(m_w / SCALE)))
            self.a_top = nn.Parameter(torch.tensor(inverse_elu_plus_one((m_top - m_w) / SCALE)))

        def mass_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
            m_w = F.elu(self.a_w) + 1.0
            return m_w, m_w + F.elu(self.a_top) + 1.0

        def masses(self) -> tuple[float, float]:
            m_w, m_top = self.mass_parameters()
            return float(m_w.detach()) * SCALE, float(m_top.detach()) * SCALE

        def _neutrinos(self, x: torch.Tensor) -> torch.Tensor:
            q = self.net(x)
            met_x, met_y = x[:, 16], x[:, 17]
            q0 = torch.stack([q[:, 0], met_y - q[:, 1], q[:, 2]], dim=1)
            q1 = torch.stack([met_x - q[:, 0], q[:, 1], q[:, 3]], dim=1)
            return torch.stack([q0, q1], dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.canonical:
                return self._neutrinos(x)
            # rotation about z taking the MET to +x
            met = torch.sqrt(x[:, 16] ** 2 + x[:, 17] ** 2)
            safe = torch.clamp(met, min=1e-6)
            cos = torch.where(met > 1e-6, x[:, 16] / safe, torch.ones_like(met))
            sin = torch.where(met > 1e-6, x[:, 17] / safe, torch.zeros_like(met))
            # boost along z to the visible system's pz = 0 (cosh, sinh of its rapidity)
            e_vis = x[:, 0] + x[:, 4] + x[:, 8] + x[:, 12]
            pz_vis = x[:, 3] + x[:, 7] + x[:, 11] + x[:, 15]
            m_t = torch.sqrt(torch.clamp(e_vis**2 - pz_vis**2, min=1e-8))
            ch, sh = e_vis / m_t, pz_vis / m_t
            if not boost:
                ch, sh = torch.ones_like(ch), torch.zeros_like(sh)
            v = x[:, :16].reshape(-1, 4, 4)  # (E, px, py, pz) of b_0, b_1, l_0, l_1
            e, px, py, pz = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
            c, s, g, bg = cos[:, None], sin[:, None], ch[:, None], sh[:, None]
            e_c, pz_c = g * e - bg * pz, g * pz - bg * e
            px_c, py_c = c * px + s * py, c * py - s * px
            # mirror in z so that chain 0's visible pz (b_0 + l_0) is >= 0
            sign = torch.where(pz_c[:, 0] + pz_c[:, 2] >= 0, 1.0, -1.0)[:, None]
            canon = torch.stack([e_c, px_c, py_c, pz_c * sign], dim=-1).reshape(-1, 16)
            xc = torch.cat([canon, met[:, None], torch.zeros_like(met)[:, None]], dim=1)
            q = self._neutrinos(xc)
            qx, qy, qz = q[..., 0], q[..., 1], q[..., 2] * sign
            energy = torch.sqrt(qx**2 + qy**2 + qz**2)
            return torch.stack([c * qx - s * qy, s * qx + c * qy, g * qz + bg * energy], dim=-1)

        def chain_masses(
            self, x: torch.Tensor, q: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """``(m(l nu), m(l nu b))``, each ``(n, 2)``, of neutrinos ``q`` (n, 2, 3) (massless)
            with the inputs' leptons and b quarks, in units of 100 GeV."""
            nu = torch.cat([q.norm(dim=-1, keepdim=True), q], dim=-1)  # (n, 2, 4) E, p
            b = torch.stack([x[:, 0:4], x[:, 4:8]], dim=1)
            lep = torch.stack([x[:, 8:12], x[:, 12:16]], dim=1)
            return mass(lep + nu), mass(lep + nu + b)

        def loss(
            self, x: torch.Tensor, delta: float = 0.1, q: torch.Tensor | None = None
        ) -> torch.Tensor:
            """The mass-consistency loss of the network's neutrinos (or of given ones, ``q``)."""
            m_w_chains, m_top_chains = self.chain_masses(x, self(x) if q is None else q)
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

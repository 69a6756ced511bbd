"""The kinematic-reconstruction task: tt -> (b l+ nu)(b~ l- nu~), the neutrino momenta an entry
reconstructs (``predict_neutrinos``) against the generator's, and the W and top masses they give
with the true leptons and b quarks.

Figures (each with a bootstrap interval; the two neutrinos of an event are resampled together):

- ``nu_px``, ``nu_py``, ``nu_pz``: ``bias`` (mean of reconstructed - true), ``rms`` (the root
  mean square of reconstructed - true, bias included: the figure the table ranks by, on ``nu_pz``)
  and ``sigma`` ((P84 - P16)/2) [GeV], over both neutrinos of every reconstructed event;
- ``m_w``, ``m_top``: the reconstructed m(l nu) and m(l nu b): ``median`` and ``width``
  ((P84 - P16)/2) [GeV], and ``in_window``, the fraction within 10% of the W or top mass
  (:mod:`metbench.physics.constants`);
- ``efficiency``: reconstructed events / events with a complete truth chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from metbench.physics.constants import TOP_MASS, W_MASS
from metbench.scoring.bootstrap import (
    GroupedSample,
    event_poisson_counts,
    grouped_statistics,
    poisson_counts,
    quantile_key,
)

__all__ = ["invariant_mass", "load_chains", "score_kinematics"]

#: Reference masses [GeV] (Pythia's defaults used by the generator).
_PROBS: Final = (0.16, 0.5, 0.84)


def invariant_mass(*four_vectors: np.ndarray) -> np.ndarray:
    """Invariant mass [GeV] of the sum of ``(..., 4)`` (px, py, pz, E) vectors (0 if spacelike)."""
    total = np.sum(four_vectors, axis=0)
    m2 = total[..., 3] ** 2 - (total[..., :3] ** 2).sum(-1)
    return np.sqrt(np.maximum(m2, 0.0))


def massless(p3: np.ndarray) -> np.ndarray:
    """``(..., 3)`` momenta -> ``(..., 4)`` four-vectors of massless particles."""
    return np.concatenate([p3, np.linalg.norm(p3, axis=-1, keepdims=True)], axis=-1)


def load_chains(folder: Path | str, split: str = "test") -> dict[str, np.ndarray] | None:
    """The truth chains of a split in the event order of
    :func:`metbench.scoring.score.load_truth`, or None if the dataset stores no truth objects."""

    from metbench.data.source import EventSource, truth_chains

    source = EventSource(folder, split)
    names = ["truth_b_quarks", "truth_leptons", "truth_neutrinos"]
    first = source.files[0] if source.files else None
    if first is None:
        return None
    import pyarrow.parquet as pq

    from metbench.data.store import truth_relpath

    if not set(names) <= set(pq.read_schema(source.folder / truth_relpath(first)).names):
        return None
    parts = [truth_chains(arr) for arr in source.iter_files(names)]
    return {k: np.concatenate([p[k] for p in parts]) for k in names} if parts else None


def score_kinematics(
    neutrinos: np.ndarray,
    chains: dict[str, np.ndarray],
    n_boot: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    event_id: np.ndarray | None = None,
) -> dict[str, Any]:
    """Score reconstructed neutrinos.

    Parameters
    ----------
    neutrinos
        ``(n, 2, 3)`` reconstructed (px, py, pz) [GeV] of the top's and the antitop's neutrino;
        NaN for events not reconstructed.
    chains
        ``truth_b_quarks``, ``truth_leptons``, ``truth_neutrinos``: ``(n, 2, 4)`` (px, py, pz, E),
        NaN where the event has no complete chain.
    event_id
        ``(n,)`` the events' ids: the bootstrap multiplicities then depend on them only, as in
        :func:`metbench.scoring.score.score` (else they are drawn from ``seed``).
    """
    from metbench.scoring.score import _interval

    b, lep, nu_true = (chains[k] for k in ("truth_b_quarks", "truth_leptons", "truth_neutrinos"))
    eligible = np.isfinite(b).all((1, 2)) & np.isfinite(lep).all((1, 2))
    eligible &= np.isfinite(nu_true).all((1, 2))
    done = eligible & np.isfinite(neutrinos).all((1, 2))
    out: dict[str, Any] = {
        "n_events": int(done.sum()),
        "n_eligible": int(eligible.sum()),
        "efficiency": float(done.sum() / eligible.sum()) if eligible.any() else None,
        "reference_masses": {"w": W_MASS, "top": TOP_MASS},
        "figures": {},
    }
    n = int(done.sum())
    if n < 2:
        return out
    nu = massless(neutrinos[done])  # (n, 2, 4)
    m_w = invariant_mass(lep[done], nu).reshape(-1)  # event-major: ev0 nu0, ev0 nu1, ev1 ...
    m_top = invariant_mass(lep[done], nu, b[done]).reshape(-1)
    delta = (neutrinos[done] - nu_true[done][..., :3]).reshape(-1, 3)
    values = {
        "nu_px": delta[:, 0],
        "nu_py": delta[:, 1],
        "nu_pz": delta[:, 2],
        "m_w": m_w,
        "m_top": m_top,
    }
    sums = {
        "n": np.ones(2 * n),
        **{k: values[k] for k in ("nu_px", "nu_py", "nu_pz")},
        **{f"{k}2": values[k] ** 2 for k in ("nu_px", "nu_py", "nu_pz")},
        "w_in": (np.abs(m_w - W_MASS) < 0.1 * W_MASS).astype(np.float64),
        "top_in": (np.abs(m_top - TOP_MASS) < 0.1 * TOP_MASS).astype(np.float64),
    }
    sample = GroupedSample(np.zeros(2 * n, np.int64), 1, sums, values, _PROBS)
    counts = by_event = None
    if n_boot and event_id is not None:  # one multiplicity per event, shared by its neutrinos
        by_event = np.repeat(event_poisson_counts(np.asarray(event_id)[done], n_boot, seed), 2, 0)
    elif n_boot:
        counts = np.repeat(poisson_counts(np.random.default_rng(seed), (n_boot, n)), 2, axis=1)
    point, boot = grouped_statistics(sample, n_boot, counts=counts, event_counts=by_event)

    def figures(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        def q(name: str, p: float) -> np.ndarray:
            return stats[quantile_key(name, p)]

        f: dict[str, np.ndarray] = {}
        for k in ("nu_px", "nu_py", "nu_pz"):
            f[f"{k}_bias"] = stats[k] / stats["n"]
            f[f"{k}_rms"] = np.sqrt(stats[f"{k}2"] / stats["n"])
            f[f"{k}_sigma"] = 0.5 * (q(k, 0.84) - q(k, 0.16))
        for k, inside in (("m_w", "w_in"), ("m_top", "top_in")):
            f[f"{k}_median"] = q(k, 0.5)
            f[f"{k}_width"] = 0.5 * (q(k, 0.84) - q(k, 0.16))
            f[f"{k}_in_window"] = stats[inside] / stats["n"]
        return f

    fig_point = figures(point)
    fig_boot = figures(boot) if boot is not None else None
    out["figures"] = {
        name: {
            k: (v[0] if isinstance(v, list) else v)
            for k, v in _interval(
                fig_point[name], fig_boot[name] if fig_boot is not None else None, confidence
            ).items()
        }
        for name in fig_point
    }
    return out

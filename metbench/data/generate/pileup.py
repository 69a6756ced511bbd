"""Pileup by premixing: overlay interactions drawn from a stored minimum-bias pool.

Each event draws n_pu ~ Poisson(mu). Every overlaid interaction is a pool event with its own vertex
z ~ N(0, sigma_z), a random azimuthal rotation and, with probability 1/2, a reflection z -> -z, so
that reusing a pool event does not correlate the events it is overlaid on. The hard scatter gets its
own vertex z from the same luminous region.
"""

from __future__ import annotations

import numpy as np

from metbench.data.generate.detector import DetectorInput
from metbench.data.generate.pythia import GenParticles
from metbench.data.jagged import gather_index, offsets_from_counts

__all__ = ["premix"]


def premix(
    hard: GenParticles,
    n_pu: np.ndarray,
    pool: GenParticles,
    rng: np.random.Generator,
    sigma_z: float,
    pool_pick: np.ndarray | None = None,
) -> DetectorInput:
    """Overlay pileup from ``pool`` on the hard-scatter events.

    Parameters
    ----------
    hard
        Hard-scatter events.
    n_pu
        Number of pileup interactions of each event (drawn by the caller, Poisson(mu)).
    pool
        Minimum-bias pool.
    rng
        Random generator (all draws are vectorised; the result depends only on its state).
    sigma_z
        Gaussian width of the luminous region along the beam [cm].
    pool_pick
        Pool events to overlay, in order (default: drawn uniformly with replacement). Used to
        overlay freshly generated pileup, each event once.
    """
    n_events = hard.n_events
    n_pu = np.asarray(n_pu, dtype=np.int64)
    n_int = n_pu + 1
    n_total = int(n_int.sum())
    int_event = np.repeat(np.arange(n_events), n_int)
    first = offsets_from_counts(n_int)[:-1]
    int_hard = np.zeros(n_total, dtype=bool)
    int_hard[first] = True
    int_z = sigma_z * rng.standard_normal(n_total)
    rotation = np.where(int_hard, 0.0, rng.uniform(-np.pi, np.pi, n_total))
    flip = np.where(int_hard, False, rng.random(n_total) < 0.5)
    n_pileup = n_total - n_events
    if pool_pick is None:
        pool_pick = rng.integers(0, pool.n_events, size=n_pileup)
    elif len(pool_pick) != n_pileup:
        raise ValueError(f"pool_pick has {len(pool_pick)} entries for {n_pileup} interactions")

    # particle indices: hard-scatter particles from `hard`, pileup particles from `pool`
    hard_idx, _ = gather_index(hard.offsets, np.arange(n_events))
    pu_idx, pu_offsets = gather_index(pool.offsets, pool_pick)
    pu_interaction = np.repeat(np.flatnonzero(~int_hard), np.diff(pu_offsets))
    hard_interaction = np.repeat(first, hard.counts)

    def both(name: str) -> np.ndarray:
        return np.concatenate([getattr(hard, name)[hard_idx], getattr(pool, name)[pu_idx]])

    interaction = np.concatenate([hard_interaction, pu_interaction])
    px, py, pz = both("px"), both("py"), both("pz")
    vx, vy, vz = both("vx"), both("vy"), both("vz")
    cos_r = np.cos(rotation[interaction])
    sin_r = np.sin(rotation[interaction])
    px, py = cos_r * px - sin_r * py, sin_r * px + cos_r * py
    vx, vy = cos_r * vx - sin_r * vy, sin_r * vx + cos_r * vy
    sign = np.where(flip[interaction], -1.0, 1.0)
    pz = sign * pz
    vz = sign * vz + int_z[interaction]

    # group particles by event (hard scatter first, then pileup in interaction order)
    order = np.argsort(interaction, kind="stable")
    interaction = interaction[order]
    gen = DetectorInput(
        n_events=n_events,
        event=int_event[interaction],
        interaction=interaction,
        px=px[order],
        py=py[order],
        pz=pz[order],
        e=both("e")[order],
        pdg_id=both("pdg_id")[order],
        charge=both("charge")[order],
        vx=vx[order],
        vy=vy[order],
        vz=vz[order],
        is_pileup=~int_hard[interaction],
        interaction_event=int_event,
        interaction_z=int_z,
    )
    return gen

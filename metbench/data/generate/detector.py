"""A fast CMS-like detector simulation and particle-flow reconstruction in vectorised numpy.

The parameters follow the Delphes CMS card, ``cards/delphes_card_CMS.tcl`` of delphes/delphes in its
3.4/3.5 layout (ECal + HCal ``SimpleCalorimeter`` modules, tower merger, EFlow); the formulas below
quote it verbatim. Where the card has nothing (impact parameters, vertex finding, ``fromPV``), the
source is named at the function.

Simplifications, each a deliberate choice for speed and each documented where it is made:
charged particles are propagated to the calorimeter on a helix from the origin; calorimeter towers
are not corrected for the z of the interaction; a track keeps its own momentum in the E-flow (Delphes
may rescale it towards the calorimeter energy); bremsstrahlung and photon conversions are not
simulated.

Units: GeV, cm, radians (Delphes uses metres and mm; converted here).

The subsystems are modules of their own, each with its dataclass: :mod:`.tracking` (efficiency,
momentum and impact-parameter smearing, lepton identification: :class:`~.tracking.Tracks`),
:mod:`.vertexing` (vertices, the primary vertex, ``fromPV``: :class:`~.vertexing.Vertices`) and
:mod:`.calorimetry` (towers, resolutions, E-flow neutrals: :class:`~.calorimetry.NeutralCandidates`);
:func:`simulate_detector` runs them in this order (which fixes the random numbers each draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metbench.data.generate.calorimetry import (
    ECAL_TOWERS,
    HCAL_TOWERS,
    TowerGrid,
    ecal_resolution,
    hcal_resolution,
    neutral_candidates,
)
from metbench.data.generate.smearing import lognormal_smear
from metbench.data.generate.tracking import (
    d0_resolution,
    dz_resolution,
    electron_id_efficiency,
    identify_leptons,
    muon_id_efficiency,
    reconstruct_tracks,
    track_pt_resolution,
    tracking_efficiency,
)
from metbench.data.generate.vertexing import from_pv, reconstruct_vertices

__all__ = [
    "ECAL_TOWERS",
    "HCAL_TOWERS",
    "DetectorConfig",
    "DetectorInput",
    "RecoEvents",
    "TowerGrid",
    "d0_resolution",
    "dz_resolution",
    "ecal_resolution",
    "electron_id_efficiency",
    "hcal_resolution",
    "lognormal_smear",
    "muon_id_efficiency",
    "simulate_detector",
    "track_pt_resolution",
    "tracking_efficiency",
]


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of the detector simulation that are not resolution formulas.

    Attributes
    ----------
    bz
        Solenoid field [T] (Delphes ``ParticlePropagator``: 3.8).
    calo_radius, calo_half_length
        Inner surface of the calorimeter [m] (Delphes: 1.29, 3.00).
    ecal_energy_min, ecal_significance_min, hcal_energy_min, hcal_significance_min
        Tower and E-flow neutral thresholds (Delphes CMS: ECal 0.5 GeV and 2 sigma, HCal 1.0 GeV and
        1 sigma).
    vertex_min_tracks
        Tracks needed for a reconstructed vertex: CMS counts vertices with ndof >= 4, where
        ndof = 2 * sum(track weights) - 3, i.e. at least 4 tracks.
    vertex_max_d0_significance
        Track preselection for vertexing (CMS offlinePrimaryVertices ``maxD0Significance``: 4).
    vertex_merge_distance
        Interactions closer than this in z [cm] are reconstructed as one vertex (an assumption:
        the deterministic-annealing clustering resolves vertices about 1 mm apart).
    vertex_fit_dz_significance
        A track is used in its vertex's fit when |z0 - z_vertex| / sigma_dz is below this.
    """

    bz: float = 3.8
    calo_radius: float = 1.29
    calo_half_length: float = 3.0
    ecal_energy_min: float = 0.5
    ecal_significance_min: float = 2.0
    hcal_energy_min: float = 1.0
    hcal_significance_min: float = 1.0
    vertex_min_tracks: int = 4
    vertex_max_d0_significance: float = 4.0
    vertex_merge_distance: float = 0.04
    vertex_fit_dz_significance: float = 3.0


@dataclass
class DetectorInput:
    """Generator-level particles of a set of events with pileup overlaid (flat arrays).

    ``interaction`` numbers the interactions of all events consecutively; ``interaction_event``
    and ``interaction_z`` [cm] give each interaction's event and true vertex z. Positions (``vx, vy, vz``) are production
    vertices in the detector frame [cm].
    """

    n_events: int
    event: np.ndarray
    interaction: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    pdg_id: np.ndarray
    charge: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    is_pileup: np.ndarray
    interaction_event: np.ndarray
    interaction_z: np.ndarray


@dataclass
class RecoEvents:
    """Reconstructed particle-flow candidates (flat, grouped by event) and vertex counts."""

    event: np.ndarray
    columns: dict[str, np.ndarray]
    n_pv: np.ndarray
    pv_z: np.ndarray


def simulate_detector(
    gen: DetectorInput, rng: np.random.Generator, cfg: DetectorConfig | None = None
) -> RecoEvents:
    """Simulate the detector response and reconstruct particle-flow candidates.

    Returns flat candidate columns (see :mod:`metbench.events`) without ``puppi_weight``, and
    per event the number of reconstructed vertices ``n_pv`` and the primary-vertex z: tracks
    (charged candidates, in generator order) first, then the ECAL's and the HCAL's neutrals,
    ordered by decreasing pt within each event.
    """
    cfg = cfg or DetectorConfig()
    pt = np.hypot(gen.px, gen.py)
    eta = np.arcsinh(gen.pz / pt)
    phi = np.arctan2(gen.py, gen.px)
    abs_pdg = np.abs(gen.pdg_id)

    tracks = reconstruct_tracks(gen, pt, eta, abs_pdg, rng)
    vertices = reconstruct_vertices(gen, tracks, cfg)
    charged = identify_leptons(tracks, abs_pdg, gen.charge, rng)
    flags, dz = from_pv(tracks, vertices, charged.lepton, cfg)
    neutral = neutral_candidates(gen, pt, eta, phi, tracks, charged.mass, rng, cfg)

    n = len(neutral)
    event = np.concatenate([tracks.event, neutral.event])
    columns = {
        "pt": np.concatenate([tracks.pt, neutral.pt]),
        "eta": np.concatenate([tracks.eta, neutral.eta]),
        "phi": np.concatenate([phi[tracks.index], neutral.phi]),
        "mass": np.concatenate([charged.mass, np.zeros(n)]),
        "charge": np.concatenate([charged.charge, np.zeros(n, dtype=np.int8)]),
        "pdg_id": np.concatenate([charged.pdg_id, neutral.pdg_id]),
        "d0": np.concatenate([tracks.d0, np.zeros(n)]),
        "dz": np.concatenate([dz, np.zeros(n)]),
        "from_pv": np.concatenate([flags, np.full(n, 3, dtype=np.int8)]),
        "truth_is_pileup": np.concatenate([gen.is_pileup[tracks.index], neutral.is_pileup]),
    }
    order = np.lexsort((-columns["pt"], event))
    columns = {k: v[order] for k, v in columns.items()}
    return RecoEvents(event=event[order], columns=columns, n_pv=vertices.n_pv, pv_z=vertices.pv_z)

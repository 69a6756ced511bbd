"""Calorimetry: where particles meet the calorimeters, the ECAL and HCAL towers (Delphes CMS card
``EtaPhiBins``), their energy resolution, and the E-flow neutral candidates left when the tracks'
energy is subtracted. Units: GeV, m for the calorimeter surface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from metbench.data.generate.smearing import lognormal_smear

if TYPE_CHECKING:
    from metbench.data.generate.detector import DetectorConfig, DetectorInput
    from metbench.data.generate.tracking import Tracks

__all__ = [
    "ECAL_TOWERS",
    "HCAL_TOWERS",
    "NeutralCandidates",
    "TowerGrid",
    "ecal_resolution",
    "hcal_resolution",
    "neutral_candidates",
    "propagate_to_calorimeter",
]


def ecal_resolution(energy: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Absolute ECAL energy resolution sigma(E) [GeV].

    Delphes CMS card, module ``ECal``, ``ResolutionFormula`` (eta shape from arXiv:1306.2016,
    energy shape from arXiv:1502.02701)::

        |eta|<=1.5:     (1+0.64*eta^2) * sqrt(E^2*0.008^2 + E*0.11^2 + 0.40^2)
        1.5<|eta|<=2.5: (2.16 + 5.6*(|eta|-2)^2) * sqrt(E^2*0.008^2 + E*0.11^2 + 0.40^2)
        2.5<|eta|<=5:   sqrt(E^2*0.107^2 + E*2.08^2)
    """
    e = np.asarray(energy, dtype=np.float64)
    aeta = np.abs(np.asarray(eta, dtype=np.float64))
    base = np.sqrt(e**2 * 0.008**2 + e * 0.11**2 + 0.40**2)
    barrel = (1.0 + 0.64 * aeta**2) * base
    endcap = (2.16 + 5.6 * (aeta - 2.0) ** 2) * base
    forward = np.sqrt(e**2 * 0.107**2 + e * 2.08**2)
    return np.where(aeta <= 1.5, barrel, np.where(aeta <= 2.5, endcap, forward))


def hcal_resolution(energy: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Absolute HCAL energy resolution sigma(E) [GeV].

    Delphes CMS card, module ``HCal``, ``ResolutionFormula``::

        |eta|<=3:   sqrt(E^2*0.050^2 + E*1.50^2)
        3<|eta|<=5: sqrt(E^2*0.130^2 + E*2.70^2)
    """
    e = np.asarray(energy, dtype=np.float64)
    aeta = np.abs(np.asarray(eta, dtype=np.float64))
    central = np.sqrt(e**2 * 0.050**2 + e * 1.50**2)
    forward = np.sqrt(e**2 * 0.130**2 + e * 2.70**2)
    return np.where(aeta <= 3.0, central, forward)


@dataclass(frozen=True)
class TowerGrid:
    """Towers of one calorimeter: eta edges and the number of phi bins of each eta ring."""

    eta_edges: np.ndarray
    n_phi: np.ndarray  # per eta ring, len(eta_edges) - 1

    @classmethod
    def from_card(cls, rings: list[tuple[list[float], int]]) -> TowerGrid:
        """Build from Delphes ``add EtaPhiBins`` lines: (eta edges, number of phi bins).

        As in Delphes, the phi binning listed with an eta edge applies to the tower ring whose
        upper edge it is; the lowest edge only opens the first ring.
        """
        pairs = sorted({round(e, 4): n for edges, n in rings for e in edges}.items())
        edges = np.array([e for e, _ in pairs])
        n_phi = np.array([n for _, n in pairs[1:]], dtype=np.int64)
        return cls(edges, n_phi)

    @property
    def n_rings(self) -> int:
        return len(self.n_phi)

    def index(self, eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ring and phi-bin index of each direction, and whether it is inside the calorimeter."""
        ring = np.searchsorted(self.eta_edges, eta, side="right") - 1
        inside = (ring >= 0) & (ring < self.n_rings)
        ring = np.clip(ring, 0, self.n_rings - 1)
        n_phi = self.n_phi[ring]
        iphi = np.floor((np.asarray(phi) + np.pi) / (2 * np.pi) * n_phi).astype(np.int64)
        iphi = np.clip(iphi, 0, n_phi - 1)
        return ring, iphi, inside

    def random_position(
        self, rng: np.random.Generator, ring: np.ndarray, iphi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A uniform random (eta, phi) inside each tower (Delphes ``SmearTowerCenter true``)."""
        lo = self.eta_edges[ring]
        hi = self.eta_edges[ring + 1]
        width = 2 * np.pi / self.n_phi[ring]
        eta = lo + (hi - lo) * rng.random(len(ring))
        phi = -np.pi + width * (iphi + rng.random(len(ring)))
        return eta, phi


def _ecal_grid() -> TowerGrid:
    barrel = [i * 0.0174 for i in range(-85, 87)]
    endcap = [-2.958 + i * 0.0174 for i in range(1, 85)] + [
        1.4964 + i * 0.0174 for i in range(1, 85)
    ]
    forward = [-5, -4.7, -4.525, -4.35, -4.175, -4, -3.825, -3.65, -3.475, -3.3, -3.125, -2.958,
               3.125, 3.3, 3.475, 3.65, 3.825, 4, 4.175, 4.35, 4.525, 4.7, 5]  # fmt: skip
    return TowerGrid.from_card([(barrel, 360), (endcap, 360), (forward, 36)])


def _hcal_grid() -> TowerGrid:
    five_deg = [round(i * 0.087, 4) for i in range(-18, 20)]  # -1.566 ... 1.653
    ten_deg = [-4.35, -4.175, -4, -3.825, -3.65, -3.475, -3.3, -3.125, -2.95, -2.868, -2.65, -2.5,
               -2.322, -2.172, -2.043, -1.93, -1.83, -1.74, -1.653, 1.74, 1.83, 1.93, 2.043, 2.172,
               2.322, 2.5, 2.65, 2.868, 2.95, 3.125, 3.3, 3.475, 3.65, 3.825, 4, 4.175, 4.35,
               4.525]  # fmt: skip
    twenty_deg = [-5, -4.7, -4.525, 4.7, 5]
    return TowerGrid.from_card([(five_deg, 72), (ten_deg, 36), (twenty_deg, 18)])


#: ECAL towers: 0.0174 x 1 degree to |eta| = 2.958, then 0.175 x 10 degrees to |eta| = 5.
ECAL_TOWERS: Final[TowerGrid] = _ecal_grid()
#: HCAL towers: 0.087 x 5 degrees to |eta| = 1.653, 10 degrees to 4.525, 20 degrees to 5.
HCAL_TOWERS: Final[TowerGrid] = _hcal_grid()


def propagate_to_calorimeter(
    pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, charge: np.ndarray, cfg: DetectorConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eta, phi) where a particle from the origin meets the calorimeter, and whether it does.

    Neutral particles fly straight. A charged particle follows a helix in the solenoid: its
    transverse radius of curvature is R = pt / (0.3 B) [m]; it reaches the barrel cylinder of radius
    r_c when 2R >= r_c, after a turning angle psi = 2 asin(r_c / 2R); otherwise, or if it leaves
    through an endcap first, it reaches |z| = L after psi = 0.3 B L / |pz|. The position's azimuth
    is turned by q psi/2 (sign: the bending direction of a positive charge in +z field).
    """
    q = np.asarray(charge, dtype=np.float64)
    charged = q != 0
    radius_m = np.where(charged, pt / (0.29979 * cfg.bz), np.inf)
    pz = pt * np.sinh(eta)
    # barrel
    can_reach_barrel = 2 * radius_m >= cfg.calo_radius
    with np.errstate(invalid="ignore", divide="ignore"):
        psi_b = np.where(
            can_reach_barrel, 2 * np.arcsin(np.clip(cfg.calo_radius / (2 * radius_m), 0, 1)), np.inf
        )
        z_b = np.where(charged, psi_b * radius_m * np.sinh(eta), cfg.calo_radius * np.sinh(eta))
        hits_barrel = can_reach_barrel & (np.abs(z_b) <= cfg.calo_half_length)
        # endcap
        psi_e = np.where(charged, cfg.calo_half_length / np.abs(pz) * pt / radius_m, 0.0)
        reaches = hits_barrel | (psi_e < 2 * np.pi)
        psi = np.where(hits_barrel, psi_b, psi_e)
        psi = np.where(charged, psi, 0.0)
        r_hit = np.where(
            hits_barrel,
            cfg.calo_radius,
            np.where(
                charged,
                2 * radius_m * np.abs(np.sin(psi / 2)),
                cfg.calo_half_length / np.abs(np.sinh(eta)),
            ),
        )
        z_hit = np.where(hits_barrel, z_b, np.sign(eta) * cfg.calo_half_length)
        eta_hit = np.arcsinh(z_hit / np.maximum(r_hit, 1e-9))
    psi = np.where(reaches & np.isfinite(psi), psi, 0.0)
    phi_hit = phi - q * psi / 2  # positive charges bend clockwise in a field along +z
    phi_hit = (phi_hit + np.pi) % (2 * np.pi) - np.pi
    eta_hit = np.where(charged, eta_hit, eta)
    phi_hit = np.where(charged, phi_hit, phi)
    return eta_hit, phi_hit, np.where(charged, reaches, True)


@dataclass(frozen=True)
class NeutralCandidates:
    """E-flow neutral candidates (photons, neutral hadrons; flat, in tower order).

    Attributes
    ----------
    event
        Event of each candidate.
    pt
        Transverse momentum [GeV] (massless: the neutral energy over cosh(eta)).
    eta, phi
        A uniform random position inside the tower (Delphes ``SmearTowerCenter``).
    pdg_id
        22 (ECAL) or 130 (HCAL), 2 or 1 beyond |eta| = 3 (Delphes's forward labels).
    is_pileup
        Whether pileup brought more than half of the tower's true energy.
    """

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    pdg_id: np.ndarray
    is_pileup: np.ndarray

    def __len__(self) -> int:
        return len(self.event)

    @classmethod
    def concatenate(cls, parts: list[NeutralCandidates]) -> NeutralCandidates:
        """The candidates of ``parts``, one after the other."""
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in
              ("event", "pt", "eta", "phi", "pdg_id", "is_pileup"))
        )  # fmt: skip


def _tower_neutrals(
    gen: DetectorInput,
    grid: TowerGrid,
    deposit: np.ndarray,
    at_calorimeter: tuple[np.ndarray, np.ndarray, np.ndarray],
    track_energy: np.ndarray,
    track_sigma2: np.ndarray,
    resolution: Callable[[np.ndarray, np.ndarray], np.ndarray],
    thresholds: tuple[float, float],
    pdg: tuple[int, int],
    rng: np.random.Generator,
) -> NeutralCandidates:
    """The neutral candidates of one calorimeter: the particles that deposit in it are summed
    per tower, the tower energy is smeared and thresholded (energy, significance), the tracks'
    energy is subtracted, and what is left above threshold becomes a neutral candidate."""
    eta_c, phi_c, reaches = at_calorimeter
    e_min, sig_min = thresholds
    central_pdg, forward_pdg = pdg
    sel = np.flatnonzero(deposit & reaches)
    ring, iphi, inside = grid.index(eta_c[sel], phi_c[sel])
    sel, ring, iphi = sel[inside], ring[inside], iphi[inside]
    key = (gen.event[sel] * grid.n_rings + ring) * 360 + iphi
    towers, inv = np.unique(key, return_inverse=True)
    e_true = np.bincount(inv, weights=gen.e[sel], minlength=len(towers))
    e_pu = np.bincount(
        inv, weights=np.where(gen.is_pileup[sel], gen.e[sel], 0.0), minlength=len(towers)
    )
    e_trk = np.bincount(inv, weights=track_energy[sel], minlength=len(towers))
    s2_trk = np.bincount(inv, weights=track_sigma2[sel], minlength=len(towers))
    tw_iphi = towers % 360
    tw_ring = (towers // 360) % grid.n_rings
    tw_event = towers // (360 * grid.n_rings)
    centre_eta = 0.5 * (grid.eta_edges[tw_ring] + grid.eta_edges[tw_ring + 1])
    sigma_true = resolution(e_true, centre_eta)
    e_meas = lognormal_smear(rng, e_true, sigma_true)
    sigma = resolution(e_meas, centre_eta)
    tower_ok = (e_meas >= e_min) & (e_meas >= sig_min * sigma)
    e_meas = np.where(tower_ok, e_meas, 0.0)
    neutral = np.maximum(e_meas - e_trk, 0.0)
    keep = (neutral > e_min) & (neutral / np.sqrt(s2_trk + sigma**2) > sig_min)
    k = np.flatnonzero(keep)
    n_eta, n_phi = grid.random_position(rng, tw_ring[k], tw_iphi[k])
    return NeutralCandidates(
        event=tw_event[k],
        pt=neutral[k] / np.cosh(n_eta),
        eta=n_eta,
        phi=n_phi,
        pdg_id=np.where(np.abs(n_eta) > 3.0, forward_pdg, central_pdg).astype(np.int32),
        is_pileup=e_pu[k] > 0.5 * e_true[k],
    )


def neutral_candidates(
    gen: DetectorInput,
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    tracks: Tracks,
    track_mass: np.ndarray,
    rng: np.random.Generator,
    cfg: DetectorConfig,
) -> NeutralCandidates:
    """The E-flow neutrals of the ECAL (electrons, photons) and then of the HCAL (hadrons);
    muons deposit nothing. Tracked particles bring their measured energy (momentum and the
    candidate's mass) and its variance, which the tower subtracts."""
    abs_pdg = np.abs(gen.pdg_id)
    em = (abs_pdg == 11) | (abs_pdg == 22)
    muon = abs_pdg == 13
    hadron = ~em & ~muon
    at_calorimeter = propagate_to_calorimeter(pt, eta, phi, gen.charge, cfg)
    track_energy = np.zeros(len(pt))
    track_sigma2 = np.zeros(len(pt))
    p_meas = tracks.pt * np.cosh(tracks.eta)
    track_energy[tracks.index] = np.sqrt(p_meas**2 + track_mass**2)
    track_sigma2[tracks.index] = (tracks.resolution * p_meas) ** 2
    ecal = _tower_neutrals(
        gen, ECAL_TOWERS, em, at_calorimeter, track_energy, track_sigma2, ecal_resolution,
        (cfg.ecal_energy_min, cfg.ecal_significance_min), (22, 2), rng,
    )  # fmt: skip
    hcal = _tower_neutrals(
        gen, HCAL_TOWERS, hadron, at_calorimeter, track_energy, track_sigma2, hcal_resolution,
        (cfg.hcal_energy_min, cfg.hcal_significance_min), (130, 1), rng,
    )  # fmt: skip
    return NeutralCandidates.concatenate([ecal, hcal])

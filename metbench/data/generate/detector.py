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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

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

PION_MASS: Final = 0.13957
ELECTRON_MASS: Final = 0.000511
MUON_MASS: Final = 0.10566


# --------------------------------------------------------------------------------------------
# Resolution and efficiency functions (Delphes CMS card; eta, pt in GeV, energy in GeV)
# --------------------------------------------------------------------------------------------
def tracking_efficiency(pt: np.ndarray, eta: np.ndarray, abs_pdg: np.ndarray) -> np.ndarray:
    """Probability that a charged particle is reconstructed as a track.

    Delphes CMS card, modules ``ChargedHadronTrackingEfficiency``, ``ElectronTrackingEfficiency``
    and ``MuonTrackingEfficiency``::

        hadrons:   |eta|<=1.5: 0.70 (0.1<pt<=1), 0.95 (pt>1);  1.5<|eta|<=2.5: 0.60, 0.85
        electrons: |eta|<=1.5: 0.73 (0.1<pt<=1), 0.95 (1<pt<=100), 0.99 (pt>100)
                   1.5<|eta|<=2.5: 0.50, 0.83, 0.90
        muons:     |eta|<=1.5: 0.75 (0.1<pt<=1), 0.99 (1<pt<=1000), 0.99*exp(0.5-pt*5e-4) above
                   1.5<|eta|<=2.5: 0.70, 0.98, 0.98*exp(0.5-pt*5e-4)

    and zero for pt <= 0.1 GeV or |eta| > 2.5.
    """
    pt = np.asarray(pt, dtype=np.float64)
    aeta = np.abs(np.asarray(eta, dtype=np.float64))
    abs_pdg = np.asarray(abs_pdg)
    central = aeta <= 1.5
    low = pt <= 1.0
    had = np.where(central, np.where(low, 0.70, 0.95), np.where(low, 0.60, 0.85))
    ele_mid = np.where(central, 0.95, 0.83)
    ele_high = np.where(central, 0.99, 0.90)
    ele = np.where(low, np.where(central, 0.73, 0.50), np.where(pt <= 100.0, ele_mid, ele_high))
    mu_plateau = np.where(central, 0.99, 0.98)
    mu_high = mu_plateau * np.exp(0.5 - pt * 5.0e-4)
    mu = np.where(low, np.where(central, 0.75, 0.70), np.where(pt <= 1.0e3, mu_plateau, mu_high))
    eff = np.where(abs_pdg == 11, ele, np.where(abs_pdg == 13, mu, had))
    return np.where((pt > 0.1) & (aeta <= 2.5), eff, 0.0)


def track_pt_resolution(pt: np.ndarray, eta: np.ndarray, abs_pdg: np.ndarray) -> np.ndarray:
    """Relative transverse-momentum resolution sigma(pt)/pt of a track.

    Delphes CMS card, ``ChargedHadronMomentumSmearing`` (arXiv:1405.6569),
    ``ElectronMomentumSmearing`` (arXiv:1502.02701) and ``MuonMomentumSmearing``::

        hadrons:   sqrt(0.06^2 + pt^2*1.3e-3^2)  |eta|<=0.5
                   sqrt(0.10^2 + pt^2*1.7e-3^2)  0.5<|eta|<=1.5
                   sqrt(0.25^2 + pt^2*3.1e-3^2)  1.5<|eta|<=2.5
        electrons: sqrt(0.03^2 + pt^2*1.3e-3^2), sqrt(0.05^2 + pt^2*1.7e-3^2),
                   sqrt(0.15^2 + pt^2*3.1e-3^2)
        muons:     sqrt(0.01^2 + pt^2*1.0e-4^2), sqrt(0.015^2 + pt^2*1.5e-4^2),
                   sqrt(0.025^2 + pt^2*3.5e-4^2)

    The card's constant terms are in percent-of-pt units as written (0.06 = 6 %); Delphes caps the
    result at 1.0.
    """
    pt = np.asarray(pt, dtype=np.float64)
    aeta = np.abs(np.asarray(eta, dtype=np.float64))
    abs_pdg = np.asarray(abs_pdg)
    region = np.where(aeta <= 0.5, 0, np.where(aeta <= 1.5, 1, 2))
    a = {
        "had": np.array([0.06, 0.10, 0.25]),
        "ele": np.array([0.03, 0.05, 0.15]),
        "mu": np.array([0.01, 0.015, 0.025]),
    }
    b = {
        "had": np.array([1.3e-3, 1.7e-3, 3.1e-3]),
        "ele": np.array([1.3e-3, 1.7e-3, 3.1e-3]),
        "mu": np.array([1.0e-4, 1.5e-4, 3.5e-4]),
    }
    kind = np.where(abs_pdg == 11, "ele", np.where(abs_pdg == 13, "mu", "had"))
    res = np.empty_like(pt)
    for key in ("had", "ele", "mu"):
        sel = kind == key
        r = region[sel]
        res[sel] = np.sqrt(a[key][r] ** 2 + (pt[sel] * b[key][r]) ** 2)
    return np.minimum(res, 1.0)


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


# Impact-parameter resolutions: Delphes cards/trackResolutionCMS.tcl (CMS tracking paper,
# arXiv:1405.6569, fig. 15), summarised per eta region by sqrt(a^2 + (b/pt)^2) with a the value of
# its highest pt bin (> 134.7 GeV) and b/0.2 GeV the value of its lowest bin (0.18-0.22 GeV).
# Values in mm as in the card: (eta upper edge, a, b).
_D0_PARAMS_MM: Final = (
    (0.9, 0.0110, 0.3543 * 0.2),
    (1.4, 0.0095, 0.4564 * 0.2),
    (2.5, 0.0137, 0.6970 * 0.2),
)
_DZ_PARAMS_MM: Final = (
    (0.9, 0.0318, 0.3693 * 0.2),
    (1.4, 0.0310, 0.7062 * 0.2),
    (2.5, 0.0850, 2.1717 * 0.2),
)


def _ip_resolution(pt: np.ndarray, eta: np.ndarray, params: tuple) -> np.ndarray:
    pt = np.asarray(pt, dtype=np.float64)
    aeta = np.abs(np.asarray(eta, dtype=np.float64))
    region = np.searchsorted(np.array([p[0] for p in params[:-1]]), aeta, side="right")
    a = np.array([p[1] for p in params])[region]
    b = np.array([p[2] for p in params])[region]
    return 0.1 * np.sqrt(a**2 + (b / pt) ** 2)  # mm -> cm


def d0_resolution(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Transverse impact-parameter resolution [cm]: sqrt(a^2 + (b/pt)^2), a, b per eta region.

    Regions and values (mm) from Delphes ``cards/trackResolutionCMS.tcl`` (arXiv:1405.6569):
    |eta|<0.9: a=0.0110, b=0.0709 GeV; 0.9-1.4: 0.0095, 0.0913; 1.4-2.5: 0.0137, 0.1394.
    """
    return _ip_resolution(pt, eta, _D0_PARAMS_MM)


def dz_resolution(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Longitudinal impact-parameter resolution [cm]: sqrt(a^2 + (b/pt)^2), a, b per eta region.

    Regions and values (mm) from Delphes ``cards/trackResolutionCMS.tcl`` (arXiv:1405.6569):
    |eta|<0.9: a=0.0318, b=0.0739 GeV; 0.9-1.4: 0.0310, 0.1412; 1.4-2.5: 0.0850, 0.4343.
    """
    return _ip_resolution(pt, eta, _DZ_PARAMS_MM)


def electron_id_efficiency(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Delphes CMS ``ElectronEfficiency``: 0.95 (|eta|<=1.5), 0.85 (1.5-2.5), above pt 10 GeV."""
    pt = np.asarray(pt)
    aeta = np.abs(np.asarray(eta))
    eff = np.where(aeta <= 1.5, 0.95, 0.85)
    return np.where((pt > 10.0) & (aeta <= 2.5), eff, 0.0)


def muon_id_efficiency(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Delphes CMS ``MuonEfficiency``: 0.95 for pt > 10 GeV and |eta| <= 2.4."""
    pt = np.asarray(pt)
    aeta = np.abs(np.asarray(eta))
    return np.where((pt > 10.0) & (aeta <= 2.4), 0.95, 0.0)


def lognormal_smear(rng: np.random.Generator, value: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Draw from a log-normal with mean ``value`` and standard deviation ``sigma`` (as Delphes).

    Entries with ``value <= 0`` stay 0.
    """
    value = np.asarray(value, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    out = np.zeros_like(value)
    ok = value > 0
    v = value[ok]
    s2 = np.log1p((sigma[ok] / v) ** 2)
    mu = np.log(v) - 0.5 * s2
    out[ok] = np.exp(mu + np.sqrt(s2) * rng.standard_normal(v.shape))
    return out


# --------------------------------------------------------------------------------------------
# Calorimeter towers (Delphes CMS card EtaPhiBins)
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Detector and reconstruction
# --------------------------------------------------------------------------------------------
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


def _propagate_to_calorimeter(
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


def simulate_detector(
    gen: DetectorInput, rng: np.random.Generator, cfg: DetectorConfig | None = None
) -> RecoEvents:
    """Simulate the detector response and reconstruct particle-flow candidates.

    Returns flat candidate columns (see :mod:`metbench.events`) without ``puppi_weight``, and
    per event the number of reconstructed vertices ``n_pv`` and the primary-vertex z.
    """
    cfg = cfg or DetectorConfig()
    pt = np.hypot(gen.px, gen.py)
    eta = np.arcsinh(gen.pz / pt)
    phi = np.arctan2(gen.py, gen.px)
    abs_pdg = np.abs(gen.pdg_id)
    charged = gen.charge != 0

    # ---- tracking --------------------------------------------------------------------------
    tracked = charged & (rng.random(len(pt)) < tracking_efficiency(pt, eta, abs_pdg))
    t = np.flatnonzero(tracked)
    t_pt_true = pt[t]
    t_eta = eta[t]
    res = track_pt_resolution(t_pt_true, t_eta, abs_pdg[t])
    t_pt = lognormal_smear(rng, t_pt_true, res * t_pt_true)
    # true impact parameters from the production vertex (straight-line approximation near the
    # beam line), then Gaussian smearing
    d0_true = (-gen.vx[t] * gen.py[t] + gen.vy[t] * gen.px[t]) / t_pt_true
    z0_true = gen.vz[t] - (gen.vx[t] * gen.px[t] + gen.vy[t] * gen.py[t]) / t_pt_true * (
        gen.pz[t] / t_pt_true
    )
    sigma_d0 = d0_resolution(t_pt_true, t_eta)
    sigma_dz = dz_resolution(t_pt_true, t_eta)
    t_d0 = d0_true + sigma_d0 * rng.standard_normal(len(t))
    t_z0 = z0_true + sigma_dz * rng.standard_normal(len(t))
    t_event = gen.event[t]
    t_int = gen.interaction[t]

    # ---- vertex reconstruction -------------------------------------------------------------
    eligible = np.abs(t_d0) / sigma_d0 < cfg.vertex_max_d0_significance
    n_int = len(gen.interaction_event)
    # merge interactions closer than the merge distance (chains, per event)
    order = np.lexsort((gen.interaction_z, gen.interaction_event))
    z_sorted = gen.interaction_z[order]
    ev_sorted = gen.interaction_event[order]
    new_cluster = np.ones(n_int, dtype=bool)
    new_cluster[1:] = (ev_sorted[1:] != ev_sorted[:-1]) | (
        np.diff(z_sorted) > cfg.vertex_merge_distance
    )
    cluster_sorted = np.cumsum(new_cluster) - 1
    cluster_of_int = np.empty(n_int, dtype=np.int64)
    cluster_of_int[order] = cluster_sorted
    n_clusters = int(cluster_sorted[-1]) + 1 if n_int else 0
    cluster_event = np.zeros(n_clusters, dtype=np.int64)
    cluster_event[cluster_sorted] = ev_sorted

    t_cluster = cluster_of_int[t_int]
    w = np.where(eligible, 1.0 / sigma_dz**2, 0.0)
    n_trk = np.bincount(t_cluster, weights=eligible.astype(np.float64), minlength=n_clusters)
    sumw = np.bincount(t_cluster, weights=w, minlength=n_clusters)
    sumwz = np.bincount(t_cluster, weights=w * t_z0, minlength=n_clusters)
    sumpt2 = np.bincount(t_cluster, weights=np.where(eligible, t_pt**2, 0.0), minlength=n_clusters)
    reco = n_trk >= cfg.vertex_min_tracks
    vz = np.where(sumw > 0, sumwz / np.where(sumw > 0, sumw, 1.0), 0.0)
    n_pv = np.bincount(cluster_event[reco], minlength=gen.n_events).astype(np.int32)

    # primary vertex: the reconstructed vertex with the largest sum of pt^2; events without one
    # fall back to the beam spot (z = 0), as CMS does
    score = np.where(reco, sumpt2, -1.0)
    pv_cluster = np.full(gen.n_events, -1, dtype=np.int64)
    if n_clusters:
        best = np.lexsort((score, cluster_event))  # last per event is the best
        last_of_event = np.ones(n_clusters, dtype=bool)
        ce = cluster_event[best]
        last_of_event[:-1] = ce[1:] != ce[:-1]
        winners = best[last_of_event]
        winners = winners[reco[winners]]
        pv_cluster[cluster_event[winners]] = winners
    pv_z = np.where(pv_cluster >= 0, vz[np.maximum(pv_cluster, 0)], 0.0)

    # ---- track-to-vertex association and CMS fromPV ---------------------------------------
    in_fit = (
        eligible
        & reco[t_cluster]
        & (np.abs(t_z0 - vz[t_cluster]) < cfg.vertex_fit_dz_significance * sigma_dz)
    )
    t_pv = pv_cluster[t_event]
    in_fit_pv = in_fit & (t_cluster == t_pv)
    # tracks outside every fit are attached to the closest reconstructed vertex in z
    closest = _closest_vertex(t_event, t_z0, np.flatnonzero(reco), cluster_event, vz)
    closest_is_pv = (closest == t_pv) & (t_pv >= 0)

    # ---- lepton identification and PF charged candidates -----------------------------------
    t_abs = abs_pdg[t]
    t_charge = gen.charge[t].astype(np.int8)
    u = rng.random(len(t))
    is_ele = (t_abs == 11) & (u < electron_id_efficiency(t_pt, t_eta))
    is_mu = (t_abs == 13) & (u < muon_id_efficiency(t_pt, t_eta))
    q32 = t_charge.astype(np.int32)
    t_pdg = np.where(is_ele, -11 * q32, np.where(is_mu, -13 * q32, 211 * q32))
    t_mass = np.where(is_ele, ELECTRON_MASS, np.where(is_mu, MUON_MASS, PION_MASS))
    lepton = is_ele | is_mu
    # PackedCandidate::fromPV(0): 3 used in the PV fit; 2 attached to the PV (or a lepton);
    # 1 not used in any fit; 0 used in the fit of another vertex
    from_pv = np.where(
        in_fit_pv,
        3,
        np.where(closest_is_pv & ~in_fit | lepton, 2, np.where(~in_fit, 1, 0)),
    ).astype(np.int8)
    t_dz = t_z0 - pv_z[t_event]

    # ---- calorimeters and E-flow neutrals -----------------------------------------------------
    em = (abs_pdg == 11) | (abs_pdg == 22)
    muon = abs_pdg == 13
    hadron = ~em & ~muon
    eta_c, phi_c, reaches = _propagate_to_calorimeter(pt, eta, phi, gen.charge, cfg)
    track_energy = np.zeros(len(pt))
    track_sigma2 = np.zeros(len(pt))
    p_meas = t_pt * np.cosh(t_eta)
    track_energy[t] = np.sqrt(p_meas**2 + t_mass**2)
    track_sigma2[t] = (res * p_meas) ** 2
    neutral_parts = []
    for grid, deposit, resolution, e_min, sig_min, central_pdg, forward_pdg in (
        (ECAL_TOWERS, em, ecal_resolution, cfg.ecal_energy_min, cfg.ecal_significance_min, 22, 2),
        (
            HCAL_TOWERS,
            hadron,
            hcal_resolution,
            cfg.hcal_energy_min,
            cfg.hcal_significance_min,
            130,
            1,
        ),
    ):
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
        pdg = np.where(np.abs(n_eta) > 3.0, forward_pdg, central_pdg).astype(np.int32)
        neutral_parts.append(
            (tw_event[k], neutral[k] / np.cosh(n_eta), n_eta, n_phi, pdg, e_pu[k] > 0.5 * e_true[k])
        )

    # ---- assemble candidates, pt-ordered per event -------------------------------------------
    n_event = np.concatenate([t_event, *(p[0] for p in neutral_parts)])
    n_neutral = sum(len(p[0]) for p in neutral_parts)
    columns = {
        "pt": np.concatenate([t_pt, *(p[1] for p in neutral_parts)]),
        "eta": np.concatenate([t_eta, *(p[2] for p in neutral_parts)]),
        "phi": np.concatenate([phi[t], *(p[3] for p in neutral_parts)]),
        "mass": np.concatenate([t_mass, np.zeros(n_neutral)]),
        "charge": np.concatenate([t_charge, np.zeros(n_neutral, dtype=np.int8)]),
        "pdg_id": np.concatenate([t_pdg.astype(np.int32), *(p[4] for p in neutral_parts)]),
        "d0": np.concatenate([t_d0, np.zeros(n_neutral)]),
        "dz": np.concatenate([t_dz, np.zeros(n_neutral)]),
        "from_pv": np.concatenate([from_pv, np.full(n_neutral, 3, dtype=np.int8)]),
        "truth_is_pileup": np.concatenate([gen.is_pileup[t], *(p[5] for p in neutral_parts)]),
    }
    order = np.lexsort((-columns["pt"], n_event))
    columns = {k: v[order] for k, v in columns.items()}
    return RecoEvents(event=n_event[order], columns=columns, n_pv=n_pv, pv_z=pv_z)


def _closest_vertex(
    t_event: np.ndarray,
    t_z0: np.ndarray,
    vertices: np.ndarray,
    cluster_event: np.ndarray,
    vz: np.ndarray,
) -> np.ndarray:
    """Cluster index of the reconstructed vertex closest in z to each track (-1 if none)."""
    if len(vertices) == 0:
        return np.full(len(t_event), -1, dtype=np.int64)
    span = 1.0e4  # cm; separates events on one axis
    key_v = cluster_event[vertices] * span + vz[vertices]
    order = np.argsort(key_v)
    key_v = key_v[order]
    vertices = vertices[order]
    key_t = t_event * span + t_z0
    right = np.searchsorted(key_v, key_t)
    left = np.clip(right - 1, 0, len(key_v) - 1)
    right = np.clip(right, 0, len(key_v) - 1)
    choose_right = np.abs(key_v[right] - key_t) < np.abs(key_v[left] - key_t)
    best = np.where(choose_right, right, left)
    same_event = cluster_event[vertices[best]] == t_event
    return np.where(same_event, vertices[best], -1)

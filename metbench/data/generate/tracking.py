"""Tracking: which charged particles become tracks, their measured transverse momentum and
impact parameters, and lepton identification (Delphes CMS card; CMS tracking paper
arXiv:1405.6569 for the impact parameters). Units: GeV, cm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from metbench.data.generate.smearing import lognormal_smear

if TYPE_CHECKING:
    from metbench.data.generate.detector import DetectorInput

__all__ = [
    "ELECTRON_MASS",
    "MUON_MASS",
    "PION_MASS",
    "ChargedCandidates",
    "Tracks",
    "d0_resolution",
    "dz_resolution",
    "electron_id_efficiency",
    "identify_leptons",
    "muon_id_efficiency",
    "reconstruct_tracks",
    "track_pt_resolution",
    "tracking_efficiency",
]

PION_MASS: Final = 0.13957
ELECTRON_MASS: Final = 0.000511
MUON_MASS: Final = 0.10566


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


@dataclass(frozen=True)
class Tracks:
    """Reconstructed tracks (one per tracked charged particle, in generator order).

    Attributes
    ----------
    index
        Index of the generator particle.
    event, interaction
        Its event and interaction.
    pt_true, pt
        True and measured transverse momentum [GeV].
    eta
        Pseudorapidity (not smeared).
    resolution
        Relative pt resolution sigma(pt)/pt used for the smearing.
    d0, z0
        Measured transverse and longitudinal impact parameters [cm].
    sigma_d0, sigma_dz
        Their resolutions [cm].
    """

    index: np.ndarray
    event: np.ndarray
    interaction: np.ndarray
    pt_true: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    resolution: np.ndarray
    d0: np.ndarray
    z0: np.ndarray
    sigma_d0: np.ndarray
    sigma_dz: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


def reconstruct_tracks(
    gen: DetectorInput,
    pt: np.ndarray,
    eta: np.ndarray,
    abs_pdg: np.ndarray,
    rng: np.random.Generator,
) -> Tracks:
    """Draw which charged particles are tracked (:func:`tracking_efficiency`), smear their pt
    log-normally (:func:`track_pt_resolution`) and their impact parameters with Gaussians
    (:func:`d0_resolution`, :func:`dz_resolution`). The true impact parameters come from the
    production vertex in the straight-line approximation near the beam line."""
    charged = gen.charge != 0
    tracked = charged & (rng.random(len(pt)) < tracking_efficiency(pt, eta, abs_pdg))
    t = np.flatnonzero(tracked)
    pt_true = pt[t]
    t_eta = eta[t]
    res = track_pt_resolution(pt_true, t_eta, abs_pdg[t])
    t_pt = lognormal_smear(rng, pt_true, res * pt_true)
    d0_true = (-gen.vx[t] * gen.py[t] + gen.vy[t] * gen.px[t]) / pt_true
    z0_true = gen.vz[t] - (gen.vx[t] * gen.px[t] + gen.vy[t] * gen.py[t]) / pt_true * (
        gen.pz[t] / pt_true
    )
    sigma_d0 = d0_resolution(pt_true, t_eta)
    sigma_dz = dz_resolution(pt_true, t_eta)
    d0 = d0_true + sigma_d0 * rng.standard_normal(len(t))
    z0 = z0_true + sigma_dz * rng.standard_normal(len(t))
    return Tracks(
        index=t, event=gen.event[t], interaction=gen.interaction[t], pt_true=pt_true, pt=t_pt,
        eta=t_eta, resolution=res, d0=d0, z0=z0, sigma_d0=sigma_d0, sigma_dz=sigma_dz,
    )  # fmt: skip


@dataclass(frozen=True)
class ChargedCandidates:
    """Particle-flow identity of each track: PDG id (electron, muon, else charged pion with the
    track's charge), mass [GeV], charge, and whether it was identified as a lepton."""

    pdg_id: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    lepton: np.ndarray


def identify_leptons(
    tracks: Tracks, abs_pdg: np.ndarray, charge: np.ndarray, rng: np.random.Generator
) -> ChargedCandidates:
    """Electron and muon identification of tracks (:func:`electron_id_efficiency`,
    :func:`muon_id_efficiency`, one uniform draw per track); the others are charged pions.
    ``abs_pdg``, ``charge``: of the generator particles."""
    t_abs = abs_pdg[tracks.index]
    t_charge = charge[tracks.index].astype(np.int8)
    u = rng.random(len(tracks))
    is_ele = (t_abs == 11) & (u < electron_id_efficiency(tracks.pt, tracks.eta))
    is_mu = (t_abs == 13) & (u < muon_id_efficiency(tracks.pt, tracks.eta))
    q32 = t_charge.astype(np.int32)
    pdg = np.where(is_ele, -11 * q32, np.where(is_mu, -13 * q32, 211 * q32)).astype(np.int32)
    mass = np.where(is_ele, ELECTRON_MASS, np.where(is_mu, MUON_MASS, PION_MASS))
    return ChargedCandidates(pdg_id=pdg, mass=mass, charge=t_charge, lepton=is_ele | is_mu)

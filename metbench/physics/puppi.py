"""PileUp Per Particle Identification (PUPPI), following CMSSW ``CommonTools/PileupAlgos``.

One implementation serves the dataset generator (which stores ``puppi_weight``) and the PUPPI
baseline. It follows ``PuppiProducer.cc``, ``PuppiContainer.cc`` and ``PuppiAlgo.cc`` of cms-sw/cmssw
with the parameters of ``python/Puppi_cff.py`` (by default Run 2 UL / Run 3 offline):

* candidate classes: 0 neutral-like (neutrals, and charged tracks with fromPV 1 or 2 below
  20 GeV and |eta| < 2.4), 1 charged from the leading vertex, 2 charged pileup, 3 lepton excluded
  (``puppiNoLep`` only);
* alpha_i = ln sum_j (pt_j / dR_ij)^2 over neighbours j within R0 = 0.4 (cone in rapidity-phi,
  dR in eta-phi, dR < 0.01 skipped): leading-vertex charged neighbours for |eta| < 2.5 ("central"),
  all neighbours beyond ("forward");
* median and left-sided RMS of alpha over charged pileup with |eta| < 2.0, with CMSSW's quirks
  (the median counted from the last alpha equal to zero, zeros left out of the RMS, the low-pileup
  shift sqrt(chi2_1^-1(f) * RMS)), scaled per forward eta region;
* w = F_chi2,1(sign(alpha - med) (alpha - med)^2 / RMS^2), then charged-hadron subtraction,
  the neutral cut w pt < a + b n_pv, the high-pt neutral ramp and w < 0.01 -> 0.

Deviation: ``NumOfPUVtxsForCharged`` (tune v15, which rescues tracks associated with the 2nd or
3rd vertex) is 0 here, as in ``Puppi_cff.py`` itself, because the event model stores the vertex
association to the primary vertex only (``from_pv``), not to the other vertices.

Tunes (:data:`PUPPI_TUNES`, :meth:`PuppiParameters.for_tune`), read from cms-sw/cmssw
``CommonTools/PileupAlgos/python/Puppi_cff.py`` (the stored version, commit f58146d3):

* ``run2``: the ``puppi`` producer's own values (Run 2 UL / Run 3 offline), the defaults of
  :class:`PuppiParameters`.
* ``phase2``: the same producer after ``phase2_common.toModify(puppi, ...)``, the Phase-2
  (HL-LHC, <mu> = 140-200) setting: ``EtaMinUseDeltaZ = -1`` (the dz cut, ``DeltaZCut = 0.1`` cm,
  classifies every track with fromPV 1 or 2, at all |eta|), ``PtMaxCharged = -1`` (no pT
  rescue of such tracks), ``PtMaxNeutralsStartSlope = 0`` (the high-pT neutral ramp pT/200
  starts at 0), and the ``algos`` regions

  ============  ============  ============  =================  ========  ========
  |eta|         algorithm     MinNeutralPt  MinNeutralPtSlope  RMSEtaSF  MedEtaSF
  ============  ============  ============  =================  ========  ========
  0 - 2.5       puppiCentral  0.2           0.015              1.0       1.0
  2.5 - 3.5     puppiCentral  0.2           0.030              1.0       1.0
  3.5 - 10      puppiForward  2.0           0.08               1.0       0.75
  ============  ============  ============  =================  ========  ========

  (``EtaMaxExtrap = 2.0``; ``puppiCentral``/``puppiForward`` unchanged: cone 0.4, rmsPtMin
  0.1/0.5, ``applyLowPUCorr``). The Phase-2 tune expects the Phase-2 tracker (|eta| < 4): with
  this dataset's Run-2-like tracker (|eta| < 2.5) the neutrals at 2.5 < |eta| < 3.5 find charged
  leading-vertex neighbours only near |eta| = 2.5 and otherwise keep only the high-pT ramp.
* ``puppiNoLep`` of either tune (:meth:`PuppiParameters.no_lepton`): ``puppi.clone(puppiNoLep =
  True, PtMaxPhotons = 20.)``, cloned after the modifier, so the Phase-2 no-lepton set is the
  Phase-2 set with those two changes.

Not used: ``customizePuppiTune_cff.UpdatePuppiTuneV15``'s own ``phase2_common`` modifier
(``EtaMinUseDeltaZ = 4.0`` on top of the v15 charged-track options) belongs to the v15 MET recipe,
not to ``Puppi_cff.py``'s producers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import erf
from scipy.stats import chi2 as chi2_distribution

from metbench.data.jagged import offsets_from_counts
from metbench.physics.kinematics import rapidity

__all__ = ["PUPPI_TUNES", "PuppiParameters", "PuppiRegion", "puppi_classes", "puppi_weights"]


@dataclass(frozen=True)
class PuppiRegion:
    """One |eta| region of ``Puppi_cff.py`` (``algos`` PSet and eta bin)."""

    eta_min: float
    eta_max: float
    min_neutral_pt: float
    min_neutral_pt_slope: float
    rms_eta_sf: float
    med_eta_sf: float
    use_charged: bool  # True: puppiCentral (charged-LV neighbours); False: puppiForward


#: The parameter sets :meth:`PuppiParameters.for_tune` knows, with their CMSSW origin.
PUPPI_TUNES: Final[dict[str, str]] = {
    "run2": "Puppi_cff.py puppi (Run 2 UL / Run 3 offline)",
    "phase2": "Puppi_cff.py puppi with phase2_common.toModify (Phase-2, HL-LHC)",
}


@dataclass(frozen=True)
class PuppiParameters:
    """CMSSW ``Puppi_cff.py`` parameters; the defaults are the ``run2`` tune (Run 2 UL and Run 3
    offline), :meth:`phase2` the Phase-2 one, :meth:`no_lepton` the ``puppiNoLep`` clone of either.

    A negative ``pt_max_charged`` or ``pt_max_photons`` switches that protection off, as in
    ``PuppiProducer`` (``PtMaxCharged = -1``).
    """

    cone: float = 0.4
    rms_pt_min_central: float = 0.1
    rms_pt_min_forward: float = 0.5
    eta_max_extrap: float = 2.0
    regions: tuple[PuppiRegion, ...] = (
        PuppiRegion(0.0, 2.5, 0.2, 0.015, 1.0, 1.0, True),
        PuppiRegion(2.5, 3.0, 1.7, 0.08, 1.20, 0.90, False),
        PuppiRegion(3.0, 10.0, 2.0, 0.08, 0.95, 0.75, False),
    )
    pt_max_charged: float = 20.0
    eta_min_use_delta_z: float = 2.4
    delta_z_cut: float = 0.3
    pt_max_neutrals: float = 200.0
    pt_max_neutrals_start_slope: float = 20.0
    pt_max_photons: float = -1.0
    eta_max_photons: float = 2.5
    min_puppi_weight: float = 0.01
    apply_chs: bool = True
    apply_low_pu_corr: bool = True
    no_lep: bool = False

    @classmethod
    def phase2(cls) -> PuppiParameters:
        """``Puppi_cff.py``'s ``puppi`` after ``phase2_common.toModify`` (see the module notes)."""
        return cls(
            eta_min_use_delta_z=-1.0,
            pt_max_charged=-1.0,
            pt_max_neutrals_start_slope=0.0,
            delta_z_cut=0.1,
            regions=(
                PuppiRegion(0.0, 2.5, 0.2, 0.015, 1.0, 1.0, True),
                PuppiRegion(2.5, 3.5, 0.2, 0.030, 1.0, 1.0, True),
                PuppiRegion(3.5, 10.0, 2.0, 0.08, 1.0, 0.75, False),
            ),
        )

    @classmethod
    def no_lepton(cls, tune: str = "run2") -> PuppiParameters:
        """``puppiNoLep`` of a tune: leptons get weight 1 and are not neighbours; photons above
        20 GeV too (``puppi.clone(puppiNoLep = True, PtMaxPhotons = 20.)``)."""
        return replace(cls.for_tune(tune), no_lep=True, pt_max_photons=20.0)

    @classmethod
    def for_tune(cls, tune: str, no_lep: bool = False) -> PuppiParameters:
        """The parameters of a tune in :data:`PUPPI_TUNES` (its ``puppiNoLep`` clone with
        ``no_lep``)."""
        if tune not in PUPPI_TUNES:
            raise ValueError(f"unknown PUPPI tune {tune!r}; choose one of {', '.join(PUPPI_TUNES)}")
        if no_lep:
            return cls.no_lepton(tune)
        return cls.phase2() if tune == "phase2" else cls()


def puppi_classes(
    pt: np.ndarray,
    eta: np.ndarray,
    charge: np.ndarray,
    pdg_id: np.ndarray,
    dz: np.ndarray,
    from_pv: np.ndarray,
    params: PuppiParameters | None = None,
) -> np.ndarray:
    """PUPPI's candidate class (``PuppiProducer``): 0 neutral-like, 1 leading vertex, 2 pileup,
    3 lepton left out (``no_lep`` only)."""
    p = params or PuppiParameters()
    aeta = np.abs(eta)
    lepton = np.isin(np.abs(pdg_id), (11, 13))
    # fromPV 1 or 2: if/elif chain of PuppiProducer (PtMaxCharged <= 0 switches the pT rescue off)
    loose = np.where(
        (p.pt_max_charged > 0) & (pt > p.pt_max_charged),
        1,
        np.where(
            aeta >= p.eta_min_use_delta_z,
            np.where(np.abs(dz) < p.delta_z_cut, 1, 2),
            0,
        ),
    )
    cls = np.where(from_pv == 0, 2, np.where(from_pv == 3, 1, loose))
    if p.no_lep:
        cls = np.where(lepton, 3, cls)
    return np.where(charge == 0, 0, cls).astype(np.int8)


def _alpha(
    event: np.ndarray,
    y: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    pt: np.ndarray,
    neighbour: np.ndarray,
    target: np.ndarray,
    cone: float,
) -> np.ndarray:
    """alpha_i = ln sum_j (pt_j/dR_ij)^2 over neighbours (mask) within the cone; 0 if none.

    Computed for the candidates in the ``target`` mask only (0 elsewhere).
    """
    n = len(pt)
    out = np.zeros(n)
    nb = np.flatnonzero(neighbour)
    tg = np.flatnonzero(target)
    if len(tg) == 0 or len(nb) == 0:
        return out
    # one tree for all events: events are separated along the rapidity axis; phi is periodic
    spacing = 50.0
    y_max = float(np.max(np.abs(y[np.isfinite(y)]), initial=0.0))
    spacing = max(spacing, 2 * y_max + 10 * cone)
    coord = np.column_stack(
        [
            np.clip(y, -y_max, y_max) + spacing * (event + 0.5),
            np.mod(phi, 2 * np.pi),
        ]
    )
    box = [spacing * (int(event.max()) + 2), 2 * np.pi]
    tree_tg = cKDTree(coord[tg], boxsize=box)
    tree_nb = cKDTree(coord[nb], boxsize=box)
    pairs = tree_tg.sparse_distance_matrix(tree_nb, cone, output_type="ndarray")
    i = tg[pairs["i"]]
    j = nb[pairs["j"]]
    same = event[i] == event[j]
    i, j = i[same], j[same]
    dphi = np.mod(phi[i] - phi[j] + np.pi, 2 * np.pi) - np.pi
    dr2 = (eta[i] - eta[j]) ** 2 + dphi**2
    ok = dr2 >= 1e-4
    var = np.bincount(i[ok], weights=pt[j[ok]] ** 2 / dr2[ok], minlength=n)
    np.log(var, out=out, where=var > 0)
    return out


def _median_rms(
    n_events: int,
    event: np.ndarray,
    alpha: np.ndarray,
    is_pu: np.ndarray,
    is_pv: np.ndarray,
    apply_low_pu_corr: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-event median and RMS of alpha over pileup charged particles (``PuppiAlgo``).

    Returns (median, rms, has_pileup). Vectorised over events.
    """
    ev = event[is_pu]
    a = alpha[is_pu]
    order = np.lexsort((a, ev))
    ev, a = ev[order], a[order]
    n_pu = np.bincount(ev, minlength=n_events)
    start = offsets_from_counts(n_pu)[:-1]
    rank = np.arange(len(a)) - start[ev]
    # index of the last alpha equal to 0 (0 if none): the median skips what sorts before it
    last_zero = np.zeros(n_events, dtype=np.int64)
    z = a == 0
    np.maximum.at(last_zero, ev[z], rank[z])
    has_pu = n_pu > 0
    med_index = start + last_zero + ((n_pu - last_zero) * 0.5).astype(np.int64)
    med = np.zeros(n_events)
    med[has_pu] = a[np.minimum(med_index[has_pu], len(a) - 1)]
    # left-sided RMS around the median, zeros excluded
    use = a != 0
    if apply_low_pu_corr:
        use &= a <= med[ev]
    count = np.bincount(ev[use], minlength=n_events)
    sum2 = np.bincount(ev[use], weights=(a[use] - med[ev[use]]) ** 2, minlength=n_events)
    rms2 = np.divide(sum2, count, out=np.zeros(n_events), where=count > 0)
    rms2[rms2 == 0] = 1e-5
    rms = np.sqrt(rms2)
    if apply_low_pu_corr:
        below = is_pv & (alpha <= med[event])
        n_pv_below = np.bincount(event[below], minlength=n_events)
        denom = n_pv_below + 0.5 * n_pu
        frac = np.divide(n_pv_below, denom, out=np.zeros(n_events), where=denom > 0)
        shift = np.zeros(n_events)
        ok = frac > 0
        shift[ok] = np.sqrt(chi2_distribution.ppf(frac[ok], df=1) * rms[ok])
        med = med - shift
        rms = rms - shift
    return med, rms, has_pu


def puppi_weights(
    event: np.ndarray,
    n_events: int,
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    mass: np.ndarray,
    charge: np.ndarray,
    pdg_id: np.ndarray,
    dz: np.ndarray,
    from_pv: np.ndarray,
    n_pv: np.ndarray,
    params: PuppiParameters | None = None,
) -> np.ndarray:
    """PUPPI weights of particle-flow candidates of many events at once.

    Parameters
    ----------
    event
        Event index (0 … n_events-1) of each candidate, flat.
    pt, eta, phi, mass, charge, pdg_id, dz, from_pv
        Candidate columns (GeV, cm), flat, as in :mod:`metbench.events`.
    n_pv
        Reconstructed vertices per event (the n_PV of the neutral pt cut), shape ``(n_events,)``.

    Returns
    -------
    numpy.ndarray
        float32 weights in [0, 1], one per candidate.
    """
    p = params or PuppiParameters()
    event = np.asarray(event, dtype=np.int64)
    pt = np.asarray(pt, dtype=np.float64)
    eta = np.asarray(eta, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    mass = np.asarray(mass, dtype=np.float64)
    n_pv = np.asarray(n_pv, dtype=np.float64)
    cls = puppi_classes(pt, eta, charge, pdg_id, dz, from_pv, p)
    aeta = np.abs(eta)
    y = rapidity(pt, eta, mass)

    # region of each candidate (last matching wins; regions do not overlap)
    region = np.full(len(pt), -1, dtype=np.int64)
    for k, r in enumerate(p.regions):
        region[(aeta >= r.eta_min) & (aeta < r.eta_max) & (pt > 0)] = k
    valid = region >= 0
    charged_central = valid & np.isin(cls, (1, 2)) & (aeta < p.eta_max_extrap)
    region_central = np.array([r.use_charged for r in p.regions])[np.maximum(region, 0)] & valid

    # each alpha only where it is used: for the weight of its region's candidates and for the
    # median/RMS sample of its algorithm
    alpha_central = _alpha(
        event, y, eta, phi, pt, cls == 1,
        region_central | (charged_central & (pt >= p.rms_pt_min_central)), p.cone,
    )  # fmt: skip
    alpha_forward = _alpha(
        event, y, eta, phi, pt, cls != 3,
        (valid & ~region_central) | (charged_central & (pt >= p.rms_pt_min_forward)), p.cone,
    )  # fmt: skip
    stats: dict[bool, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for charged_neighbours, alpha_a, rms_pt_min in (
        (True, alpha_central, p.rms_pt_min_central),
        (False, alpha_forward, p.rms_pt_min_forward),
    ):
        sample = charged_central & (pt >= rms_pt_min)
        stats[charged_neighbours] = (
            alpha_a,
            *_median_rms(
                n_events,
                event,
                alpha_a,
                sample & (cls == 2),
                sample & (cls == 1),
                p.apply_low_pu_corr,
            ),
        )
    has_pu = stats[True][3] & stats[False][3]

    reg = np.maximum(region, 0)
    use_charged = np.array([r.use_charged for r in p.regions])[reg]
    med_sf = np.array([r.med_eta_sf for r in p.regions])[reg]
    rms_sf = np.array([r.rms_eta_sf for r in p.regions])[reg]
    alpha = np.where(use_charged, stats[True][0], stats[False][0])
    med = np.where(use_charged, stats[True][1][event], stats[False][1][event]) * med_sf
    rms = np.where(use_charged, stats[True][2][event], stats[False][2][event]) * rms_sf
    x = np.where(alpha == 0, med, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):  # events without pileup: w = 1 below
        chi2 = (x - med) * np.abs(x - med) / rms**2
        w = np.where(chi2 > 0, erf(np.sqrt(np.maximum(chi2, 0.0) / 2.0)), 0.0)
    w = np.where(has_pu[event], w, 1.0)

    if p.apply_chs:
        w = np.where(cls == 1, 1.0, np.where(cls == 2, 0.0, w))
    w = np.where(cls == 3, 1.0, w)
    w = np.where(np.isfinite(w), w, 0.0)
    min_pt = np.array([r.min_neutral_pt for r in p.regions])[reg]
    slope = np.array([r.min_neutral_pt_slope for r in p.regions])[reg]
    w = np.where((cls == 0) & (w * pt < min_pt + slope * n_pv[event]), 0.0, w)
    photon = (pdg_id == 22) & (aeta < p.eta_max_photons) & (pt > p.pt_max_photons)
    if p.pt_max_photons > 0:
        w = np.where(photon, 1.0, w)
    else:
        photon = np.zeros_like(photon)
    if p.pt_max_neutrals > 0:
        ramp = (pt - p.pt_max_neutrals_start_slope) / (
            p.pt_max_neutrals - p.pt_max_neutrals_start_slope
        )
        w = np.where((cls == 0) & ~photon, np.maximum(w, np.minimum(ramp, 1.0)), w)
    w = np.where(w < p.min_puppi_weight, 0.0, w)
    w = np.where(valid, w, 0.0)
    return w.astype(np.float32)

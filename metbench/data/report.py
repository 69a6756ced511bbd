"""``metbench data info``, ``validate`` and ``speed``: dataset summaries and physics sanity figures."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from rich.console import Group
from rich.table import Table

from metbench.data.source import EventSource
from metbench.data.splits import SPLITS
from metbench.data.store import TIMING_NAME, load_manifest, verify_file
from metbench.errors import DatasetError
from metbench.physics.constants import W_MASS, Z_MASS

__all__ = [
    "DEFAULT_PFNANO",
    "dataset_info",
    "invariant_mass",
    "jacobian_edge",
    "measure_generation_speed",
    "missing_files",
    "pfnano_reference",
    "transverse_mass",
    "validate_dataset",
]

#: PDG 2024 masses [GeV].
#: The CMS PFNano sample shipped with the project (relative to the project root).
DEFAULT_PFNANO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pfnano.root"


# ------------------------------------------------------------------------------------------------
# physics helpers (independent of the generator: plain four-vector algebra)
# ------------------------------------------------------------------------------------------------
def invariant_mass(
    pt1: np.ndarray, eta1: np.ndarray, phi1: np.ndarray, m1: np.ndarray,
    pt2: np.ndarray, eta2: np.ndarray, phi2: np.ndarray, m2: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Invariant mass of two particles [GeV] from (pt, eta, phi, m)."""

    def four(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, m: np.ndarray) -> tuple:
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)

    a = four(pt1, eta1, phi1, m1)
    b = four(pt2, eta2, phi2, m2)
    e, px, py, pz = a[3] + b[3], a[0] + b[0], a[1] + b[1], a[2] + b[2]
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def transverse_mass(
    pt_lep: np.ndarray, phi_lep: np.ndarray, met_x: np.ndarray, met_y: np.ndarray
) -> np.ndarray:
    """m_T = sqrt(2 pt_l MET (1 - cos dphi)) [GeV] for a massless lepton."""
    met = np.hypot(met_x, met_y)
    dphi = phi_lep - np.arctan2(met_y, met_x)
    return np.sqrt(np.maximum(2 * pt_lep * met * (1 - np.cos(dphi)), 0.0))


def jacobian_edge(
    values: np.ndarray, lo: float = 40.0, hi: float = 120.0, width: float = 1.0
) -> float:
    """Position of a falling Jacobian edge: where the histogram drops to half its maximum above
    the peak (linear interpolation between bins) [GeV]."""
    counts, edges = np.histogram(values, bins=np.arange(lo, hi + width, width))
    if counts.max() == 0:
        return float("nan")
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    peak = int(np.argmax(smooth))
    half = smooth[peak] / 2
    after = np.flatnonzero(smooth[peak:] < half)
    if len(after) == 0:
        return float("nan")
    k = peak + int(after[0])
    centres = 0.5 * (edges[1:] + edges[:-1])
    x0, x1, y0, y1 = centres[k - 1], centres[k], smooth[k - 1], smooth[k]
    return float(x0 + (half - y0) * (x1 - x0) / (y1 - y0))


def peak_fit(values: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Mean and width of a peak: iterated 2-sigma truncated mean and RMS, started at the median."""
    v = values[(values > lo) & (values < hi)]
    if len(v) < 5:
        return float("nan"), float("nan")
    centre, sigma = float(np.median(v)), float(np.std(v))
    for _ in range(10):
        core = v[np.abs(v - centre) < 2 * sigma]
        if len(core) < 5:
            break
        centre, sigma = (
            float(core.mean()),
            float(core.std() / 0.8796),
        )  # RMS of a 2-sigma-cut Gaussian
    return centre, sigma


# ------------------------------------------------------------------------------------------------
# real CMS reference figures
# ------------------------------------------------------------------------------------------------
def pfnano_reference(path: Path | None = None) -> dict[str, float] | None:
    """Multiplicity figures of the CMS PFNano sample (None when the file is not there)."""
    path = Path(path) if path else DEFAULT_PFNANO
    if not path.is_file():
        return None
    import uproot

    with uproot.open(path) as f:
        arrays = f["Events"].arrays(["nPFCands", "Pileup_nPU", "PV_npvs"], library="np")
    n = arrays["nPFCands"].astype(float)
    n_pu = arrays["Pileup_nPU"].astype(float)
    n_pv = arrays["PV_npvs"].astype(float)
    slope, intercept = np.polyfit(n_pu, n, 1)
    return {
        "events": float(len(n)),
        "candidates_per_pu": float(n.sum() / n_pu.sum()),
        "slope": float(slope),
        "intercept": float(intercept),
        "n_pv_per_interaction": float(n_pv.sum() / (n_pu + 1).sum()),
        "mean_n_pu": float(n_pu.mean()),
    }


# ------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------
def _timing(folder: Path) -> dict[str, Any] | None:
    """The generation timing of a dataset (None when absent or unreadable: it is not checksummed)."""
    path = Path(folder) / TIMING_NAME
    try:
        timing = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None
    return timing if isinstance(timing, dict) else None


def _title(manifest: dict[str, Any]) -> str:
    """What a dataset is: name, version, seed and library versions (generated), or the file it was
    read from (converted)."""
    version = manifest["version"]
    parts = [f"{manifest['name']}" + ("" if version == "file" else f" v{version}")]
    if manifest.get("seed") is not None:
        parts.append(f"seed {manifest['seed']}")
    versions = manifest.get("versions")
    if isinstance(versions, dict) and versions:
        shown = [f"{k} {versions[k]}" for k in ("metbench", "pythia8mc", "numpy") if k in versions]
        parts.append(f"({', '.join(shown or [f'{k} {v}' for k, v in versions.items()])})")
    source = manifest.get("source")
    if isinstance(source, dict):
        read = f"read from {Path(str(source.get('file', '?'))).name}"
        if source.get("reader"):
            read += f" by the {source['reader']} reader"
        if source.get("sha256"):
            read += f" (sha256 {str(source['sha256'])[:12]})"
        parts.append(read)
    return "  ".join(parts)


def _size(n: float) -> str:
    """A size in bytes, in GB from 1 GB, else in MB."""
    return f"{n / 1e9:.3f} GB" if n >= 1e9 else f"{n / 1e6:.2f} MB"


def _stats_row(label: str, values: np.ndarray) -> list[str]:
    """mean, min, p50, p99, max of the finite values ("—" where there are none)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return [label, *(["—"] * 5)]
    p50, p99 = np.percentile(finite, [50, 99])
    return [label, f"{finite.mean():.1f}", f"{finite.min():.0f}", f"{p50:.0f}", f"{p99:.0f}",
            f"{finite.max():.0f}"]  # fmt: skip


def missing_files(folder: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """The files the manifest lists that ``folder`` lacks (those of the processes left out by
    ``data generate --process``), each with its process (``pileup pool`` for the pool's), in the
    manifest's order; only their presence is looked at (:func:`validate_dataset` checks sums)."""
    return {
        relpath: str(entry.get("process", "pileup pool"))
        for relpath, entry in manifest["files"].items()
        if not (Path(folder) / relpath).is_file()
    }


def dataset_info(folder: Path) -> Group:
    """Counts, pileup and multiplicity summaries, generation speed and disk size of a dataset.

    Works on generated datasets and on files converted from ROOT files (which have no seed,
    generator settings, pileup pool or timing: what they lack is left out).
    """
    folder = Path(folder)
    manifest = load_manifest(folder)
    # a dataset generated with --process lacks the other processes' files: described as it is
    missing = missing_files(folder, manifest)
    files: dict[str, Any] = {r: f for r, f in manifest["files"].items() if r not in missing}
    absent = sorted(set(missing.values()))
    counts = Table(title=_title(manifest))
    counts.add_column("process")
    for s in SPLITS:
        counts.add_column(s, justify="right")
    counts.add_column("total", justify="right")
    for name, proc in manifest["processes"].items():
        ev = proc.get("events", {}) if isinstance(proc, dict) else {}
        n = [int(ev.get(s, 0)) for s in SPLITS]
        label = f"{name} (files missing)" if name in absent else name
        counts.add_row(label, *(f"{x:,}" for x in n), f"{sum(n):,}")

    mu, n_pu, n_pv, n_cand = [], [], [], []
    for split in SPLITS:
        source = EventSource(folder, split, verify=False)
        source = source.restrict([f for f in source.files if f in files])
        for arr in source.iter_files(["event_id", "mu", "n_pu", "n_pv", "pf.pt"]):
            mu.append(_np(arr.mu))
            n_pu.append(_np(arr.n_pu))
            n_pv.append(_np(arr.n_pv))
            n_cand.append(ak.to_numpy(ak.num(arr.pf, axis=1)).astype(np.float64))
    if not mu:
        raise DatasetError(
            f"{folder}: {'no event file present' if absent else 'the manifest lists no event files'}"
            "; regenerate the dataset"
        )
    mu_a, n_pu_a, n_pv_a, n_cand_a = (np.concatenate(x) for x in (mu, n_pu, n_pv, n_cand))
    src: dict[str, Any] = manifest["source"] if isinstance(manifest.get("source"), dict) else {}
    has_candidates = bool(src.get("has_candidates", True))
    summary = Table(title="pileup and multiplicity")
    summary.add_column("quantity")
    for col in ("mean", "min", "p50", "p99", "max"):
        summary.add_column(col, justify="right")
    for label, values in (("mu", mu_a), ("n_pu", n_pu_a), ("n_pv", n_pv_a)):
        summary.add_row(*_stats_row(label, values))
    if has_candidates:
        summary.add_row(*_stats_row("PF candidates", n_cand_a))
    else:
        summary.add_row("PF candidates", "not stored in the file", "", "", "", "")
    n_events = len(n_cand_a)

    def size(kind: str) -> int:
        return sum(int(f.get("bytes", 0)) for f in files.values() if f.get("kind") == kind)

    event_bytes, truth_bytes, pool_bytes = size("events"), size("truth"), size("pileup_pool")
    storage = Table(title="disk and speed")
    storage.add_column("figure")
    storage.add_column("value", justify="right")
    storage.add_row("events", f"{n_events:,}" + (" (in the files present)" if absent else ""))
    if absent:
        storage.add_row(
            "files missing",
            f"{len(manifest['files']) - len(files)} of {len(manifest['files'])} "
            f"({', '.join(absent)}): `metbench data generate` without --process adds them",
        )
    if has_candidates:
        storage.add_row("events > 4500 candidates", f"{np.count_nonzero(n_cand_a > 4500):,}")
    storage.add_row("event files", _size(event_bytes))
    if truth_bytes:
        storage.add_row("truth files", _size(truth_bytes))
    storage.add_row(
        "disk per 1k events", f"{(event_bytes + truth_bytes) / n_events * 1e3 / 1e6:.1f} MB"
    )
    pool = manifest.get("pileup_pool")
    if isinstance(pool, dict) and "events" in pool:
        storage.add_row("pileup pool", f"{pool['events']:,} events, {pool_bytes / 1e6:.1f} MB")
    if src:
        missing = src.get("missing_columns") or {}
        storage.add_row("stored MET", ", ".join(src.get("stored_met") or []) or "none")
        storage.add_row("columns not in the file", ", ".join(missing) or "none")
    _timing_rows(storage, _timing(folder))
    return Group(counts, summary, storage)


def _timing_rows(storage: Table, timing: dict[str, Any] | None) -> None:
    """The generation speed rows (none for a dataset without, or with an incomplete, timing)."""
    try:
        if not timing:
            return
        rows = [
            (
                "generation wall time",
                f"{timing['wall_s']:.0f} s on {timing['host']['workers']} worker(s)",
            ),
            ("events/s per core (all stages)", f"{timing['events_per_s_per_core']:.1f}"),
            (
                "ms/event per stage",
                ", ".join(f"{k} {v:.1f}" for k, v in timing["ms_per_event"].items()),
            ),
            ("pool generation", f"{timing['pool_ms_per_event']:.2f} ms per minimum-bias event"),
            (
                "premixing vs per-event pileup (from these stage times)",
                f"{timing['ms_per_event']['premix']:.1f} ms vs "
                f"{timing['mean_n_pu'] * timing['pool_ms_per_event']:.0f} ms "
                f"(<n_pu> {timing['mean_n_pu']:.1f}); direct measurement: metbench data speed",
            ),
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        return  # timing.json is informative only (not checksummed): a damaged one is skipped
    for row in rows:
        storage.add_row(*row)


# ------------------------------------------------------------------------------------------------
# validate
# ------------------------------------------------------------------------------------------------
@dataclass
class _Accumulator:
    n_pu: list[np.ndarray] = field(default_factory=list)
    n_pv: list[np.ndarray] = field(default_factory=list)
    n_cand: list[np.ndarray] = field(default_factory=list)
    met: dict[str, list[np.ndarray]] = field(default_factory=dict)
    met_minus_qt: dict[str, list[np.ndarray]] = field(default_factory=dict)
    z_mass: list[np.ndarray] = field(default_factory=list)
    w_mt_gen: list[np.ndarray] = field(default_factory=list)
    w_mt_pf: list[np.ndarray] = field(default_factory=list)


def _np(x: ak.Array) -> np.ndarray:
    """Plain float64 numpy from awkward (slicing can leave an option type without missing values)."""
    return np.asarray(ak.to_numpy(ak.fill_none(x, np.nan)), dtype=np.float64)


def _accumulate(arr: ak.Array, acc: _Accumulator) -> None:
    acc.n_pu.append(ak.to_numpy(arr.n_pu))
    acc.n_pv.append(ak.to_numpy(arr.n_pv))
    acc.n_cand.append(ak.to_numpy(ak.num(arr.pf, axis=1)))
    process = ak.to_numpy(arr.process).astype(str)
    met_x, met_y = ak.to_numpy(arr.gen_met_x), ak.to_numpy(arr.gen_met_y)
    qt_x, qt_y = ak.to_numpy(arr.gen_qt_x), ak.to_numpy(arr.gen_qt_y)
    for name in np.unique(process):
        sel = process == name
        acc.met.setdefault(name, []).append(np.hypot(met_x[sel], met_y[sel]))
        acc.met_minus_qt.setdefault(name, []).append(
            np.hypot(met_x[sel] - qt_x[sel], met_y[sel] - qt_y[sel])
        )
    pf = arr.pf
    # Z -> mu mu: the two hardest muon candidates of opposite charge
    zmm = pf[process == "z_mumu"]
    muons = zmm[abs(zmm.pdg_id) == 13]
    muons = muons[ak.argsort(muons.pt, ascending=False)]
    two = muons[ak.num(muons) >= 2][:, :2]
    opposite = ak.to_numpy(two.charge[:, 0] * two.charge[:, 1]) < 0
    two = two[opposite]
    if len(two):
        m = invariant_mass(*(_np(two[f][:, 0]) for f in ("pt", "eta", "phi", "mass")),
                           *(_np(two[f][:, 1]) for f in ("pt", "eta", "phi", "mass")))  # fmt: skip
        acc.z_mass.append(m)
    # W -> l nu: the hardest identified electron or muon, with generator MET and PF MET
    w = process == "w_lnu"
    wpf = pf[w]
    leptons = wpf[(abs(wpf.pdg_id) == 11) | (abs(wpf.pdg_id) == 13)]
    leptons = leptons[ak.argsort(leptons.pt, ascending=False)]
    has = ak.to_numpy(ak.num(leptons) >= 1)
    lead = leptons[has][:, 0]
    if len(lead):
        pt_l, phi_l = _np(lead.pt), _np(lead.phi)
        acc.w_mt_gen.append(transverse_mass(pt_l, phi_l, met_x[w][has], met_y[w][has]))
        cand = wpf[has]
        pf_mx = -_np(ak.sum(cand.pt * np.cos(cand.phi), axis=1))
        pf_my = -_np(ak.sum(cand.pt * np.sin(cand.phi), axis=1))
        acc.w_mt_pf.append(transverse_mass(pt_l, phi_l, pf_mx, pf_my))


def validate_dataset(folder: Path, plots: Path, pfnano: Path | None = None) -> Group:
    """Verify every checksum, then print the physics sanity figures with their expectations and
    write mplhep plots of them to ``plots``."""
    folder = Path(folder)
    manifest = load_manifest(folder)
    missing = missing_files(folder, manifest)
    if missing:
        raise DatasetError(
            f"{folder}: {len(missing)} of {len(manifest['files'])} files missing (those of "
            f"{', '.join(sorted(set(missing.values())))}; e.g. {next(iter(missing))}): "
            "`metbench data generate` with this preset, "
            "seed and --out adds them"
        )
    for relpath in manifest["files"]:
        verify_file(folder, relpath, manifest)
    from metbench.data.published import check_published
    from metbench.data.store import MANIFEST_NAME, sha256_file

    pinned = check_published(folder, manifest, sha256_file(Path(folder) / MANIFEST_NAME))
    identity = {True: "the published dataset", None: "not a published dataset"}[pinned]
    acc = _Accumulator()
    columns = ["event_id", "process", "n_pu", "n_pv", "gen_met_x", "gen_met_y", "gen_qt_x", "gen_qt_y",
               "pf.pt", "pf.eta", "pf.phi", "pf.mass", "pf.charge", "pf.pdg_id"]  # fmt: skip
    for split in SPLITS:
        for arr in EventSource(folder, split, verify=False).iter_files(columns):
            _accumulate(arr, acc)
    n_pu = np.concatenate(acc.n_pu).astype(float)
    n_pv = np.concatenate(acc.n_pv).astype(float)
    n_cand = np.concatenate(acc.n_cand).astype(float)
    slope, intercept = np.polyfit(n_pu, n_cand, 1)
    ref = pfnano_reference(pfnano)
    ref_text = (
        f"CMS PFNano ({ref['events']:.0f} events, <n_pu> {ref['mean_n_pu']:.0f}): "
        f"{ref['candidates_per_pu']:.1f} (ratio), slope {ref['slope']:.1f}"
        if ref
        else "CMS PFNano: about 70 (file not found for a live figure)"
    )
    table = Table(title=f"physics sanity figures: {manifest['name']} v{manifest['version']} "
                  f"({len(n_cand):,} events, checksums verified, {identity})")  # fmt: skip
    table.add_column("figure")
    table.add_column("here", justify="right")
    table.add_column("expectation")
    table.add_row(
        "PF candidates per pileup interaction",
        f"slope {slope:.1f}, intercept {intercept:.0f}; ratio {n_cand.sum() / n_pu.sum():.1f}",
        ref_text,
    )
    table.add_row(
        "reconstructed vertices per interaction",
        f"{n_pv.sum() / (n_pu + 1).sum():.2f}",
        f"CMS PFNano: {ref['n_pv_per_interaction']:.2f}" if ref else "CMS: about 0.8",
    )
    z_mass = np.concatenate(acc.z_mass) if acc.z_mass else np.array([])
    z_peak, z_width = peak_fit(z_mass, 70, 110)
    table.add_row(
        "Z -> mu mu mass peak (two hardest muons)",
        f"{z_peak:.2f} GeV, width {z_width:.2f} GeV ({len(z_mass)} events)",
        f"{Z_MASS:.2f} GeV within 0.5 GeV; width ~ Gamma_Z/2.35 (1.06 GeV) (+) muon resolution",
    )
    mt_gen = np.concatenate(acc.w_mt_gen) if acc.w_mt_gen else np.array([])
    mt_pf = np.concatenate(acc.w_mt_pf) if acc.w_mt_pf else np.array([])
    edge = jacobian_edge(mt_gen)
    table.add_row(
        "W transverse-mass edge (lepton + generator MET)",
        f"{edge:.1f} GeV ({len(mt_gen)} events)",
        f"at m_W = {W_MASS:.1f} GeV, smeared by Gamma_W = 2.1 GeV: within ~2 GeV",
    )
    table.add_row(
        "W transverse-mass edge (lepton + PF MET)",
        f"{jacobian_edge(mt_pf):.1f} GeV",
        "smeared by the MET resolution",
    )
    met_table = Table(title="generator MET per process [GeV]")
    for col in ("process", "events", "mean", "p50", "p90", "|MET - qT| p50", "expectation"):
        met_table.add_column(col, justify="left" if col in ("process", "expectation") else "right")
    expectations = {
        "ttbar_2l2nu": "two W neutrinos: mean ~ 70-80",
        "w_lnu": "one neutrino: Jacobian peak near m_W/2 ~ 40",
        "z_nunu_jets": "MET = qT(Z) (closure p50 < 1), above the 30 GeV pTHat cut",
        "z_mumu": "no neutrinos from the hard process: p50 ~ 0",
        "qcd_multijet": "heavy-flavour decays only: p50 ~ 0, tail",
        "h_zz_4nu": "MET = qT(H) (closure p50 < 1)",
    }
    for name, parts in sorted(acc.met.items()):
        met = np.concatenate(parts)
        closure = np.concatenate(acc.met_minus_qt[name])
        invisible_boson = name in ("z_nunu_jets", "h_zz_4nu")  # MET is the boson's qT
        closure_text = f"{np.nanmedian(closure):.2f}" if invisible_boson else "-"
        p = np.percentile(met, [50, 90])
        met_table.add_row(name, f"{len(met):,}", f"{met.mean():.1f}", f"{p[0]:.1f}", f"{p[1]:.1f}",
                          closure_text, expectations.get(name, ""))  # fmt: skip
    written = _validation_plots(
        plots, n_pu, n_cand, slope, intercept, z_mass, mt_gen, mt_pf, acc, manifest, ref
    )
    files = Table(title="plots")
    files.add_column("file")
    for path in written:
        files.add_row(str(path))
    return Group(table, met_table, files)


def _validation_plots(
    plots: Path,
    n_pu: np.ndarray,
    n_cand: np.ndarray,
    slope: float,
    intercept: float,
    z_mass: np.ndarray,
    mt_gen: np.ndarray,
    mt_pf: np.ndarray,
    acc: _Accumulator,
    manifest: dict[str, Any],
    ref: dict[str, float] | None,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    from metbench.data.store import atomic_write_bytes

    plt.style.use(hep.style.CMS)
    label = f"{manifest['name']} v{manifest['version']}"
    plots = Path(plots)
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        path = plots / name
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)

    fig, ax = plt.subplots()
    bins = np.arange(0, n_pu.max() + 2, 2)
    idx = np.digitize(n_pu, bins)
    centres, means = [], []
    for k in np.unique(idx):
        sel = idx == k
        centres.append(n_pu[sel].mean())
        means.append(n_cand[sel].mean())
    ax.plot(centres, means, "o", label="profile")
    xs = np.linspace(0, n_pu.max(), 10)
    ax.plot(xs, intercept + slope * xs, "-", label=f"fit: {slope:.1f} per interaction")
    if ref:
        ax.plot(xs, ref["intercept"] + ref["slope"] * xs, "--",
                label=f"CMS PFNano fit: {ref['slope']:.1f} per interaction")  # fmt: skip
    ax.set_xlabel("$n_{PU}$")
    ax.set_ylabel("PF candidates per event")
    ax.legend()
    hep.label.exp_text("metbench", label, ax=ax)
    save(fig, "candidates_vs_npu.png")

    fig, ax = plt.subplots()
    hep.histplot(*np.histogram(z_mass, bins=np.arange(70, 111, 1.0)), ax=ax, label=r"$Z\to\mu\mu$")
    ax.axvline(Z_MASS, ls="--", color="gray", label="$m_Z$")
    ax.set_xlabel(r"$m_{\mu\mu}$ [GeV]")
    ax.set_ylabel("events / GeV")
    ax.legend()
    save(fig, "z_mumu_mass.png")

    fig, ax = plt.subplots()
    b = np.arange(0, 121, 2.0)
    hep.histplot(*np.histogram(mt_gen, bins=b), ax=ax, label="lepton + generator MET")
    hep.histplot(*np.histogram(mt_pf, bins=b), ax=ax, label="lepton + PF MET")
    ax.axvline(W_MASS, ls="--", color="gray", label="$m_W$")
    ax.set_xlabel("$m_T$ [GeV]")
    ax.set_ylabel("events / 2 GeV")
    ax.legend()
    save(fig, "w_transverse_mass.png")

    fig, ax = plt.subplots()
    b = np.arange(0, 401, 10.0)
    for name, parts in sorted(acc.met.items()):
        met = np.concatenate(parts)
        hep.histplot(*np.histogram(met, bins=b, density=True), ax=ax, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("generator MET [GeV]")
    ax.set_ylabel("fraction / 10 GeV")
    ax.legend(fontsize="small")
    save(fig, "gen_met_per_process.png")
    return written


# ------------------------------------------------------------------------------------------------
# speed
# ------------------------------------------------------------------------------------------------
def measure_generation_speed(
    mu: float, n_events: int, process_name: str, pool_size: int, seed: int
) -> Table:
    """Premixing against per-event pileup generation, measured in one run on one core.

    Both paths generate the same hard-scatter events and run the same detector simulation and
    PUPPI; they differ only in where the pileup comes from: a pool of minimum-bias events generated
    once (its cost measured on ``pool_size`` events and amortised at the pool-to-event ratio of the
    standard preset) or ``n_pu`` fresh Pythia minimum-bias events per event.
    """
    from metbench.data.generate.detector import simulate_detector
    from metbench.data.generate.pileup import premix
    from metbench.data.generate.processes import MINBIAS, get_process
    from metbench.data.generate.pythia import PythiaGenerator
    from metbench.data.generate.run import pythia_seed, shard_rng
    from metbench.physics.puppi import puppi_weights

    process = get_process(process_name)
    if n_events < 1 or pool_size < 1 or mu < 0:
        raise DatasetError("speed: need events >= 1, pool size >= 1 and mu >= 0")
    rng = shard_rng(seed, process.code, 0)
    hard_gen = PythiaGenerator(process, pythia_seed(seed, "speed", process.code, 0))
    t0 = time.perf_counter()
    hard, _ = hard_gen.generate(n_events)
    t_hard = time.perf_counter() - t0
    n_pu = rng.poisson(np.full(n_events, mu))
    minbias = PythiaGenerator(MINBIAS, pythia_seed(seed, "speed", MINBIAS.code, 0))

    def reconstruct(mixed: Any) -> float:
        t = time.perf_counter()
        reco = simulate_detector(mixed, rng)
        c = reco.columns
        puppi_weights(reco.event, n_events, c["pt"], c["eta"], c["phi"], c["mass"], c["charge"],
                      c["pdg_id"], c["dz"], c["from_pv"], reco.n_pv)  # fmt: skip
        return time.perf_counter() - t

    t0 = time.perf_counter()
    pool, _ = minbias.generate(pool_size)
    t_pool = time.perf_counter() - t0
    t0 = time.perf_counter()
    mixed = premix(hard, n_pu, pool, rng, 4.0)
    t_premix = time.perf_counter() - t0
    t_reco_a = reconstruct(mixed)

    t0 = time.perf_counter()
    fresh, _ = minbias.generate(int(n_pu.sum()))
    t_fresh = time.perf_counter() - t0
    t0 = time.perf_counter()
    mixed = premix(hard, n_pu, fresh, rng, 4.0, pool_pick=np.arange(int(n_pu.sum())))
    t_overlay = time.perf_counter() - t0
    t_reco_b = reconstruct(mixed)

    # the pool is generated once per dataset: amortise it as in the standard preset
    from metbench.data.generate.presets import PRESETS

    standard = PRESETS["standard"]
    pool_per_event = standard.pool_size / (standard.events_per_process * len(standard.processes))
    t_pool_amortised = t_pool / pool_size * pool_per_event * n_events
    premixed = (t_hard + t_pool_amortised + t_premix + t_reco_a) / n_events
    per_event = (t_hard + t_fresh + t_overlay + t_reco_b) / n_events
    table = Table(title=f"generation speed, one core: {process.name}, mu = {mu:g}, {n_events} events "
                  f"(<n_pu> = {n_pu.mean():.1f})")  # fmt: skip
    table.add_column("stage")
    table.add_column("premixed (ms/event)", justify="right")
    table.add_column("per-event pileup (ms/event)", justify="right")
    table.add_row(
        "hard scatter (Pythia)", f"{1e3 * t_hard / n_events:.1f}", f"{1e3 * t_hard / n_events:.1f}"
    )
    table.add_row(
        "pileup (Pythia minimum bias)",
        f"{1e3 * t_pool_amortised / n_events:.1f} ({1e3 * t_pool / pool_size:.1f} per pool event, "
        f"{pool_per_event:.2f} pool events per event as in 'standard')",
        f"{1e3 * t_fresh / n_events:.1f}",
    )
    table.add_row(
        "overlay", f"{1e3 * t_premix / n_events:.1f}", f"{1e3 * t_overlay / n_events:.1f}"
    )
    table.add_row(
        "detector + PUPPI", f"{1e3 * t_reco_a / n_events:.1f}", f"{1e3 * t_reco_b / n_events:.1f}"
    )
    table.add_row("total", f"{1e3 * premixed:.1f}", f"{1e3 * per_event:.1f}")
    table.add_row("events/s", f"{1 / premixed:.1f}", f"{1 / per_event:.1f}")
    table.add_row("speed-up of premixing", f"{per_event / premixed:.1f}x", "")
    return table

"""The helpers behind `metbench data validate`, against hand computations and the real CMS file."""

from __future__ import annotations

import numpy as np
import pytest

from metbench.data.report import (
    W_MASS,
    Z_MASS,
    invariant_mass,
    jacobian_edge,
    peak_fit,
    pfnano_reference,
    transverse_mass,
)


def test_invariant_mass_of_back_to_back_muons():
    # two muons of p = m_Z/2 back to back at eta = 0: m = sqrt((2E)^2) with E = sqrt(p^2 + m_mu^2)
    p = Z_MASS / 2
    m = invariant_mass(np.array([p]), np.array([0.0]), np.array([0.0]), np.array([0.10566]),
                       np.array([p]), np.array([0.0]), np.array([np.pi]), np.array([0.10566]))  # fmt: skip
    assert m[0] == pytest.approx(2 * np.sqrt(p**2 + 0.10566**2), rel=1e-9)


def test_transverse_mass_is_twice_pt_for_back_to_back_equal_momenta():
    assert transverse_mass(np.array([40.0]), np.array([0.0]), np.array([-40.0]), np.array([0.0]))[
        0
    ] == pytest.approx(80.0)
    assert transverse_mass(np.array([40.0]), np.array([0.0]), np.array([40.0]), np.array([0.0]))[
        0
    ] == pytest.approx(0.0)


def test_jacobian_edge_of_a_two_body_decay_at_rest():
    # W at rest decaying isotropically: m_T = m_W sin(theta*), a Jacobian peak with its edge at m_W
    rng = np.random.default_rng(4)
    cos_theta = rng.uniform(-1, 1, 400_000)
    mt = W_MASS * np.sqrt(1 - cos_theta**2) + rng.normal(0, 0.5, cos_theta.size)
    assert jacobian_edge(mt) == pytest.approx(W_MASS, abs=1.0)


def test_peak_fit_recovers_a_gaussian_on_a_flat_background():
    rng = np.random.default_rng(8)
    values = np.r_[rng.normal(91.0, 2.0, 20_000), rng.uniform(70, 110, 2_000)]
    centre, width = peak_fit(values, 70, 110)
    assert centre == pytest.approx(91.0, abs=0.1)
    assert width == pytest.approx(2.0, rel=0.1)


def test_pfnano_reference_figures(shared_data):
    import awkward as ak
    import uproot

    ref = pfnano_reference(shared_data / "pfnano.root")
    with uproot.open(shared_data / "pfnano.root") as f:
        a = f["Events"].arrays(["PFCands_pt", "Pileup_nPU"])
    n = ak.to_numpy(ak.num(a.PFCands_pt))
    assert ref["events"] == 10
    assert ref["candidates_per_pu"] == pytest.approx(n.sum() / ak.to_numpy(a.Pileup_nPU).sum())
    assert 55 < ref["candidates_per_pu"] < 75  # "about 70" in the data README


def test_validation_figures_of_mini_meet_physics_expectations(mini_dataset, tmp_path):
    """Numbers that would be wrong if the generator, detector or reconstruction were: the Z peak
    against the PDG mass, the W edge against m_W, vertex and candidate rates against CMS."""
    from rich.console import Console

    from metbench.data.report import validate_dataset

    console = Console(width=200, record=True)
    console.print(validate_dataset(mini_dataset, tmp_path / "plots"))
    text = console.export_text()
    import re

    z_peak = float(re.search(r"Z -> mu mu mass peak.*?\│\s+([\d.]+) GeV", text).group(1))
    assert z_peak == pytest.approx(Z_MASS, abs=0.7)  # FSR pulls the peak a little low
    edge = float(re.search(r"lepton \+ generator MET\)\s+\│\s+([\d.]+) GeV", text).group(1))
    assert edge == pytest.approx(W_MASS, abs=3.0)
    vertices = float(
        re.search(r"reconstructed vertices per interaction\s+\│\s+([\d.]+)", text).group(1)
    )
    assert 0.6 < vertices < 0.95
    slope = float(re.search(r"slope ([\d.]+), intercept", text).group(1))
    assert 30 < slope < 90
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "candidates_vs_npu.png", "gen_met_per_process.png", "w_transverse_mass.png", "z_mumu_mass.png",
    ]  # fmt: skip


def test_info_describes_a_dataset_with_some_processes_only(tiny_dataset, tmp_path):
    """`data generate --process` leaves the other processes' files missing: `data info` says
    which, and its figures are those of the files present (no traceback)."""
    import json
    import shutil

    from rich.console import Console

    from metbench.data.report import dataset_info

    folder = tmp_path / "d"
    shutil.copytree(tiny_dataset, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    kept = "ttbar_2l2nu"
    for relpath, entry in manifest["files"].items():
        if entry.get("process") not in (None, kept):
            (folder / relpath).unlink()
    console = Console(record=True, width=250)
    console.print(dataset_info(folder))
    text = console.export_text()
    n_kept = sum(manifest["processes"][kept]["events"].values())
    assert f"{n_kept:,} (in the files present)" in text
    others = sorted(set(manifest["processes"]) - {kept})
    assert f"({', '.join(others)}): `metbench data generate` without --process adds them" in text
    assert "w_lnu (files missing)" in text and f"{kept} (files missing)" not in text
    from metbench.data.report import validate_dataset
    from metbench.errors import DatasetError

    n_missing = sum(1 for r in manifest["files"] if not (folder / r).is_file())
    assert n_missing > 0
    with pytest.raises(
        DatasetError, match=f"{n_missing} of {len(manifest['files'])} files missing .those of h_zz"
    ):
        validate_dataset(folder, tmp_path / "plots")

    for relpath in manifest["files"]:
        (folder / relpath).unlink(missing_ok=True)
    with pytest.raises(DatasetError, match="no event file present; regenerate"):
        dataset_info(folder)

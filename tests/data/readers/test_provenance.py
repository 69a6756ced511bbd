"""The CMSSW configuration a CMS file carries, read back and checked against what CMSSW's own
configuration files say these modules are."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from metbench.data.readers.provenance import (
    describe_lineage,
    lineage,
    parse_parameter_set,
    read_provenance,
)
from metbench.errors import DatasetError

pytest.importorskip("uproot")


@pytest.fixture(scope="module")
def processes(shared_data):
    return read_provenance(shared_data / "pfnano.root")


def test_parse_parameter_set():
    text = (
        "<@module_label=+S(70665472);cut=+S(6368617267652829213D30);src=+t(packedPFCandidates);"
        "n=+U(4500);w=+d({0.5,1});tags=+v({61,62});sub=+P(<a=+B(true)>)>"
    )
    got = parse_parameter_set(text)
    assert got["@module_label"] == ("S", "pfTr")
    assert got["cut"] == ("S", "charge()!=0")
    assert got["src"] == ("t", "packedPFCandidates")
    assert got["n"] == ("U", "4500") and got["w"] == ("d", "[0.5, 1]")
    assert got["tags"] == ("v", "[a, b]") and got["sub"] == ("P", "<a=+B(true)>")
    with pytest.raises(ValueError):
        parse_parameter_set("no brackets")


def test_processes_and_releases(processes):
    assert [p.name for p in processes] == [
        "GEN", "SIM", "DIGI2RAW", "HLT", "RECO", "PAT", "NANO"
    ]  # fmt: skip
    assert processes[-1].release == "CMSSW_10_6_20"
    assert processes[3].release.startswith("CMSSW_9_4")  # UL HLT ran in 9_4
    assert len(processes[-1].modules) > 100


def test_deepmet_ran_at_nano_level_on_packed_candidates(processes):
    """The stored DeepMET was computed by the NANO step itself, with the inputs the entry feeds:
    packed candidates, at most 4500, leptons kept, momenta / 50."""
    nano = processes[-1].modules
    for label, graph in (
        ("deepMETsResolutionTune", "deepmet_v1_2018.pb"),
        ("deepMETsResponseTune", "deepmet_resp_v1_2018.pb"),
    ):
        module = nano[label]
        assert module.type == "DeepMETProducer"
        assert module.parameters["graph_path"].endswith(graph)
        assert module.parameters["pf_src"] == "packedPFCandidates"
        assert module.parameters["ignore_leptons"] == "false"
        assert module.parameters["max_n_pf"] == "4500" and module.parameters["norm_factor"] == "50"


def test_track_and_chs_met_selections(processes):
    chain = [(level, m.process, m.label) for level, m in lineage(processes, "pfMetTrk", 1)]
    assert chain == [(0, "NANO", "pfMetTrk"), (1, "NANO", "pfTrk")]
    nano = processes[-1].modules
    assert nano["pfTrk"].parameters["cut"] == "fromPV(0) > 0 && charge()!=0"
    assert nano["pfCHS"].parameters["cut"] == "fromPV(0)>0"
    # the packed candidates (and their PUPPI weights) come from the PAT step, not NANO
    upstream = {m.label: m.process for _, m in lineage(processes, "pfTrk", 1)}
    assert upstream["packedPFCandidates"] == "PAT"


def test_raw_puppi_met_reruns_puppi(processes):
    """Why -sum(puppiWeight * p) is not RawPuppiMET: NANO recomputed PUPPI on the packed
    candidates (leptons merged back, photons above 20 GeV set to weight 1) instead of using the
    weights PFNano stores, which the PAT step made."""
    text = describe_lineage(processes, "pfMetPuppi", 2)
    assert "NANO puppiForMET (PuppiPhoton)" in text and "NANO puppi (PuppiProducer)" in text
    nano = processes[-1].modules
    assert nano["puppi"].parameters["useExistingWeights"] == "false"
    assert nano["puppi"].parameters["candName"] == "packedPFCandidates"
    assert nano["puppiForMET"].parameters["puppiCandName"] == "puppiMerged"
    assert nano["puppiMerged"].parameters["src"] == "[puppiNoLep, pfLeptonsPUPPET]"
    assert processes[-2].modules["packedPFCandidates"].parameters["PuppiSrc"] == "puppi"


def test_file_without_configuration(shared_data, tmp_path):
    with pytest.raises(DatasetError, match="no CMSSW configuration"):
        read_provenance(shared_data / "nano_dy.root")
    text = tmp_path / "notes.root"
    text.write_text("not ROOT\n")
    with pytest.raises(DatasetError, match="could not be read as a CMSSW file") as err:
        read_provenance(text)
    assert "\n" not in str(err.value)


def test_cli(shared_data, tmp_path):
    env = {**os.environ, "METBENCH_DATA": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "metbench.cli", "data", "provenance",
         str(shared_data / "pfnano.root"), "--depth", "1"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "TkMET <- pfMetTrk" in run.stdout and "cut = fromPV(0) > 0 && charge()!=0" in run.stdout
    assert "NANO       CMSSW_10_6_20" in run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "metbench.cli", "data", "provenance",
         str(shared_data / "pfnano.root"), "--module", "noSuchModule"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert bad.returncode != 0 and "noSuchModule" in bad.stderr and "Traceback" not in bad.stderr

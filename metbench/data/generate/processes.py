"""The hard processes of the standard dataset, as Pythia 8 settings.

Every process runs in its own ``Pythia`` instance with its own seed, at sqrt(s) = 13.6 TeV, with
Pythia's internal PDF set (``PDF:pSet = 13``, NNPDF2.3 QCD+QED LO; pythia8mc has no LHAPDF).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["COMMON_SETTINGS", "MINBIAS", "PROCESSES", "Process", "get_process"]

#: Settings shared by every Pythia instance (beams, PDF, silence).
COMMON_SETTINGS: Final[tuple[str, ...]] = (
    "Beams:eCM = 13600.",
    "PDF:pSet = 13",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Random:setSeed = on",
)


@dataclass(frozen=True)
class Process:
    """One hard process.

    Attributes
    ----------
    name
        Short name used in file names and in the ``process`` column.
    code
        Small integer, part of ``event_id`` (``code * 10**12 + shard * 10**6 + index``).
    settings
        Pythia settings strings.
    description
        Human-readable physics content.
    boson_id
        PDG id of the boson whose transverse momentum is stored as ``gen_qt`` (0: none).
    """

    name: str
    code: int
    settings: tuple[str, ...]
    description: str
    boson_id: int = 0


PROCESSES: Final[dict[str, Process]] = {
    p.name: p
    for p in (
        Process(
            "ttbar_2l2nu",
            1,
            (
                "Top:gg2ttbar = on",
                "Top:qqbar2ttbar = on",
                "24:onMode = off",
                "24:onIfAny = 11 13",
            ),
            "tt -> b l nu b l nu (l = e, mu), the DeeLeMa kinematic-reconstruction sample",
        ),
        Process(
            "w_lnu",
            2,
            ("WeakSingleBoson:ffbar2W = on", "24:onMode = off", "24:onIfAny = 11 13"),
            "W -> l nu (l = e, mu) with initial-state radiation",
            boson_id=24,
        ),
        Process(
            "z_nunu_jets",
            3,
            (
                "WeakBosonAndParton:qqbar2gmZg = on",
                "WeakBosonAndParton:qg2gmZq = on",
                "WeakZ0:gmZmode = 2",
                "PhaseSpace:pTHatMin = 30.",
                "23:onMode = off",
                "23:onIfAny = 12 14 16",
            ),
            "Z -> nu nu recoiling against jets (pTHat > 30 GeV)",
            boson_id=23,
        ),
        Process(
            "z_mumu",
            4,
            (
                "WeakSingleBoson:ffbar2gmZ = on",
                "WeakZ0:gmZmode = 2",
                "23:onMode = off",
                "23:onIfAny = 13",
            ),
            "Z -> mu mu (+ jets from the shower), the recoil control sample of the CMS DeepMET paper",
            boson_id=23,
        ),
        Process(
            "qcd_multijet",
            5,
            ("HardQCD:all = on", "PhaseSpace:pTHatMin = 50."),
            "QCD 2 -> 2 with pTHat > 50 GeV: no invisible particles but heavy-flavour decays, fake MET",
        ),
        Process(
            "h_zz_4nu",
            6,
            (
                "HiggsSM:gg2H = on",
                "HiggsSM:ff2Hff(t:WW) = on",
                "HiggsSM:ff2Hff(t:ZZ) = on",
                "25:onMode = off",
                "25:onIfMatch = 23 23",
                "23:onMode = off",
                "23:onIfAny = 12 14 16",
            ),
            "H(125) -> ZZ* -> 4 nu via gluon fusion and VBF: an invisible, BSM-like final state",
            boson_id=25,
        ),
    )
}

#: The minimum-bias process of the pileup pool (all inelastic: non-diffractive and diffractive).
MINBIAS: Final[Process] = Process(
    "minbias", 9, ("SoftQCD:inelastic = on",), "inelastic pp (SoftQCD) for pileup premixing"
)


def get_process(name: str) -> Process:
    """Look a process up by name; a clear error lists the known ones."""
    from metbench.errors import MetbenchError

    try:
        return PROCESSES[name]
    except KeyError:
        raise MetbenchError(
            f"unknown process {name!r}; known processes: {', '.join(PROCESSES)}"
        ) from None

"""The particle masses metbench uses, one definition each [GeV].

=============  ========  ===================================================================
constant       value     used by
=============  ========  ===================================================================
``W_MASS``     80.4      the W-mass constraint of ``nu-wmass``, the kinematic task's windows
                         and reference masses, the validation report's W peak
``TOP_MASS``   172.5     the kinematic task's top window and reference mass
``Z_MASS``     91.1876   the validation report's dimuon peak
=============  ========  ===================================================================

The events are generated with Pythia 8.317's defaults (m_W = 80.385, m_Z = 91.1876,
m_t = 173.0 GeV, Gamma_W = 2.085 GeV); the W and top reference masses are the round values of
the kinematic-reconstruction literature (DeeLeMa, arXiv:2212.12836), within 0.02% and 0.3% of
the generated ones and well inside the mass windows (10%) and resolutions the figures measure.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TOP_MASS", "W_MASS", "Z_MASS"]

W_MASS: Final[float] = 80.4
TOP_MASS: Final[float] = 172.5
Z_MASS: Final[float] = 91.1876

"""How the headline reacts to tricks that game quantile widths (``metbench bench robustness``).

Each trick rewrites an entry's estimates without any new information: zeroing them below a
threshold, shrinking them where the estimator is "unsure" (small |e|), scaling them globally, or
flipping them. A figure worth ranking by must not improve under any of them. The table puts S next
to CMS's quantile figure (the mean over the same |t| bins of (P84 - P16)/2 of e_perp over R_k).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import pandas as pd

from metbench.scoring.score import Truth, score

__all__ = ["TRICKS", "robustness_table"]


def _zero_below(threshold: float) -> Callable[[np.ndarray], np.ndarray]:
    def trick(e: np.ndarray) -> np.ndarray:
        return np.where((np.hypot(e[:, 0], e[:, 1]) < threshold)[:, None], 0.0, e)

    return trick


def _shrink(softness: float) -> Callable[[np.ndarray], np.ndarray]:
    def trick(e: np.ndarray) -> np.ndarray:
        mag = np.hypot(e[:, 0], e[:, 1])
        return e * (mag / (mag + softness))[:, None]

    return trick


#: The tricks: name -> a function of the ``(n, 2)`` estimates [GeV].
TRICKS: Final[dict[str, Callable[[np.ndarray], np.ndarray]]] = {
    "honest": lambda e: e,
    "zero below 40 GeV": _zero_below(40.0),
    "zero below 80 GeV": _zero_below(80.0),
    "shrink |e|/(|e|+20 GeV)": _shrink(20.0),
    "shrink |e|/(|e|+60 GeV)": _shrink(60.0),
    "scale by 0.5": lambda e: 0.5 * e,
    "flip (-e)": lambda e: -e,
}


def robustness_table(met: np.ndarray, truth: Truth) -> pd.DataFrame:
    """S and CMS's sigma_perp/R of ``met`` (aligned with ``truth``) under each of :data:`TRICKS`
    (no bootstrap); ``—`` where the trick leaves no S (a response at or below 0.1)."""
    rows = []
    for name, trick in TRICKS.items():
        head = score(trick(np.asarray(met, np.float64)), truth, n_boot=0)["tasks"]["met"]
        head = head["headline"]

        def fmt(figure: dict[str, float | None]) -> str:
            value = figure.get("value")
            return "—" if value is None else f"{value:.1f}"

        rows.append(
            {
                "estimate": name,
                "S [GeV]": fmt(head["S"]),
                "CMS σ⊥/R [GeV]": fmt(head["cms_sigma_perp_over_r"]),
                "ranked": "yes" if head["ranked"] else "no",
            }
        )
    return pd.DataFrame(rows)

"""MET estimators already stored in a file (CMS NanoAOD ``RawMET``, ``PuppiMET``, ``DeepMET...``;
Delphes ``MissingET``), handed to the scoring unchanged: the experiments' own numbers on the same
events and with the same scoring as every other entry."""

from __future__ import annotations

import numpy as np

from metbench.data.readers.common import STORED_PREFIX
from metbench.events import EventBatch

__all__ = ["StoredMet"]


class StoredMet:
    """The stored estimator ``name`` (event columns ``stored_<name>_x/_y``, GeV)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def predict(self, batch: EventBatch) -> np.ndarray:
        kx, ky = f"{STORED_PREFIX}{self.name}_x", f"{STORED_PREFIX}{self.name}_y"
        if kx not in batch.event:
            have = sorted(
                {k[len(STORED_PREFIX) : -2] for k in batch.event if k.startswith(STORED_PREFIX)}
            )
            raise KeyError(
                f"this dataset stores no {self.name} (it stores: {', '.join(have) or 'none'})"
            )
        return np.stack([batch.event[kx], batch.event[ky]], 1).astype(np.float64)

"""An entry's MET against a MET stored in a real file, event by event: how well a reimplementation
reproduces what the experiment's software computed (``metbench compare``).

Figures per event: |MET| of both [GeV], the ratio of the magnitudes minus one, and the azimuthal
difference Δφ [rad] in (-π, π]. With ``resample > 0`` the entry is also run ``resample`` times on
the event with what PFNano does not store (d0, dz, fromPV of soft charged candidates) drawn anew
(:func:`metbench.data.readers.cms.resample_unstored`): the spread this leaves says how much of a
disagreement the missing inputs can explain.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metbench.errors import MetbenchError

__all__ = ["StoredComparison", "compare_with_stored", "resampled_met"]


@dataclass(frozen=True)
class StoredComparison:
    """An entry's MET against a stored MET on the same events (the stored file's event order).

    Attributes
    ----------
    event_id
        Event numbers, ``(n,)``.
    stored_met, entry_met
        |MET| of the stored estimator and of the entry [GeV], ``(n,)``.
    dphi
        φ(entry) − φ(stored), wrapped into (−π, π] [rad], ``(n,)``.
    resampled
        |MET| of the entry with the unstored inputs redrawn, ``(n, resample)`` [GeV]; ``None``
        without resampling.
    """

    event_id: np.ndarray
    stored_met: np.ndarray
    entry_met: np.ndarray
    dphi: np.ndarray
    resampled: np.ndarray | None = None

    @property
    def ratio(self) -> np.ndarray:
        """|MET| of the entry over the stored |MET|."""
        return self.entry_met / self.stored_met

    def within(self, tolerance: float) -> int:
        """Events whose |MET| ratio is within ``tolerance`` of one."""
        return int(np.sum(np.abs(self.ratio - 1) < tolerance))

    def resampled_range(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per event (min, median, max) of the resampled |MET| ratio minus one."""
        if self.resampled is None:
            raise ValueError("no resampling was done")
        rows = self.resampled / self.stored_met[:, None] - 1
        low, mid, high = np.percentile(rows, [0, 50, 100], axis=1)
        return low, mid, high


def _wrapped(angle: np.ndarray) -> np.ndarray:
    return np.angle(np.exp(1j * angle))


def compare_with_stored(
    sub: Any,
    entry: str,
    params: dict[str, Any],
    dataset: Any,
    stored: str,
    resample: int = 0,
    seed: int = 1,
    trusted: bool = False,
) -> StoredComparison:
    """Predict ``entry`` on the test split of ``dataset`` (a :class:`~metbench.harness.DatasetInfo`
    of a converted real file) in its isolated child, and compare it with the stored estimator
    ``stored`` (columns ``stored_<name>_x/_y``), event by event. ``resample`` runs the entry in
    this process (:func:`resampled_met`; a submission from outside the repository only when
    ``trusted``)."""
    import awkward as ak

    from metbench.data.source import EventSource
    from metbench.estimators.predictions import read_predictions
    from metbench.harness import predict_entry

    if resample < 0:
        raise MetbenchError(f"--resample must be >= 0, got {resample}")
    columns = [f"stored_{stored}_x", f"stored_{stored}_y"]
    source = EventSource(dataset.folder, "test", verify=True)
    try:
        parts = list(source.iter_files(["event_id", *columns]))
        arr = ak.concatenate(parts) if len(parts) > 1 else parts[0]
        ref = np.stack([ak.to_numpy(arr[c]).astype(np.float64) for c in columns], 1)
    except Exception:
        raise MetbenchError(f"{dataset.folder}: the dataset stores no {stored}") from None
    event_id = ak.to_numpy(arr["event_id"]).astype(np.int64)
    spread = (
        resampled_met(sub, entry, params, dataset.folder, resample, seed, trusted)
        if resample
        else None
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.predictions.parquet"
        predict_entry(sub, entry, params, dataset, "test", out)
        predictions = read_predictions(out)
    order = np.argsort(predictions.event_id)
    met = predictions.met[order[np.searchsorted(predictions.event_id[order], event_id)]]
    return StoredComparison(
        event_id=event_id,
        stored_met=np.hypot(ref[:, 0], ref[:, 1]),
        entry_met=np.hypot(met[:, 0], met[:, 1]),
        dphi=_wrapped(np.arctan2(met[:, 1], met[:, 0]) - np.arctan2(ref[:, 1], ref[:, 0])),
        resampled=None if spread is None else np.stack([spread[int(e)] for e in event_id]),
    )


def resampled_met(
    sub: Any,
    entry: str,
    params: dict[str, Any],
    folder: Path,
    n: int,
    seed: int,
    trusted: bool = False,
) -> dict[int, np.ndarray]:
    """event_id -> the entry's |MET| [GeV] on ``n`` copies of the event with the unstored inputs
    redrawn (the estimator runs in this process: :func:`metbench.harness.build_estimator`)."""
    from metbench.data.readers.cms import resample_unstored
    from metbench.data.source import EventSource
    from metbench.harness import build_estimator

    estimator = build_estimator(sub, entry, params, trusted=trusted)
    rng = np.random.default_rng(seed)
    out: dict[int, np.ndarray] = {}
    source = EventSource(folder, "test", batch_size=sub.manifest.batch_size, verify=False)
    redrawn = 0
    for batch in source:
        seen = batch.for_estimator()
        draws = [resample_unstored(seen, rng) for _ in range(n)]
        redrawn += int(np.sum(draws[0].particles != seen.particles))
        met = np.stack([np.hypot(*estimator.predict(draw).T) for draw in draws], 1)
        out.update(zip(batch.event["event_id"].astype(int).tolist(), met, strict=True))
    if redrawn == 0:
        raise MetbenchError(
            f"{folder}: no charged candidate without track details (d0 = dz = -1), so there is "
            "nothing to redraw; --resample applies to datasets read from PFNano files"
        )
    return out

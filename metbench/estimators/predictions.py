"""Predictions on disk: one parquet row per event, validated on write and on read.

Columns: ``event_id`` (int64), ``met_x``, ``met_y`` [GeV] (float64) and, when the estimator gives
a covariance, ``cov_xx``, ``cov_xy``, ``cov_yy`` [GeV^2] (and ``cov_dof``, the degrees of freedom
of a Student t error model with that covariance, when it gives one), and when it reconstructs the neutrinos of
tt -> 2l2nu, ``nu0_px`` ... ``nu1_pz`` [GeV] (NaN for events it does not reconstruct), and for the
recoil task ``recoil_met_x``, ``recoil_met_y`` [GeV]: the MET estimated on the event without its
selected dimuon (:mod:`metbench.recoil`; NaN for events without one). The file's key-value metadata
(``metbench``) records the submission, its content hash, the dataset and its hash, and the split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from metbench.data.store import atomic_path
from metbench.errors import MetbenchError

__all__ = [
    "COVARIANCE_COLUMNS",
    "DOF_COLUMN",
    "NEUTRINO_COLUMNS",
    "PREDICTION_COLUMNS",
    "RECOIL_COLUMNS",
    "PredictionError",
    "Predictions",
    "check_covariance",
    "check_dof",
    "check_met",
    "check_neutrinos",
    "read_neutrinos",
    "read_prediction_metadata",
    "read_predictions",
    "read_recoil",
    "write_predictions",
]

PREDICTION_COLUMNS: Final[tuple[str, ...]] = ("event_id", "met_x", "met_y")
COVARIANCE_COLUMNS: Final[tuple[str, ...]] = ("cov_xx", "cov_xy", "cov_yy")
#: Degrees of freedom of a Student t error model (with the covariance of ``COVARIANCE_COLUMNS``).
DOF_COLUMN: Final = "cov_dof"
NEUTRINO_COLUMNS: Final[tuple[str, ...]] = tuple(
    f"nu{i}_{c}" for i in (0, 1) for c in ("px", "py", "pz")
)
RECOIL_COLUMNS: Final[tuple[str, ...]] = ("recoil_met_x", "recoil_met_y")
_META_KEY: Final = b"metbench"


class PredictionError(MetbenchError):
    """Predictions with the wrong shape, dtype or values."""


@dataclass(frozen=True)
class Predictions:
    """The MET predictions of one entry on one split, as read from a predictions file.

    Attributes
    ----------
    event_id
        Event numbers, ``(n,)`` int64, in the file's row order.
    met
        Estimated (MET_x, MET_y) [GeV], ``(n, 2)`` float64.
    covariance
        The estimator's 2x2 covariance of the MET [GeV^2], ``(n, 2, 2)``, or ``None``.
    metadata
        The file's ``metbench`` key-value metadata: the identity the harness wrote (entry,
        submission, content hash, dataset and its sha256, split, ...); empty for a file written
        by other means.
    dof
        ``(n,)`` degrees of freedom nu > 2 of a bivariate Student t error with that covariance
        (:func:`metbench.scoring.metrics.gaussian_equivalent_chi2`), or ``None``: Gaussian.
    """

    event_id: np.ndarray
    met: np.ndarray
    covariance: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    dof: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.event_id)

    @property
    def entry(self) -> str | None:
        """The entry's name the file records, if any."""
        name = self.metadata.get("entry")
        return name if isinstance(name, str) else None

    def write(self, path: Path) -> None:
        """Write the MET, covariance and metadata atomically (:func:`write_predictions`)."""
        write_predictions(
            path, self.event_id, self.met, self.covariance, self.metadata, dof=self.dof
        )


def check_met(pred: Any, n: int, where: str) -> np.ndarray:
    """Validate an estimator's output: ``(n, 2)``, real floating point, finite. Returns float64."""
    if not isinstance(pred, np.ndarray):
        raise PredictionError(
            f"{where}: predict returned {type(pred).__name__}; return a numpy array of shape ({n}, 2)"
        )
    if pred.shape != (n, 2):
        raise PredictionError(
            f"{where}: predict returned shape {pred.shape}; expected ({n}, 2) (MET px, py in GeV)"
        )
    if pred.dtype.kind != "f":
        raise PredictionError(
            f"{where}: predict returned dtype {pred.dtype}; expected float32 or float64"
        )
    bad = ~np.isfinite(pred)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise PredictionError(
            f"{where}: predict returned {int(bad.sum())} non-finite value(s) (NaN or inf) in "
            f"{len(rows)} event(s), first at row {rows[0]}"
        )
    return pred.astype(np.float64)


def check_covariance(cov: Any, n: int, where: str) -> np.ndarray:
    """Validate a covariance output: ``(n, 2, 2)``, finite, symmetric, positive definite."""
    if not isinstance(cov, np.ndarray) or cov.shape != (n, 2, 2) or cov.dtype.kind != "f":
        shape = getattr(cov, "shape", type(cov).__name__)
        raise PredictionError(
            f"{where}: predict_uncertainty returned {shape}; expected a float array ({n}, 2, 2) in GeV^2"
        )
    cov = cov.astype(np.float64)
    if not np.isfinite(cov).all():
        raise PredictionError(f"{where}: predict_uncertainty returned NaN or inf")
    if not np.allclose(cov[:, 0, 1], cov[:, 1, 0], rtol=1e-5, atol=1e-6):
        raise PredictionError(f"{where}: covariance matrices must be symmetric")
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
    if ((cov[:, 0, 0] <= 0) | (det <= 0)).any():
        raise PredictionError(f"{where}: covariance matrices must be positive definite")
    return cov


def check_dof(dof: Any, n: int, where: str) -> np.ndarray:
    """Validate a ``predict_dof`` output: ``(n,)`` floats, each above 2 (the covariance of a
    Student t exists for nu > 2) or ``inf`` (Gaussian); NaN is an error."""
    if not isinstance(dof, np.ndarray) or dof.shape != (n,) or dof.dtype.kind != "f":
        shape = getattr(dof, "shape", type(dof).__name__)
        raise PredictionError(
            f"{where}: predict_dof returned {shape}; expected a float array ({n},) of degrees of "
            "freedom above 2 (inf: Gaussian)"
        )
    dof = dof.astype(np.float64)
    bad = np.isnan(dof) | (dof <= 2.0)
    if bad.any():
        raise PredictionError(
            f"{where}: predict_dof returned {int(bad.sum())} value(s) that are NaN or not above 2, "
            f"first at row {int(np.flatnonzero(bad)[0])} (a Student t has a covariance for nu > 2)"
        )
    return dof


def check_neutrinos(nu: Any, n: int, where: str) -> np.ndarray:
    """Validate a ``predict_neutrinos`` output: ``(n, 2, 3)`` floats (px, py, pz of the top's
    and the antitop's neutrino) [GeV]; NaN marks an event not reconstructed, inf is an error."""
    shape = getattr(nu, "shape", None)
    if shape != (n, 2, 3) or np.asarray(nu).dtype.kind != "f":
        raise PredictionError(
            f"{where}: predict_neutrinos returned {shape}; expected a float array ({n}, 2, 3) in GeV"
        )
    nu = np.asarray(nu, dtype=np.float64)
    if np.isinf(nu).any():
        raise PredictionError(f"{where}: predict_neutrinos returned inf")
    return nu


def write_predictions(
    path: Path,
    event_id: np.ndarray,
    met: np.ndarray,
    covariance: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
    neutrinos: np.ndarray | None = None,
    recoil: np.ndarray | None = None,
    dof: np.ndarray | None = None,
) -> None:
    """Write predictions atomically (a partial file never carries the final name); ``dof``
    (the Student t degrees of freedom) only with a ``covariance``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        "event_id": pa.array(np.asarray(event_id, dtype=np.int64)),
        "met_x": pa.array(np.asarray(met[:, 0], dtype=np.float64)),
        "met_y": pa.array(np.asarray(met[:, 1], dtype=np.float64)),
    }
    if covariance is not None:
        columns["cov_xx"] = pa.array(covariance[:, 0, 0].astype(np.float64))
        columns["cov_xy"] = pa.array(covariance[:, 0, 1].astype(np.float64))
        columns["cov_yy"] = pa.array(covariance[:, 1, 1].astype(np.float64))
        if dof is not None:
            columns[DOF_COLUMN] = pa.array(np.asarray(dof, dtype=np.float64))
    if neutrinos is not None:
        for i, c in enumerate(NEUTRINO_COLUMNS):
            columns[c] = pa.array(neutrinos[:, i // 3, i % 3].astype(np.float64))
    if recoil is not None:
        for i, c in enumerate(RECOIL_COLUMNS):
            columns[c] = pa.array(np.asarray(recoil[:, i], dtype=np.float64))
    table = pa.table(columns).replace_schema_metadata(
        {_META_KEY: json.dumps(metadata or {}, sort_keys=True).encode()}
    )
    with atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _metadata(schema: Any) -> dict[str, Any]:
    try:
        return dict(json.loads((schema.metadata or {}).get(_META_KEY, b"{}")))
    except (json.JSONDecodeError, TypeError, ValueError):
        return {}


def read_prediction_metadata(path: Path) -> dict[str, Any] | None:
    """The ``metbench`` metadata of a predictions file from its footer alone (no data read);
    None if the file is missing or not parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return _metadata(pq.read_schema(path))
    except (OSError, pa.ArrowException):
        return None


def read_predictions(path: Path) -> Predictions:
    """Read and validate the MET of a predictions file (the neutrinos and the recoil columns:
    :func:`read_neutrinos`, :func:`read_recoil`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: no such predictions file")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise PredictionError(f"{path}: not a readable parquet file ({exc})") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in table.column_names]
    if missing:
        raise PredictionError(
            f"{path}: missing column(s) {missing}; predictions need {', '.join(PREDICTION_COLUMNS)}"
        )
    metadata = _metadata(table.schema)
    event_id = table["event_id"].to_numpy()
    if event_id.dtype.kind not in "iu":
        raise PredictionError(f"{path}: event_id must be integers, got {event_id.dtype}")
    met = np.stack([table[c].to_numpy(zero_copy_only=False) for c in ("met_x", "met_y")], 1)
    met = check_met(met, len(event_id), str(path))
    covariance = None
    if all(c in table.column_names for c in COVARIANCE_COLUMNS):
        xx, xy, yy = (table[c].to_numpy(zero_copy_only=False) for c in COVARIANCE_COLUMNS)
        covariance = check_covariance(
            np.stack([np.stack([xx, xy], -1), np.stack([xy, yy], -1)], 1), len(event_id), str(path)
        )
    dof = None
    if covariance is not None and DOF_COLUMN in table.column_names:
        dof = check_dof(table[DOF_COLUMN].to_numpy(zero_copy_only=False), len(event_id), str(path))
    return Predictions(event_id.astype(np.int64), met, covariance, metadata, dof)


def read_neutrinos(path: Path) -> np.ndarray | None:
    """The ``(n, 2, 3)`` neutrino momenta of a predictions file, in its row order, or None if it
    has none."""
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    if not all(c in names for c in NEUTRINO_COLUMNS):
        return None
    table = pq.read_table(path, columns=list(NEUTRINO_COLUMNS))
    flat = np.stack([table[c].to_numpy(zero_copy_only=False) for c in NEUTRINO_COLUMNS], 1)
    return check_neutrinos(flat.reshape(-1, 2, 3), len(flat), str(path))


def read_recoil(path: Path) -> np.ndarray | None:
    """The ``(n, 2)`` muon-removed MET estimates of a predictions file, in its row order (NaN for
    events without a selected dimuon), or None if it has none; inf is an error."""
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    if not all(c in names for c in RECOIL_COLUMNS):
        return None
    table = pq.read_table(path, columns=list(RECOIL_COLUMNS))
    out = np.stack([table[c].to_numpy(zero_copy_only=False) for c in RECOIL_COLUMNS], 1)
    out = np.asarray(out, dtype=np.float64)
    if np.isinf(out).any():
        raise PredictionError(f"{path}: recoil_met_x/y hold inf")
    return out

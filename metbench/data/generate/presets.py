"""Dataset presets: ``mini``, ``standard`` and ``pu200``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np

from metbench.data.generate.processes import PROCESSES
from metbench.errors import MetbenchError

__all__ = ["DEFAULT_PUPPI_TUNE", "PRESETS", "DatasetSpec", "get_preset"]

#: The PUPPI tune of a dataset whose manifest names none (every dataset before ``puppi_tune``).
DEFAULT_PUPPI_TUNE: Final = "run2"


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that defines a generated dataset (with the seed given at generation).

    Attributes
    ----------
    name
        Dataset name (the preset's).
    version
        Dataset version: bumped whenever generation changes what events look like.
    events_per_process
        Hard-scatter events per process.
    shard_size
        Events per shard (the unit of parallel work, seeding and resumption).
    mu
        Pileup distribution: ``{"kind": "uniform", "low": a, "high": b}`` or
        ``{"kind": "fixed", "value": m}``.
    pool_size, pool_shard_size
        Minimum-bias pool events, and per pool shard.
    sigma_z
        Luminous-region length (Gaussian sigma) [cm].
    split_fractions
        Train/val/test fractions.
    processes
        Process names.
    puppi_tune
        PUPPI parameters of the stored ``puppi_weight`` (a tune of
        :data:`metbench.physics.puppi.PUPPI_TUNES`): ``run2`` (CMSSW ``Puppi_cff.py``), or
        ``phase2`` (its ``phase2_common`` modifier) for the HL-LHC pileup of ``pu200``. Recorded in
        the manifest's ``settings`` when it is not ``run2``, so that the datasets generated before
        the field existed keep their manifest (and its hash) unchanged.
    """

    name: str
    version: str
    events_per_process: int
    shard_size: int
    mu: dict[str, Any]
    pool_size: int
    pool_shard_size: int
    sigma_z: float = 4.0
    split_fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.5, "val": 0.1, "test": 0.4}
    )
    processes: tuple[str, ...] = tuple(PROCESSES)
    puppi_tune: str = DEFAULT_PUPPI_TUNE

    def __post_init__(self) -> None:
        from metbench.physics.puppi import PUPPI_TUNES

        if self.puppi_tune not in PUPPI_TUNES:
            raise MetbenchError(
                f"unknown PUPPI tune {self.puppi_tune!r}; choose one of {', '.join(PUPPI_TUNES)}"
            )

    def sample_mu(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Mean pileup of ``n`` events."""
        kind = self.mu["kind"]
        if kind == "uniform":
            return rng.uniform(self.mu["low"], self.mu["high"], n)
        if kind == "fixed":
            return np.full(n, float(self.mu["value"]))
        raise MetbenchError(f"unknown pileup distribution {kind!r}")

    def shards(self) -> list[tuple[str, int, int]]:
        """(process, shard index, number of events) of every shard."""
        out = []
        for process in self.processes:
            n_shards = -(-self.events_per_process // self.shard_size)
            for k in range(n_shards):
                n = min(self.shard_size, self.events_per_process - k * self.shard_size)
                out.append((process, k, n))
        return out

    def pool_shards(self) -> list[tuple[int, int]]:
        """(pool shard index, number of events) of the pileup pool."""
        n_shards = -(-self.pool_size // self.pool_shard_size)
        return [
            (k, min(self.pool_shard_size, self.pool_size - k * self.pool_shard_size))
            for k in range(n_shards)
        ]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["processes"] = list(self.processes)
        if d["puppi_tune"] == DEFAULT_PUPPI_TUNE:
            del d["puppi_tune"]  # the manifests of mini and standard stay as they were
        return d

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> DatasetSpec:
        """The spec that :meth:`to_dict` wrote (a manifest's ``settings``)."""
        return cls(**{**settings, "processes": tuple(settings["processes"])})

    def scaled(self, events_per_process: int) -> DatasetSpec:
        """The same preset with fewer (or more) events per process (for quick checks); a
        :class:`~metbench.errors.MetbenchError` below 1."""
        from dataclasses import replace

        if events_per_process < 1:
            raise MetbenchError(f"--events-per-process must be >= 1, got {events_per_process}")

        return replace(
            self,
            events_per_process=events_per_process,
            shard_size=min(self.shard_size, events_per_process),
        )


PRESETS: Final[dict[str, DatasetSpec]] = {
    "mini": DatasetSpec(
        name="mini",
        version="1.0",
        events_per_process=340,
        shard_size=340,
        mu={"kind": "uniform", "low": 0.0, "high": 80.0},
        pool_size=2000,
        pool_shard_size=1000,
    ),
    "standard": DatasetSpec(
        name="standard",
        version="1.0",
        events_per_process=50_000,
        shard_size=2500,
        mu={"kind": "uniform", "low": 0.0, "high": 80.0},
        pool_size=50_000,
        pool_shard_size=5000,
    ),
    "pu200": DatasetSpec(
        name="pu200",
        version="1.1",  # 1.1: puppi_weight with the Phase-2 PUPPI tune
        events_per_process=1000,
        shard_size=250,
        mu={"kind": "fixed", "value": 200.0},
        pool_size=20_000,
        pool_shard_size=5000,
        split_fractions={"train": 0.0, "val": 0.0, "test": 1.0},
        puppi_tune="phase2",
    ),
}


def get_preset(name: str) -> DatasetSpec:
    """Look a preset up by name; a clear error lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise MetbenchError(
            f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}"
        ) from None

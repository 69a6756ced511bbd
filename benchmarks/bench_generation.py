"""Generation speed at two pileup levels, and reading a dataset."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from metbench.data.generate.presets import get_preset
from metbench.data.generate.run import generate_dataset
from metbench.data.source import EventSource
from metbench.speed import loading_versus_pyarrow

from .common import mini

N_EVENTS = 40  # tt -> 2l2nu events per run (one shard)


def _spec(mu: float):
    base = get_preset("mini").scaled(N_EVENTS)
    return replace(
        base,
        processes=("ttbar_2l2nu",),
        mu={"kind": "fixed", "value": mu},
        pool_size=400,
        pool_shard_size=400,
    )


class Generation:
    """Pythia tt + premixed pileup + detector + PUPPI for 40 events, pool included: divide by 40
    for the per-event cost."""

    params = [20.0, 80.0]
    param_names = ["mu"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, mu: float) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="metbench-asv-"))

    def teardown(self, mu: float) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_generate_40_ttbar_events(self, mu: float) -> None:
        generate_dataset(_spec(mu), self.tmp / "d", seed=1)

    def peakmem_generate_40_ttbar_events(self, mu: float) -> None:
        generate_dataset(_spec(mu), self.tmp / "p", seed=1)


class Loading:
    """Reading mini's test split into padded batches (checksums verified)."""

    def setup(self) -> None:
        mini()

    def time_read_test_split(self) -> None:
        for _ in EventSource(mini(), "test", batch_size=256):
            pass

    def peakmem_read_test_split(self) -> None:
        for _ in EventSource(mini(), "test", batch_size=256):
            pass

    def track_throughput_ratio_to_pyarrow(self) -> float:
        """The loader's events/s over a plain pyarrow read of the same files (``metbench bench
        loading``; the goal is at least 0.8)."""
        return float(loading_versus_pyarrow(mini(), "test", batch_size=1024, repeats=2)["ratio"])

    track_throughput_ratio_to_pyarrow.unit = "ratio"  # type: ignore[attr-defined]

"""asv benchmarks of the harness itself: scoring with bootstrap and PF throughput against a bare
NumPy sum. They call the same functions as ``metbench bench``."""

from __future__ import annotations

from dataclasses import replace

from .common import ROOT

# metbench is imported in each setup, not here: asv imports every benchmark module to discover the
# suite, and benchmarks/history.py runs it against older commits that lack newer modules


class Scoring:
    """Every figure and task (MET, fake MET, recoil), the calibrated variant, 200 shared bootstrap
    resamples, one million events (the issue's budget: 10 s on the project's 2-core machines)."""

    timeout = 300

    def setup(self) -> None:
        from metbench.scoring.score import score
        from metbench.speed import scoring_extras, scoring_inputs

        self.score = score
        self.met, self.truth = scoring_inputs(1_000_000)
        self.recoil, self.calibration = scoring_extras(self.met, self.truth)

    def time_score_1m_events_200_resamples(self) -> None:
        self.score(
            self.met, self.truth, n_boot=200, recoil=self.recoil, calibration=self.calibration
        )


class CandidateSum:
    """PF MET on a batch of the mini preset's test split, and the bare NumPy floor."""

    def setup(self) -> None:
        from metbench.data.cache import resolve_dataset
        from metbench.data.source import EventSource
        from metbench.estimators.loader import import_entry
        from metbench.speed import numpy_sum_met

        self.numpy_sum_met = numpy_sum_met
        batch = next(iter(EventSource(resolve_dataset("mini"), "test", batch_size=1024)))
        self.batch = replace(batch, truth={})
        self.pf = import_entry(ROOT / "submissions" / "pf", "pf:PfMet")()

    def time_pf_predict(self) -> None:
        self.pf.predict(self.batch)

    def time_numpy_sum(self) -> None:
        self.numpy_sum_met(self.batch)

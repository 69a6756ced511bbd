"""Each baseline's predict, each reference model's CPU inference at batch 1 and 1024, and the
baselines' headline physics figures on the fixed mini dataset (``track_``: a change that degrades
the resolution shows up like a slowdown)."""

from __future__ import annotations

import numpy as np

from metbench.data.source import EventSource
from metbench.estimators.submission import load_submission
from metbench.harness import build_estimator
from metbench.scoring.score import align_predictions, load_truth, score

from .common import ROOT, batch_of, mini, with_chains

BASELINES = ["pf", "chs", "track", "puppi", "softkiller", "atlas-wp", "oracle"]
REFERENCE = ["deepmet-keras", "metnet-torch", "metnetsig-torch", "perceiver-torch", "deelema-torch"]


def _estimator(name: str):
    """The submission's first entry, constructed as the harness constructs it."""
    sub = load_submission(ROOT / "submissions" / name)
    (entry, params), *_ = sub.entries()
    return build_estimator(sub, entry, params), sub


class BaselinePredict:
    """predict on 1024 events of mini (pileup 0-80)."""

    params = BASELINES
    param_names = ["baseline"]
    timeout = 300

    def setup(self, name: str) -> None:
        self.estimator, sub = _estimator(name)
        if sub.manifest.uses_truth:  # the oracle reads truth_is_pileup
            self.batch = next(iter(EventSource(mini(), "test", batch_size=1024)))
        else:
            self.batch = batch_of(1024)

    def time_predict_1024(self, name: str) -> None:
        self.estimator.predict(self.batch)


class ReferenceInference:
    """CPU inference of the trained reference models (committed weights)."""

    params = (REFERENCE, [1, 1024])
    param_names = ["model", "batch_size"]
    timeout = 600

    def setup(self, name: str, batch_size: int) -> None:
        self.estimator, sub = _estimator(name)
        self.batch = with_chains(batch_size) if sub.manifest.uses_truth else batch_of(batch_size)
        self.call = getattr(self.estimator, "predict_neutrinos", self.estimator.predict)
        self.call(self.batch)  # warm-up (graph building, lazy imports)

    def time_inference(self, name: str, batch_size: int) -> None:
        self.call(self.batch)

    def peakmem_inference(self, name: str, batch_size: int) -> None:
        self.call(self.batch)


class BaselinePhysics:
    """The headline figures of each baseline on mini's test split (no bootstrap): S, S_perp, the
    response over the bins of S and the fake-MET AUC (mini is too small for S in n_pu bins)."""

    params = (BASELINES, ["S", "S_perp", "response", "fake_auc"])
    param_names = ["baseline", "figure"]
    timeout = 600
    unit = "GeV or 1"

    def setup_cache(self) -> dict:
        out = {}
        truth = load_truth(mini(), "test")
        for name in BASELINES:
            estimator, sub = _estimator(name)
            mets, ids = [], []
            for batch in EventSource(mini(), "test", batch_size=512):
                visible = batch if sub.manifest.uses_truth else batch.for_estimator()
                mets.append(estimator.predict(visible))
                ids.append(batch.event["event_id"])
            index = align_predictions(np.concatenate(ids), truth, name)
            met = np.concatenate(mets)[index]
            scores = score(met, truth, n_boot=0)
            s = scores["tasks"]["met"]
            out[name] = {
                "S": s["headline"]["S"]["value"],
                "S_perp": s["headline"]["S_perp"]["value"],
                "response": s["overall"]["response"]["value"],
                "fake_auc": scores["tasks"]["fake"]["groups"]["all"]["auc"]["value"],
            }
        return out

    def track_figure(self, cache: dict, name: str, figure: str) -> float:
        value = cache[name][figure]
        return float("nan") if value is None else float(value)

"""``metbench compare``: an entry's MET against a MET stored in a real file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metbench.cli.common import (
    DatasetOpt,
    ParamOpt,
    TrustOpt,
    VariantOpt,
    app,
    console,
    load_entries,
    print_frame,
    resolve_dataset_with_progress,
)
from metbench.errors import MetbenchError

__all__ = ["compare_cmd"]


@app.command("compare")
def compare_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission folder")],
    stored: Annotated[
        str,
        typer.Option(help="Stored estimator to compare with (e.g. RawMET, DeepMETResolutionTune)"),
    ],
    dataset: DatasetOpt = None,
    variant: VariantOpt = None,
    param: ParamOpt = None,
    tolerance: Annotated[
        float, typer.Option(help="Relative |MET| agreement counted as a match")
    ] = 0.01,
    resample: Annotated[
        int,
        typer.Option(
            help="Also rerun the entry N times with what PFNano does not store (d0, dz, fromPV of "
            "soft charged candidates) drawn anew, and print the spread this leaves"
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of --resample")] = 1,
    trust: TrustOpt = False,
) -> None:
    """Per event, an entry's MET against a MET stored in a real file (|MET| ratio and delta phi):
    how well a reimplementation reproduces what the experiment's software computed."""
    import numpy as np
    import pandas as pd

    from metbench.compare import compare_with_stored
    from metbench.harness import dataset_info

    sub, entries = load_entries(submission, variant, param)
    if len(entries) > 1:
        raise MetbenchError(
            f"{submission} has variants ({', '.join(sub.manifest.variants)}); choose one with --variant"
        )
    entry, params = entries[0]
    if resample < 0:
        raise MetbenchError(f"--resample must be >= 0, got {resample}")
    if resample and not trust and sub.manifest.category == "submission":
        from metbench.harness import TRUST_HINT

        raise MetbenchError(f"--resample: {TRUST_HINT}")
    info = dataset_info(resolve_dataset_with_progress(dataset))
    c = compare_with_stored(sub, entry, params, info, stored, resample, seed, trusted=trust)
    frame = pd.DataFrame(
        {
            "event_id": c.event_id,
            f"{stored} [GeV]": np.round(c.stored_met, 2),
            f"{entry} [GeV]": np.round(c.entry_met, 2),
            "ratio - 1": np.round(c.ratio - 1, 4),
            "Δφ [rad]": np.round(c.dphi, 4),
        }
    )
    if c.resampled is not None:
        low, mid, high = c.resampled_range()
        frame["resampled min"] = np.round(low, 4)
        frame["median"] = np.round(mid, 4)
        frame["max"] = np.round(high, 4)
    print_frame(frame, f"{entry} against {stored} on {info.name}")
    console.print(
        f"{c.within(tolerance)} of {len(frame)} events within {tolerance:.1%} in |MET|; median "
        f"|ratio - 1| {np.median(np.abs(c.ratio - 1)):.2%}; max |Δφ| {np.max(np.abs(c.dphi)):.3f} rad"
    )
    if c.resampled is not None:
        wide = int(np.sum(high - low > tolerance))
        inside = int(np.sum((low <= 0) & (high >= 0)))
        console.print(
            f"with the unstored inputs drawn {resample} times: |MET| moves by more than "
            f"{tolerance:.1%} in {wide} of {len(frame)} events; the stored value lies inside the "
            f"resampled range in {inside} of {len(frame)}"
        )

"""``metbench new`` and ``list``: a new submission folder, and what is there."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from metbench.cli.common import (
    app,
    console,
    load_all,
    print_frame,
    say,
    show_tables,
)
from metbench.errors import MetbenchError

__all__ = ["list_cmd", "new_cmd"]


@app.command("new")
def new_cmd(
    name: Annotated[str, typer.Argument(help="The entry's name (e.g. my-met)")],
    framework: Annotated[str, typer.Option(help="numpy, torch, keras or onnx")] = "numpy",
    into: Annotated[Path, typer.Option(help="Where the folder goes")] = Path("submissions"),
) -> None:
    """Write a submission folder that runs as it is: manifest, class, README and a test."""
    from metbench.estimators.template import new_submission

    folder = new_submission(name, framework, into)
    say(
        f"wrote {folder}/ (metbench.toml, README.md, the class, a test); try: "
        f"metbench run {folder} --dataset mini"
    )


@app.command("list")
def list_cmd(
    results: Annotated[Path, typer.Option(help="Results folder")] = Path("results"),
    submissions: Annotated[Path, typer.Option(help="Submissions folder")] = Path("submissions"),
) -> None:
    """List the submissions and print the headline table of every result."""
    import pandas as pd

    from metbench.estimators.submission import MANIFEST_FILE, load_submission

    rows = []
    if submissions.is_dir():
        for folder in sorted(p.parent for p in submissions.glob(f"*/{MANIFEST_FILE}")):
            try:
                sub = load_submission(folder)
            except MetbenchError as exc:
                with contextlib.suppress(MetbenchError):  # valid, but its weights are to come
                    untrained = load_submission(folder, require_weights=False)
                    if untrained.manifest.trainable:
                        m = untrained.manifest
                        rows.append(
                            {
                                "submission": m.name,
                                "category": f"{m.category} (untrained)",
                                "framework": m.framework,
                                "variants": ", ".join(m.variants) or "—",
                                "description": f"{m.description}; no weights yet: metbench "
                                f"train {folder}, then metbench adopt the training",
                            }
                        )
                        continue
                rows.append(
                    {
                        "submission": folder.name,
                        "category": "INVALID",
                        "framework": "",
                        "variants": "",
                        "description": str(exc),
                    }
                )
                continue
            m = sub.manifest
            rows.append(
                {
                    "submission": m.name,
                    "category": m.category,
                    "framework": m.framework,
                    "variants": ", ".join(m.variants) or "—",
                    "description": m.description,
                }
            )
    print_frame(pd.DataFrame(rows), f"submissions in {submissions}")
    if results.is_dir():
        found = load_all([results])
        if found:
            show_tables(found, "met", None)
            return
    console.print(f"no results in {results} yet: try `metbench run submissions/puppi`")

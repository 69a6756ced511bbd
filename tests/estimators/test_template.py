"""``metbench new``: a folder that runs as it is for each framework, and one-line refusals."""

from __future__ import annotations

import runpy

import pytest

from metbench.estimators.submission import load_submission
from metbench.estimators.template import new_submission
from tests.commands import assert_error, cli, fast


def _run_its_test(folder, module):
    """The folder's own test, run here (it loads the entry as the harness does)."""
    namespace = runpy.run_path(str(folder / f"test_{module}.py"))
    namespace["test_predicts_finite_met_per_event"]()


def test_numpy_folder_runs_as_it_is(tiny_dataset, tmp_path):
    into = tmp_path / "submissions"
    r = cli("new", "my-met", "--framework", "numpy", "--into", into)
    assert r.returncode == 0, r.stderr
    folder = into / "my-met"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "metbench.toml", "my_met.py", "test_my_met.py",
    ]  # fmt: skip
    assert load_submission(folder).manifest.entry == "my_met:MyMet"
    _run_its_test(folder, "my_met")
    r = cli("run", folder, "--dataset", tiny_dataset, *fast(tmp_path / "results"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "results").is_dir()


@pytest.mark.parametrize(
    ("framework", "module"), [("torch", "torch"), ("keras", "keras"), ("onnx", "onnxruntime")]
)
def test_ml_templates_load_and_predict(tmp_path, framework, module):
    pytest.importorskip(module)
    if framework == "onnx":
        pytest.importorskip("onnx")
    folder = new_submission(f"my-{framework}", framework, tmp_path)
    sub = load_submission(folder)
    assert sub.manifest.framework == framework
    _run_its_test(folder, f"my_{framework}")


def test_refusals_are_one_line(tmp_path):
    into = tmp_path / "subs"
    assert cli("new", "taken", "--into", into).returncode == 0
    assert_error(cli("new", "taken", "--into", into), "exists already")
    assert_error(cli("new", "9lives", "--into", into), "bad name")
    assert_error(cli("new", "Bad", "--into", into), "bad name")
    assert_error(cli("new", "class", "--into", into), "bad name")
    assert_error(cli("new", "ok", "--framework", "jax", "--into", into), "jax")
    assert_error(cli("new", "pf", "--into", into), "belongs to the repository")

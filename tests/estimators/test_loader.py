"""Submission folders are imported as packages of their own, under unique names: two folders with a
``model.py`` each keep their own classes in one process, and nothing goes on ``sys.path``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from metbench.estimators.loader import PACKAGE_PREFIX, import_entry, package_name


def _folder(root: Path, name: str, value: float, relative: bool = False) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    if relative:
        (folder / "net.py").write_text(f"VALUE = {value}\n")
        body = "from .net import VALUE\n"
    else:
        body = f"VALUE = {value}\n"
    (folder / "model.py").write_text(
        "import numpy as np\n"
        f"{body}"
        f"class Estimator{name.title()}:\n"
        "    def predict(self, batch):\n"
        "        return np.full((len(batch), 2), VALUE)\n"
    )
    return folder


def test_two_model_modules_in_one_process(tmp_path):
    a = _folder(tmp_path, "a", 1.0)
    b = _folder(tmp_path / "other", "b", 2.0, relative=True)
    before = list(sys.path)
    cls_a = import_entry(a, "model:EstimatorA")
    cls_b = import_entry(b, "model:EstimatorB")
    assert sys.path == before  # nothing put on sys.path
    assert cls_a.__module__ != cls_b.__module__
    assert cls_a.__module__.startswith(PACKAGE_PREFIX + "a_")
    assert cls_b.__module__ == f"{package_name(b)}.model"
    assert "model" not in sys.modules or sys.modules["model"].__file__ not in {
        str(a / "model.py"),
        str(b / "model.py"),
    }
    np.testing.assert_array_equal(cls_a().predict([0, 0, 0]), np.full((3, 2), 1.0))
    np.testing.assert_array_equal(cls_b().predict([0]), np.full((1, 2), 2.0))  # relative import
    assert import_entry(a, "model:EstimatorA") is cls_a  # imported once


def test_same_folder_name_elsewhere_is_another_package(tmp_path):
    one = _folder(tmp_path / "x", "same", 1.0)
    two = _folder(tmp_path / "y", "same", 3.0)
    assert package_name(one) != package_name(two)
    assert import_entry(one, "model:EstimatorSame")().predict([0])[0, 0] == 1.0
    assert import_entry(two, "model:EstimatorSame")().predict([0])[0, 0] == 3.0


def test_names_are_sanitised(tmp_path):
    folder = tmp_path / "my-entry.v2"
    folder.mkdir()
    name = package_name(folder)
    assert name.startswith(f"{PACKAGE_PREFIX}my_entry_v2_") and name.isidentifier()


def test_absolute_import_of_a_sibling_is_not_supported(tmp_path):
    """The folder is not on sys.path: ``import net`` of a sibling fails; ``from .net`` works."""
    folder = tmp_path / "abs"
    folder.mkdir()
    (folder / "netabsolute_sibling.py").write_text("VALUE = 1\n")
    (folder / "model.py").write_text("import netabsolute_sibling\nclass E:\n    pass\n")
    with pytest.raises(ModuleNotFoundError, match="netabsolute_sibling"):
        import_entry(folder, "model:E")

"""Checksums, truncation, manifests and the precision of stored floats."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from metbench.data.source import EventSource
from metbench.data.store import load_manifest, round_mantissa
from metbench.errors import DatasetError


@pytest.fixture
def dataset_copy(mini_dataset, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(mini_dataset, out)
    return out


def _first_event_file(folder, split="test"):
    m = load_manifest(folder)
    return next(p for p, e in m["files"].items() if e["kind"] == "events" and e["split"] == split)


def test_tampered_file_is_refused(dataset_copy):
    relpath = _first_event_file(dataset_copy)
    path = dataset_copy / relpath
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"sha256 .* does not match the manifest"):
        list(EventSource(dataset_copy, "test"))


def test_truncated_file_is_refused(dataset_copy):
    relpath = _first_event_file(dataset_copy)
    path = dataset_copy / relpath
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="truncated"):
        list(EventSource(dataset_copy, "test"))
    # without checksum verification the reader still fails with one clear error
    with pytest.raises(DatasetError, match=r"unreadable parquet|cannot be read"):
        list(EventSource(dataset_copy, "test", verify=False))


def test_missing_file_and_broken_manifest_are_refused(dataset_copy, tmp_path):
    relpath = _first_event_file(dataset_copy)
    (dataset_copy / relpath).unlink()
    with pytest.raises(DatasetError, match="missing"):
        list(EventSource(dataset_copy, "test"))
    (dataset_copy / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        EventSource(dataset_copy)
    (dataset_copy / "manifest.json").write_text(
        json.dumps({"format": "metbench-dataset", "format_version": 99})
    )
    with pytest.raises(DatasetError, match="format version 99"):
        EventSource(dataset_copy)
    (dataset_copy / "manifest.json").unlink()
    with pytest.raises(DatasetError, match=r"no manifest\.json"):
        EventSource(dataset_copy)
    with pytest.raises(DatasetError, match="no such dataset folder"):
        EventSource(tmp_path / "nowhere")


@given(
    arrays(np.float32, 64, elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False)),
    st.integers(4, 22),
)
def test_round_mantissa_error_is_bounded(values, bits):
    rounded = round_mantissa(values, bits)
    err = np.abs(rounded.astype(np.float64) - values.astype(np.float64))
    assert np.all(err <= np.abs(values.astype(np.float64)) * 2.0 ** -(bits + 1) * (1 + 1e-6))
    assert np.all(np.sign(rounded) == np.sign(values))
    # idempotent: already-rounded values stay put
    np.testing.assert_array_equal(round_mantissa(rounded, bits), rounded)

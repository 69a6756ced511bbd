"""Generation that survives what happens to it: killed runs leave no workers, Ctrl-C resumes,
damaged datasets are repaired to the same bytes, real files' datasets are described (issue #15)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from metbench.data.generate.run import generate_dataset
from metbench.data.store import sha256_file
from metbench.errors import MetbenchError
from tests.commands import popen_cli

#: A generation that runs long enough to be interrupted (pool shards of the mini preset).
GENERATE = ["data", "generate", "--preset", "mini", "--events-per-process", "40", "--workers", "2"]


def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` but the timing (hidden files included)."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "timing.json"
    }


def _start(out: Path) -> subprocess.Popen[str]:
    """``metbench data generate`` in a session of its own, as a terminal's foreground job."""
    return popen_cli(*GENERATE, "--out", out, new_session=True)


def _started_workers(proc: subprocess.Popen[str], timeout: float = 180.0) -> list[psutil.Process]:
    """The two pool workers of ``proc``, once each has set itself up (its own process group)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        workers = [
            p for p in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(p.cmdline())
        ]
        try:
            if len(workers) == 2 and all(os.getpgid(p.pid) == p.pid for p in workers):
                return workers
        except ProcessLookupError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no two set-up workers within {timeout} s")


def _reap(proc: subprocess.Popen[str], workers: list[psutil.Process]) -> list[psutil.Process]:
    """Wait a few seconds for ``workers`` to end; kill and return those still alive."""
    _, alive = psutil.wait_procs(workers, timeout=10)
    for p in alive:
        p.kill()
    if proc.poll() is None:
        proc.kill()
    return alive


def test_sigkill_of_generate_leaves_no_worker(tmp_path):
    proc = _start(tmp_path / "d")
    workers = []
    try:
        workers = _started_workers(proc)
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        alive = _reap(proc, workers)
    assert not alive, f"workers outlived a SIGKILLed run: {[p.pid for p in alive]}"


def test_ctrl_c_during_generate_exits_130_with_one_line_and_stops_the_workers(tmp_path):
    proc = _start(tmp_path / "d")
    workers = []
    try:
        workers = _started_workers(proc)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        out, err = proc.communicate(timeout=60)
    finally:
        alive = _reap(proc, workers)
    assert proc.returncode == 130, (out, err)
    assert "interrupted; the same command resumes" in err and "Traceback" not in err, err
    assert not alive


def test_damaged_and_missing_files_are_regenerated_to_the_same_bytes(
    tiny_spec, tiny_dataset, tmp_path
):
    folder = tmp_path / "d"
    shutil.copytree(tiny_dataset, folder)
    before = _digests(folder)
    manifest_bytes = (folder / "manifest.json").read_bytes()
    events = sorted((folder / "events" / "test").glob("*.parquet"))[0]
    truth = sorted((folder / "truth").rglob("*.parquet"))[-1]
    pool = sorted((folder / "pileup_pool").glob("*.parquet"))[0]
    with events.open("r+b") as f:  # truncated
        f.truncate(events.stat().st_size // 2)
    data = bytearray(truth.read_bytes())  # modified, same size
    data[len(data) // 2] ^= 0xFF
    truth.write_bytes(bytes(data))
    pool.unlink()  # missing
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = folder / "events" / "val" / f".x_0000.parquet.tmp{dead}"
    stale.write_bytes(b"half a file")
    damaged = {p.relative_to(folder).as_posix() for p in (events, truth, pool)}

    messages: list[str] = []
    progress: list[tuple[str, int, int]] = []
    manifest = generate_dataset(
        tiny_spec, folder, seed=3, on_progress=lambda *a: progress.append(a),
        on_message=messages.append,
    )  # fmt: skip
    assert (folder / "manifest.json").read_bytes() == manifest_bytes
    assert manifest["seed"] == 3
    assert not stale.exists() and not (folder / ".progress").exists()
    assert _digests(folder) == before
    repaired = next(m for m in messages if "repaired" in m)
    assert all(relpath in repaired for relpath in damaged), messages
    assert any("temporary file" in m for m in messages), messages
    # only the shards of the damaged files ran again: one pool shard, two event shards at most
    assert max(t for s, _, t in progress if s == "pool") == 1
    assert max(t for s, _, t in progress if s == "events") <= 2

    messages.clear()
    progress.clear()
    generate_dataset(tiny_spec, folder, seed=3, on_progress=lambda *a: progress.append(a),
                     on_message=messages.append)  # fmt: skip
    assert not messages and {s for s, _, _ in progress} == {"verify"}  # intact: checked only


def test_a_shard_that_regenerates_to_other_bytes_is_one_line(tiny_spec, tiny_dataset, tmp_path):
    """If a regenerated file still differs from the manifest (other library versions), the run
    says so instead of writing a manifest that lies."""
    import json

    folder = tmp_path / "d"
    shutil.copytree(tiny_dataset, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    relpath = next(r for r, e in sorted(manifest["files"].items()) if e["kind"] == "pileup_pool")
    manifest["files"][relpath]["sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MetbenchError, match="does not match the manifest") as info:
        generate_dataset(tiny_spec, folder, seed=3)
    assert "\n" not in str(info.value) and relpath in str(info.value)


@pytest.mark.slow  # the whole (tiny) dataset is generated again
def test_an_unreadable_manifest_is_taken_for_an_interrupted_generation(
    tiny_spec, tiny_dataset, tmp_path
):
    folder = tmp_path / "d"
    shutil.copytree(tiny_dataset, folder)
    before = _digests(folder)
    manifest = folder / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:100])  # half-written
    messages: list[str] = []
    generate_dataset(tiny_spec, folder, seed=3, on_message=messages.append)
    assert any("not valid JSON" in m and "again in place" in m for m in messages), messages
    assert _digests(folder) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"files": ', "not valid JSON and"),  # no dataset sub-folders: not taken for one
        ('{"name": "something else"}', "not a metbench dataset manifest"),
    ],
)
def test_a_foreign_or_broken_manifest_without_a_dataset_is_one_line(tmp_path, text, message):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "manifest.json").write_text(text)
    r = subprocess.run(
        [sys.executable, "-m", "metbench.cli", *GENERATE, "--out", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]  # nothing written


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pfnano.root", ("read from pfnano.root", "cms-pfnano", "PF candidates", "RawMET")),
        ("nano_dy.root", ("read from nano_dy.root", "not stored in the file", "n_pu")),
    ],
)
def test_info_describes_a_dataset_read_from_a_real_file(shared_data, tmp_path, name, expected):
    env = {**os.environ, "METBENCH_DATA": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "metbench.cli", "data", "info", str(shared_data / name)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    for text in (*expected, "test", "stored MET", "disk per 1k events"):
        assert text in r.stdout, (text, r.stdout)
    (folder,) = (tmp_path / "files").iterdir()  # converted once, then described as a folder
    r = subprocess.run(
        [sys.executable, "-m", "metbench.cli", "data", "info", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0 and expected[0] in r.stdout, r.stderr

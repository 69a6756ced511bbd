"""Generation on a Dask cluster (a LocalCluster of 2 worker processes on loopback): bit-identical
to a local generation, and a worker killed mid-run costs no shard and duplicates none."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from metbench.data.generate.run import generate_dataset

distributed = pytest.importorskip("distributed")


def checksums(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    return {k: v["sha256"] for k, v in manifest["files"].items()}, manifest


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=40,
    ) as c:  # fmt: skip
        yield c


@pytest.fixture(scope="module")
def local(tiny_spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "d"
    generate_dataset(tiny_spec, out, seed=5, workers=1)
    return checksums(out)


def test_generation_on_dask_is_bit_identical(tiny_spec, tmp_path, cluster, local):
    out = tmp_path / "d"
    generate_dataset(tiny_spec, out, seed=5, scheduler=cluster.scheduler_address)
    files, manifest = checksums(out)
    assert files == local[0]
    assert manifest["processes"] == local[1]["processes"]


def test_a_killed_worker_loses_and_duplicates_nothing(tiny_spec, tmp_path, cluster, local):
    out = tmp_path / "d"
    client = distributed.Client(cluster.scheduler_address)
    pids = list(client.run(os.getpid).values())
    client.close()
    killed = []

    def kill_once_shards_are_running():
        progress = out / ".progress"  # the generator records each finished shard here
        deadline = time.time() + 120
        while time.time() < deadline:
            done = list(progress.glob("*.json")) if progress.is_dir() else []
            if len([p for p in done if p.name != "identity.json"]) >= 1:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_once_shards_are_running)
    killer.start()
    generate_dataset(tiny_spec, out, seed=5, scheduler=cluster.scheduler_address)
    killer.join()
    assert killed, "no worker was killed: the generation finished before a shard was recorded"
    files, manifest = checksums(out)
    assert files == local[0]  # nothing lost, nothing extra, same bytes
    n_events = sum(sum(p["events"].values()) for p in manifest["processes"].values())
    assert n_events == sum(sum(p["events"].values()) for p in local[1]["processes"].values())
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert on_disk == sorted(files)  # no stray duplicate or partial file


def test_run_on_dask_predicts_the_same_as_locally(tiny_dataset, tmp_path, cluster):
    """metbench run --scheduler: every file a task on the cluster, the same predictions and
    scores as the local child process."""
    import pyarrow.parquet as pq

    from tests.commands import cli

    local, remote = tmp_path / "local", tmp_path / "remote"
    common = ["--dataset", tiny_dataset, "--no-throughput", "--n-boot", "0"]
    r = cli("run", "submissions/puppi", *common, "--results", local)
    assert r.returncode == 0, r.stderr
    r = cli(
        "run",
        "submissions/puppi",
        *common,
        "--results",
        remote,
        "--scheduler",
        cluster.scheduler_address,
    )
    assert r.returncode == 0, r.stderr
    a = pq.read_table(next(local.rglob("puppi.predictions.parquet")))
    b = pq.read_table(next(remote.rglob("puppi.predictions.parquet")))
    assert a.schema.equals(b.schema, check_metadata=False)
    assert a.to_pandas().equals(b.to_pandas())  # NaN (no dimuon) equal to NaN
    sa = json.loads(next(local.rglob("puppi.json")).read_text())["scores"]
    sb = json.loads(next(remote.rglob("puppi.json")).read_text())["scores"]
    assert sa == sb


def test_a_failing_submission_on_dask_is_one_line(tiny_dataset, tmp_path, cluster):
    from tests.cli.test_harness import write_submission
    from tests.commands import cli

    folder = write_submission(
        tmp_path / "subs", "broken",
        """
        class Estimator:
            def predict(self, batch):
                raise ValueError("no MET today")
        """,
    )  # fmt: skip
    r = cli(
        "run", folder, "--dataset", tiny_dataset, "--no-throughput", "--n-boot", "0",
        "--results", tmp_path / "r", "--scheduler", cluster.scheduler_address,
    )  # fmt: skip
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no MET today" in lines[0] and "Traceback" not in r.stderr

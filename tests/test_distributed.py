"""Scale-out on a real Dask cluster, as a user runs one: ``dask scheduler`` and ``dask worker``
started as processes of their own, in another folder than the client's.

Relative paths given to the client are the client's (every path a task gets is absolute), the
results are those of a local run, and a worker that does not see the client's folders stops the
run before any task with one line naming it, the folder and what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from metbench.data.generate.presets import get_preset
from metbench.data.generate.run import generate_dataset
from metbench.distributed import PROBE_PREFIX, _probe_on_worker, check_workers_see
from metbench.errors import MetbenchError
from tests.commands import assert_error, assert_one_line_error, cli

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
PF = ROOT / "submissions" / "pf"
DASK = str(Path(sys.executable).with_name("dask"))
EVENTS_PER_PROCESS = 12  # --events-per-process of the generation
FAST = ("--no-throughput", "--n-boot", "0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A scheduler and its workers, each a process of its own (its own session, killed with its
    group), logging into ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, command: list[str], cwd: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.processes.append(proc)

    def start_scheduler(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self._start(
            "scheduler",
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            self.folder / "scheduler",
        )

    def start_worker(self, name: str, wrapper: list[str] | None = None) -> None:
        command = [
            DASK, "worker", self.address, "--host", "127.0.0.1", "--nworkers", "1",
            "--nthreads", "1", "--no-dashboard", "--memory-limit", "0",
        ]  # fmt: skip
        self._start(name, [*(wrapper or []), *command], self.folder / name)

    def wait_for_workers(self, n: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:  # the scheduler may not listen yet
            try:
                client = distributed.Client(self.address, timeout=5)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no scheduler at {self.address}:\n{self.logs()}") from None
                time.sleep(0.5)
        try:
            client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            raise RuntimeError(f"fewer than {n} workers came up:\n{self.logs()}") from None
        finally:
            client.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.folder.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and two workers, started in their own folder."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start_scheduler()
        c.start_worker("worker-a")
        c.start_worker("worker-b")
        c.wait_for_workers(2)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the user runs metbench from (neither the test's nor the workers')."""
    return tmp_path_factory.mktemp("client")


@pytest.fixture(scope="module")
def generated(cluster: Cluster, client_dir: Path) -> Path:
    """``metbench data generate --out gen/mini --scheduler``, run from ``client_dir``."""
    r = cli(
        "data", "generate", "--preset", "mini", "--events-per-process", EVENTS_PER_PROCESS,
        "--out", "gen/mini", "--scheduler", cluster.address, cwd=client_dir,
    )  # fmt: skip
    assert r.returncode == 0, f"{r.stderr}\n{cluster.logs()}"
    return client_dir / "gen" / "mini"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same dataset generated locally, on one process."""
    out = tmp_path_factory.mktemp("local") / "mini"
    generate_dataset(get_preset("mini").scaled(EVENTS_PER_PROCESS), out, seed=1, workers=1)
    return out


@pytest.mark.slow
def test_generation_lands_at_the_clients_relative_path(
    generated: Path, cluster: Cluster, local: Path
) -> None:
    """Bit-identical to the local generation (the manifest holds every file's sha256)."""
    assert (generated / "manifest.json").is_file()
    assert not list(cluster.folder.rglob("gen")), "shards went to a worker's folder"
    assert (generated / "manifest.json").read_bytes() == (local / "manifest.json").read_bytes()
    manifest = json.loads((generated / "manifest.json").read_text())
    on_disk = sorted(
        p.relative_to(generated).as_posix()
        for p in generated.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "timing.json")
    )
    assert on_disk == sorted(manifest["files"])  # no probe file, no stray part left behind


@pytest.mark.slow
def test_run_on_the_cluster_scores_as_a_local_run(
    generated: Path, cluster: Cluster, client_dir: Path
) -> None:
    dataset = generated.relative_to(client_dir)
    local = cli("run", PF, "--dataset", dataset, "--results", "local", *FAST, cwd=client_dir)
    assert local.returncode == 0, local.stderr
    remote = cli(
        "run", PF, "--dataset", dataset, "--results", "remote", *FAST,
        "--scheduler", cluster.address, cwd=client_dir,
    )  # fmt: skip
    assert remote.returncode == 0, f"{remote.stderr}\n{cluster.logs()}"
    results = [
        json.loads(next((client_dir / folder).rglob("pf.json")).read_text())
        for folder in ("local", "remote")
    ]
    assert results[0]["scores"] == results[1]["scores"]
    assert results[1]["isolation"] == results[0]["isolation"]  # sandboxed on the workers too
    a, b = (
        pq.read_table(next((client_dir / folder).rglob("pf.predictions.parquet")))
        for folder in ("local", "remote")
    )
    assert a.schema.equals(b.schema, check_metadata=False)
    assert a.to_pandas().equals(b.to_pandas())  # the same predictions (NaN recoil equal to NaN)
    assert not list(cluster.folder.rglob("remote")), "parts went to a worker's folder"
    assert not [p for p in client_dir.rglob(f"{PROBE_PREFIX}*")], "a probe file was left behind"
    assert not list((client_dir / "remote").rglob("*.parts")), "the parts were not merged"


@pytest.mark.slow
def test_a_killed_worker_loses_and_duplicates_nothing(
    cluster: Cluster, local: Path, tmp_path: Path
) -> None:
    """A worker SIGKILLed once a shard is done (its nanny starts another): every shard is still
    there once, with the local generation's bytes."""
    out = tmp_path / "mini"
    with distributed.Client(cluster.address) as client:
        pids = list(client.run(os.getpid).values())
    killed: list[int] = []

    def kill_once_a_shard_is_done() -> None:
        progress = out / ".progress"  # the generator records each finished shard here
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = list(progress.glob("*.json")) if progress.is_dir() else []
            if [p for p in done if p.name != "identity.json"]:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_once_a_shard_is_done)
    killer.start()
    spec = get_preset("mini").scaled(EVENTS_PER_PROCESS)
    generate_dataset(spec, out, seed=1, scheduler=cluster.address)
    killer.join()
    assert killed, "no worker was killed: the generation finished before a shard was recorded"
    assert (out / "manifest.json").read_bytes() == (local / "manifest.json").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert on_disk == sorted(manifest["files"])  # no stray duplicate or partial file
    cluster.wait_for_workers(2)  # the nanny's new worker, for the tests after this one


@pytest.mark.slow
def test_a_failing_submission_on_the_cluster_is_one_line(
    generated: Path, cluster: Cluster, client_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model.py").write_text(
        "class Estimator:\n"
        "    def predict(self, batch):\n"
        "        raise ValueError('no MET today')\n"
    )
    (folder / "metbench.toml").write_text(
        'name = "broken"\nentry = "model:Estimator"\nframework = "numpy"\n'
        'category = "submission"\ndescription = "fails"\npaper = "none"\nauthors = ["test"]\n'
        "trainable = false\nbatch_size = 64\n"
    )
    r = cli(
        "run", folder, "--dataset", generated.relative_to(client_dir), "--results", "broken",
        *FAST, "--scheduler", cluster.address, cwd=client_dir,
    )  # fmt: skip
    assert_one_line_error(r, "no MET today")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (bwrap)")
def test_a_worker_that_does_not_see_the_folders_stops_the_run(
    generated: Path, client_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A worker whose view of the file system hides the client's folder (a tmpfs over it)."""
    blind = Cluster(tmp_path_factory.mktemp("blind"))
    hide = ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    hide += ["--tmpfs", str(client_dir)]  # the client's folder is empty for this worker
    try:
        blind.start_scheduler()
        blind.start_worker("worker-blind", wrapper=hide)
        blind.wait_for_workers(1)
        dataset = generated.relative_to(client_dir)
        r = cli(
            "run", PF, "--dataset", dataset, "--results", "blind", *FAST,
            "--scheduler", blind.address, cwd=client_dir,
        )  # fmt: skip
        extract = client_dir / "blind"  # the input extract, in the resume state of the results
        assert_error(
            r, "Dask worker tcp://127.0.0.1:", f"input extract folder {extract}/",
            "workers must share the filesystem", f"where {extract}/",
        )  # fmt: skip
        r = cli(
            "data", "generate", "--preset", "mini", "--events-per-process", EVENTS_PER_PROCESS,
            "--out", "gen/other", "--scheduler", blind.address, cwd=client_dir,
        )  # fmt: skip
        assert_error(r, "Dask worker tcp://127.0.0.1:", str(client_dir / "gen" / "other"))
        assert not [p for p in client_dir.rglob(f"{PROBE_PREFIX}*")], "a probe file was left"
    finally:
        blind.stop()


def test_the_folder_check_passes_and_leaves_nothing(tmp_path: Path) -> None:
    """In-process workers see what the client sees; no probe file is left anywhere."""
    data, results, sub = tmp_path / "data", tmp_path / "results", tmp_path / "sub"
    for folder in (data, results, sub):
        folder.mkdir()
    (sub / "metbench.toml").write_text("x")
    with (
        distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as c,
        distributed.Client(c) as client,
    ):
        check_workers_see(client, {"dataset": data}, {"results": results}, {"submission": sub})
        with pytest.raises(MetbenchError, match=r"the dataset folder .* is missing"):
            check_workers_see(client, listed={"dataset": tmp_path / "absent"})
    left = sorted(p.name for p in tmp_path.rglob("*"))
    assert left == ["data", "metbench.toml", "results", "sub"]  # no probe file left


def test_a_worker_with_another_view_reports_the_folders_it_does_not_see(tmp_path: Path) -> None:
    seen, other, listed = tmp_path / "seen", tmp_path / "other", tmp_path / "listed"
    for folder in (seen, other, listed):
        folder.mkdir()
    (seen / ".metbench-probe-t").write_text("token")
    (other / ".metbench-probe-t").write_text("another folder at the same path")
    (listed / "a.py").write_text("print()")
    answer = _probe_on_worker(
        [
            (str(seen), "probe", (".metbench-probe-t", "token")),
            (str(other), "probe", (".metbench-probe-t", "token")),
            (str(listed), "listing", [("a.py", 7)]),
            (str(tmp_path / "absent"), "listing", [("a.py", 7)]),
        ],
        [str(seen), str(other)],
        "tag",
    )
    assert answer["unseen"] == [str(other), str(tmp_path / "absent")]
    assert list(answer["wrote"]) == [str(seen)]  # not in a folder it does not see
    name, token = answer["wrote"][str(seen)]
    assert name.startswith(PROBE_PREFIX) and (seen / name).read_text() == token

"""The sandbox of a submission's child process: what it sees, what it may write, what it may reach.

A submission is a stranger's code (``../shared/DESIGN.md``, "Trust"). Its child process runs

* with **bubblewrap** (``bwrap``) when it works here: new user, mount, PID, IPC, UTS, cgroup and
  network namespaces (no network at all), a new session (no terminal), killed with its parent,
  every capability dropped, an empty environment but for an allow-list, and a root file system
  that holds only: the system's programs and libraries (``/usr``, ``/bin``, ``/lib*``, the
  dynamic linker's cache and the time zone), the Python installation, environment and
  site-packages (read-only; never the current directory or a ``PYTHONPATH`` folder, never a
  source tree: of an editable metbench only its package folder), the submission folder
  (read-only, each of its ``__pycache__`` folders hidden under an empty one: only its sources
  run), the dataset's ``manifest.json`` and ``events/`` (read-only; never ``truth/``), the
  parent-made truth extract of what the entry declared (if any, read-only) and one private
  folder, the only writable place on disk: ``out/`` (the parts), ``tmp/`` (also ``/tmp``) and
  ``home/`` (``$HOME``); the root and ``/dev`` are read-only, ``/dev/shm`` a size-limited tmpfs.
  ``/etc`` is not there (no hostname, no
  users, no resolver), the host name is ``sandbox``, ``/proc`` shows the sandbox's processes only;
* else with **unshare** (util-linux): the same namespaces (the user namespace maps the caller to
  root), and a small launcher (:func:`launch`, run inside them) that builds the same view on a
  tmpfs, makes it the root (``pivot_root``, the old root detached), drops every capability
  (bounding set included) and sets ``no_new_privs`` before it executes the child (as PID 2, the
  launcher waiting as the namespace's init). What it does not cover: ``/proc`` is left out when the kernel refuses a
  fresh one (e.g. in a container whose ``/proc`` is partly masked), ``/dev`` holds only
  ``null``, ``zero``, ``full``, ``random``, ``urandom`` (and the NVIDIA devices with
  ``--device cuda``), there is no cgroup namespace, and read-only re-mounts are not recursive
  (a mount below a bound folder stays as it is);
* with neither, a run is refused unless the user gives ``--no-sandbox``: then the child is a plain
  process of the same user (its own session, killed with its parent), which sees and may write
  everything that user may.

:func:`available_sandbox` says which one works here (``METBENCH_SANDBOX=bubblewrap|unshare``
chooses one of the two, e.g. to test the fallback); :func:`sandbox_command` builds the command.
The unshare launcher is :func:`launch`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DEFAULT_SHM_BYTES",
    "PASSED_VARIABLES",
    "SANDBOXES",
    "SANDBOX_ROOT",
    "Bind",
    "available_sandbox",
    "child_environment",
    "launch",
    "python_binds",
    "sandbox_command",
]

#: The sandbox tools, strongest first, as recorded in results (``"none"``: ``--no-sandbox``).
SANDBOXES: Final[tuple[str, ...]] = ("bubblewrap", "unshare")
#: Where the private folder and the job appear inside the sandbox.
SANDBOX_ROOT: Final = "/run/metbench"
_HOSTNAME: Final = "sandbox"
#: Variables passed into the sandbox when set here, by exact name (everything else is cleared;
#: no prefix is passed: ``TF_TOKEN_*`` and ``TF_VAR_*`` are Terraform's secrets, not TensorFlow's).
PASSED_VARIABLES: Final[tuple[str, ...]] = (
    "LANG",
    "LC_ALL",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "PYTHONHASHSEED",
    "TF_CPP_MIN_LOG_LEVEL",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "TF_GPU_ALLOCATOR",
    "TF_DETERMINISTIC_OPS",
    "TF_USE_LEGACY_KERAS",
    "KERAS_BACKEND",
)
_SYSTEM_DIRS: Final = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin")
_SYSTEM_FILES: Final = ("/etc/ld.so.cache", "/etc/localtime")
_DEVICES: Final = ("null", "zero", "full", "random", "urandom")
#: Size of the sandbox's ``/dev/shm`` (a tmpfs) unless the caller gives one [bytes].
DEFAULT_SHM_BYTES: Final = 2**30


@dataclass(frozen=True)
class Bind:
    """One path of the host shown in the sandbox.

    Attributes
    ----------
    source
        Path on the host.
    target
        Path inside the sandbox.
    mode
        ``ro`` (read-only), ``rw`` (writable), ``dev`` (a device node, usable) or ``empty`` (an
        empty read-only folder at ``target``, for what later binds put in it; ``source`` unused).
    optional
        Skip it when ``source`` does not exist.
    """

    source: str
    target: str
    mode: str = "ro"
    optional: bool = False


def _probe(command: Sequence[str]) -> bool:
    try:
        done = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def _works(kind: str) -> bool:
    if kind == "bubblewrap":
        tool = shutil.which("bwrap")
        return tool is not None and _probe(
            [tool, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent",
             "--new-session", "--proc", "/proc", "--dev", "/dev", "true"]
        )  # fmt: skip
    if kind == "unshare":
        tool = shutil.which("unshare")
        return tool is not None and _probe(
            [tool, *_UNSHARE_OPTIONS, "sh", "-c", "mount -t tmpfs none /tmp"]
        )
    return False


_UNSHARE_OPTIONS: Final = (
    "--user", "--map-root-user", "--net", "--pid", "--ipc", "--uts", "--mount", "--fork",
    "--kill-child",
)  # fmt: skip


def available_sandbox() -> str | None:
    """The strongest sandbox that works on this machine (``bubblewrap`` or ``unshare``), or None.

    ``METBENCH_SANDBOX`` set to one of them chooses it (None if it does not work). Each tool is
    tried once per process (a sandboxed ``true``).
    """
    wanted = os.environ.get("METBENCH_SANDBOX", "").strip()
    kinds = (wanted,) if wanted in SANDBOXES else SANDBOXES
    return next((kind for kind in kinds if _works(kind)), None)


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def python_binds(forbidden: Iterable[Path | str] = ()) -> list[Bind]:
    """Read-only binds of what this Python needs: the system folders, the Python installation
    (``sys.base_prefix``, ``sys.base_exec_prefix``), the environment (``sys.prefix``,
    ``sys.exec_prefix``), its site-packages folders (``site.getsitepackages()``) and metbench's
    package folder (at their own paths).

    Never the other folders of ``sys.path``: not the current directory (``python -m`` puts it
    first), not the folders of ``PYTHONPATH``, not what a ``.pth`` file adds (a source tree, a
    home directory). A folder that holds (or is) one of ``forbidden`` (the dataset, the results,
    metbench's source tree) is left out too: of an editable metbench only its package folder is
    bound, and of a virtual environment made inside the source tree (``.ci/venv``) only the
    environment.
    """
    import site

    import metbench

    prefixes = [sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix]
    with contextlib.suppress(AttributeError):  # absent in some virtualenv-made site modules
        prefixes += site.getsitepackages()
    return _python_binds(prefixes, Path(metbench.__file__).resolve().parent, forbidden)


def _python_binds(
    prefixes: Sequence[str], package: Path, forbidden: Iterable[Path | str]
) -> list[Bind]:
    """:func:`python_binds` for the given installation folders and metbench package folder."""
    no_go = [Path(f).resolve() for f in forbidden]
    tree = package.parent if (package.parent / "pyproject.toml").is_file() else None
    if tree is not None:
        no_go.append(tree)  # the source tree itself (tests, notes): never whole
    binds = [Bind(d, d, "ro", True) for d in _SYSTEM_DIRS]
    binds += [Bind(f, f, "ro", True) for f in _SYSTEM_FILES]
    seen: set[str] = set()
    for entry in [*prefixes, str(package)]:
        if not entry or not Path(entry).is_absolute() or not Path(entry).exists():
            continue
        path = Path(entry).resolve()
        holds_forbidden = any(_is_within(f, path) for f in no_go)
        inside_forbidden = any(
            _is_within(path, f) for f in no_go if f != tree
        )  # the tree's own subfolders (its package, an environment made in it) may be shown
        if str(path) == "/" or holds_forbidden or inside_forbidden:
            continue
        for shown in {Path(os.path.normpath(entry)), path}:  # the link and what it points to
            inside_system = any(_is_within(shown, Path(d)) for d in _SYSTEM_DIRS)
            if str(shown) not in seen and not inside_system:
                seen.add(str(shown))
                binds.append(Bind(str(shown), str(shown), "ro", True))
    return binds


def child_environment(home: str, tmp: str) -> dict[str, str]:
    """The child's whole environment: ``PATH``, ``HOME`` and ``TMPDIR`` (its private folder),
    ``PYTHONPATH`` naming the folder above the metbench package this process runs (so the child
    imports the same metbench, whether installed, editable or on a ``PYTHONPATH`` of its own), and
    the thread, device and locale settings that are set here."""
    import metbench

    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(Path(metbench.__file__).resolve().parent.parent),
    }
    for name, value in os.environ.items():
        if name in PASSED_VARIABLES:
            env[name] = value
    return env


def _device_binds(device: str) -> list[Bind]:
    if device != "cuda":
        return []
    dev = Path("/dev")
    nodes = sorted(dev.glob("nvidia*")) + sorted(dev.glob("dri/*"))
    return [Bind(str(n), str(n), "dev", True) for n in nodes if not n.is_dir()] + [
        Bind("/sys", "/sys", "ro", True),  # CUDA reads the PCI topology
        Bind("/etc/nvidia", "/etc/nvidia", "ro", True),
    ]


def sandbox_command(
    kind: str,
    argv: Sequence[str],
    binds: Sequence[Bind],
    env: Mapping[str, str],
    cwd: str,
    device: str = "cpu",
    private: Path | None = None,
    shm_bytes: int = DEFAULT_SHM_BYTES,
) -> list[str]:
    """The command that runs ``argv`` in a ``kind`` sandbox (``bubblewrap`` or ``unshare``).

    ``binds`` come after the system's, Python's and the devices' (so a later one may sit inside
    an earlier one, such as a folder inside the private ``/tmp``); for ``unshare`` the launcher's
    spec is written into ``private`` (``launcher.json``) and its new root made there. The root,
    ``/dev`` and every ``empty`` folder are read-only: the only writable places are the ``rw``
    binds (on disk, where the harness sums their size) and ``/dev/shm``, a tmpfs of at most
    ``shm_bytes`` (its pages are memory that the resident-memory check does not see).
    """
    binds = [*binds, *_device_binds(device)]
    if kind == "bubblewrap":
        command = [
            shutil.which("bwrap") or "bwrap",
            "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--hostname", _HOSTNAME, "--clearenv", "--proc", "/proc", "--dev", "/dev",
            "--size", str(int(shm_bytes)), "--tmpfs", "/dev/shm",
        ]  # fmt: skip
        for name, value in env.items():
            command += ["--setenv", name, value]
        flags = {"ro": "--ro-bind", "rw": "--bind", "dev": "--dev-bind"}
        for b in binds:
            if b.mode == "empty":
                command += ["--tmpfs", b.target]
            elif not b.optional or Path(b.source).exists():
                command += [flags[b.mode] + ("-try" if b.optional else ""), b.source, b.target]
        for b in binds:
            if b.mode == "empty":
                command += ["--remount-ro", b.target]
        command += ["--remount-ro", "/dev", "--remount-ro", "/"]  # nothing else to fill
        return [*command, "--chdir", cwd, "--", *argv]
    if kind == "unshare":
        if private is None:
            raise ValueError("the unshare sandbox needs a private folder")
        root = private / "root"
        root.mkdir(exist_ok=True)
        spec = {
            "root": str(root),
            "binds": [
                asdict(b)
                for b in binds
                if b.mode == "empty" or not b.optional or Path(b.source).exists()
            ],
            "env": dict(env),
            "cwd": cwd,
            "argv": list(argv),
            "devices": [f"/dev/{d}" for d in _DEVICES],
            "shm_bytes": int(shm_bytes),
        }
        spec_path = private / "launcher.json"
        spec_path.write_text(json.dumps(spec))
        return [
            shutil.which("unshare") or "unshare", *_UNSHARE_OPTIONS,
            sys.executable, "-s", "-c", _LAUNCHER, str(spec_path),
        ]  # fmt: skip
    raise ValueError(f"unknown sandbox {kind!r}")


# ------------------------------------------------------------------ the unshare fallback's launcher

_MS_RDONLY: Final = 1
_MS_NOSUID: Final = 2
_MS_NODEV: Final = 4
_MS_NOEXEC: Final = 8
_MS_REMOUNT: Final = 32
_MS_NOATIME: Final = 1024
_MS_NODIRATIME: Final = 2048
_MS_BIND: Final = 4096
_MS_REC: Final = 16384
_MS_PRIVATE: Final = 1 << 18
_MS_RELATIME: Final = 1 << 21
_MNT_DETACH: Final = 2
_PR_CAPBSET_DROP: Final = 24
_PR_SET_NO_NEW_PRIVS: Final = 38
_SYS_PIVOT_ROOT: Final = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}
_ST_TO_MS: Final = (  # statvfs flag -> mount flag, the ones a re-mount must keep
    (os.ST_NOSUID, _MS_NOSUID), (os.ST_NODEV, _MS_NODEV), (os.ST_NOEXEC, _MS_NOEXEC),
    (os.ST_NOATIME, _MS_NOATIME), (os.ST_NODIRATIME, _MS_NODIRATIME),
    (os.ST_RELATIME, _MS_RELATIME),
)  # fmt: skip


def _libc() -> Any:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_void_p]  # fmt: skip
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(
    libc: Any,
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    _check(
        libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            ctypes.c_char_p(data.encode()) if data else None,
        ),
        f"mount {source} on {target}",
    )


def _mountpoint(root: str, target: str, is_dir: bool) -> str:
    path = Path(root) / target.lstrip("/")
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    return str(path)


def _bind(libc: Any, root: str, source: str, target: str, read_only: bool) -> None:
    where = _mountpoint(root, target, Path(source).is_dir())
    _mount(libc, source, where, None, _MS_BIND | _MS_REC)
    if read_only:
        kept = os.statvfs(source).f_flag
        flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
        flags |= sum(ms for st, ms in _ST_TO_MS if kept & st)
        _mount(libc, None, where, None, flags)


def _drop_capabilities(libc: Any) -> None:
    for cap in range(64):  # the bounding set: an exec'd root gets nothing back
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]  # fmt: skip

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")


_LAUNCHER: Final = "import sys; from metbench.estimators.sandbox import launch; launch(sys.argv[1])"


def launch(spec_path: str) -> None:
    """The unshare fallback's launcher (run by ``unshare``, inside its namespaces): build the
    view ``spec_path`` describes, then run the child in it; exits with the child's status."""
    try:
        _launch(json.loads(Path(spec_path).read_text()))
    except OSError as exc:
        print(f"metbench sandbox (unshare): {exc}", file=sys.stderr)
        sys.exit(126)


def _launch(spec: dict[str, Any]) -> None:
    """Inside ``unshare``'s namespaces: build the view, make it the root, drop every capability,
    exec the child (never returns)."""
    libc = _libc()
    root = spec["root"]
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount(libc, "tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV)
    for b in spec["binds"]:
        if b["mode"] == "empty":
            _mount(libc, "tmpfs", _mountpoint(root, b["target"], True), "tmpfs",
                   _MS_NOSUID | _MS_NODEV)  # fmt: skip
        elif b["mode"] == "dev":
            _bind(libc, root, b["source"], b["target"], read_only=False)
        else:
            _bind(libc, root, b["source"], b["target"], read_only=b["mode"] == "ro")
    for b in spec["binds"]:
        if b["mode"] == "empty":
            _mount(libc, None, _mountpoint(root, b["target"], True), None,
                   _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)  # fmt: skip
    _mountpoint(root, "/dev", True)
    for node in spec["devices"]:
        if Path(node).exists() and not (Path(root) / node.lstrip("/")).exists():
            _bind(libc, root, node, node, read_only=False)
    _mount(libc, "tmpfs", _mountpoint(root, "/dev/shm", True), "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"size={int(spec.get('shm_bytes', DEFAULT_SHM_BYTES))}")  # fmt: skip
    with contextlib.suppress(OSError):  # refused where the host's /proc is partly masked
        _mount(libc, "proc", _mountpoint(root, "/proc", True), "proc",
               _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)  # fmt: skip
    _mount(libc, None, root, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    with contextlib.suppress(OSError):
        import socket

        socket.sethostname(_HOSTNAME)
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown system call number on {platform.machine()}")
    os.chdir(root)
    _check(libc.syscall(number, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", _MNT_DETACH), "detach the old root")
    os.chdir("/")
    _drop_capabilities(libc)
    os.chdir(spec["cwd"])
    pid = os.fork()  # the child is not the PID namespace's init (which ignores most signals)
    if pid == 0:
        try:
            os.execve(spec["argv"][0], spec["argv"], spec["env"])
        finally:
            os._exit(127)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    status = os.waitpid(pid, 0)[1]
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)  # as bubblewrap: 128 + the signal's number

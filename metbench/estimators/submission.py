"""Submission folders: ``metbench.toml`` (validated), code, weights and a content hash.

A submission folder is self-contained::

    submissions/<name>/
        metbench.toml     the manifest (below)
        README.md         what it is, its original, every deviation
        <module>.py       the entry's class, and any other code (``from .net import X``)
        test_<name>.py    its tests (optional; ``metbench new`` writes one)
        weights/...       trained weights, if any

Its code is imported as a package of its own, under a unique name
(``metbench_submission_<folder>_<hash8>``, :mod:`metbench.estimators.loader`), in the child
process and wherever else an estimator is built: nothing is put on ``sys.path``, so two
submissions that both have a ``model.py`` never collide in one process. Modules of the folder
import each other relatively (``from .net import Network``); an absolute ``import net`` of a
sibling is not supported (it finds nothing, or an unrelated module of that name). Building blocks
come from the metbench package (``metbench.physics``, ``metbench.nn``, ``metbench.events``).

``metbench.toml``::

    name = "puppi"                      # lower case letters, digits, '-', '_'
    entry = "module:Class"              # a module of the folder (a dotted path for a subfolder
                                        # package); nothing else (e.g. "os:system") is accepted
    framework = "numpy"                 # numpy | torch | keras | onnx
    paper = "https://arxiv.org/abs/1407.6013"
    authors = ["D. Bertolini", "P. Harris", "M. Low", "N. Tran"]
    trainable = false
    weights = ["weights/model.pt"]      # paths inside the folder
    description = "one line for the leaderboard"
    category = "baseline"               # baseline | reference | oracle | submission
    uses_truth = []                     # truth it may read: truth_is_pileup (oracle only), or
                                        # truth_leptons / truth_b_quarks (truth-matched inputs
                                        # of kinematic reconstruction, marked as such; only
                                        # with a met_source)
    inputs = "candidates"               # candidates | stored (MET estimators stored in a file)
    met_source = ""                     # the entry whose MET this one returns (e.g. "puppi"):
                                        # it then leaves the MET and recoil tables
    batch_size = 256                    # events per predict call
    max_particles = 4500                # candidates per event, hardest first

    [parameters]                        # constructor keyword arguments
    working_point = "tight"

    [variants.loose]                    # optional: named parameter overrides, each scored as
    working_point = "loose"             # its own entry "<name>-<variant>"

    default_entry = true                # optional: with variants, also run "<name>" itself with
                                        # [parameters] (chosen alone by --variant default)
    [datasets.pu200]                    # optional: parameters for one dataset (by its name),
    tune = "phase2"                     # applied before the variant's and --param's

    [variants.torch-seed2]              # one entry trained with several seeds: variants that
    weights_file = "weights/seed2/model.pt"  # differ only in ``seed`` (and their weights files)
    seed = 2

The parameter ``seed`` is reserved (:data:`TRAINING_SEED`): the training seed of the weights a
variant names. ``metbench train`` trains that variant with it and the entry's class never
receives it; the leaderboard takes variants that differ only in their seed as repeated trainings
of one entry (the median one is ranked, with the spread of S).

The parameter ``training_epochs`` is reserved too (:data:`TRAINING_EPOCHS`): a fixed budget of
epochs the variant's weights were trained with, shorter than the entry's own training (an entry
whose training takes hours here shows the spread of its repeated trainings at such a budget).
``metbench train`` trains the variant for at most that many epochs (whatever ``--epochs`` says),
the class never receives it, and variants with different budgets are different entries::

    [variants.resolution-6ep-seed2]     # the spread of repeated trainings at a shorter budget
    weights_file = "weights/6ep/seed2/resolution.weights.h5"
    training_epochs = 6
    seed = 2

The content hash (:attr:`Submission.content_hash`) covers the folder's files, the metbench
version and every metbench module the folder's code imports, transitively.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import metbench
from metbench.errors import MetbenchError, safe_text
from metbench.events import DEFAULT_MAX_PARTICLES, TRUTH_MATCHED_INPUTS, TRUTH_PARTICLE_COLUMNS
from metbench.frameworks import FRAMEWORKS as _REGISTRY

__all__ = [
    "CATEGORIES",
    "FRAMEWORKS",
    "MANIFEST_FILE",
    "PRIVILEGED_CATEGORIES",
    "RESERVED_PARAMETERS",
    "TRAINING_EPOCHS",
    "TRAINING_SEED",
    "Manifest",
    "Submission",
    "SubmissionError",
    "load_submission",
    "parse_parameter",
    "repository_submissions",
    "shared_data_folder",
]

MANIFEST_FILE: Final = "metbench.toml"
#: The frameworks an entry may declare (:mod:`metbench.frameworks`).
FRAMEWORKS: Final[tuple[str, ...]] = tuple(_REGISTRY)
CATEGORIES: Final[tuple[str, ...]] = ("baseline", "reference", "oracle", "submission")
#: Categories only a folder of the repository's ``submissions/`` may claim
#: (:func:`repository_submissions`); any other folder is a ``submission``.
PRIVILEGED_CATEGORIES: Final[tuple[str, ...]] = ("baseline", "reference", "oracle")
#: The reserved parameter naming the training seed of a variant's weights (an integer >= 0): the
#: harness takes it out before the entry's class is constructed, and ``metbench train`` trains
#: the variant with it.
TRAINING_SEED: Final = "seed"
#: The reserved parameter naming a fixed budget of training epochs (an integer >= 1): taken out
#: before the class is constructed as :data:`TRAINING_SEED` is; ``metbench train`` trains the
#: variant for at most that many epochs.
TRAINING_EPOCHS: Final = "training_epochs"
#: The reserved parameters: the harness's, never passed to an entry's class.
RESERVED_PARAMETERS: Final[tuple[str, ...]] = (TRAINING_SEED, TRAINING_EPOCHS)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: Folders the child never sees (an empty folder is mounted over each): not hashed.
_HIDDEN_FOLDER: Final = "__pycache__"
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class SubmissionError(MetbenchError):
    """A submission that cannot be loaded or that misbehaved."""


@dataclass(frozen=True)
class Manifest:
    """The validated content of ``metbench.toml`` (see the module docstring)."""

    name: str
    entry: str
    framework: str
    paper: str
    authors: tuple[str, ...]
    trainable: bool
    weights: tuple[str, ...] = ()
    description: str = ""
    category: str = "submission"
    uses_truth: tuple[str, ...] = ()
    inputs: str = "candidates"
    met_source: str = ""
    batch_size: int = 256
    max_particles: int = DEFAULT_MAX_PARTICLES
    parameters: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_entry: bool = False
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """A loaded submission folder.

    Attributes
    ----------
    folder
        The folder (absolute).
    manifest
        Its validated manifest.
    content_hash
        sha256 over every file of the folder (names and bytes, caches excluded), the metbench
        version, and every metbench module the entry imports, transitively (found by reading
        import statements, :func:`metbench_modules`): the key under which predictions and
        results are reused, so a change in a building block makes them stale.
    """

    folder: Path
    manifest: Manifest
    content_hash: str

    @property
    def name(self) -> str:
        return self.manifest.name

    def entries(
        self,
        variant: str | None = None,
        overrides: dict[str, Any] | None = None,
        dataset: str | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """(entry name, constructor parameters) of each variant to run.

        With variants in the manifest each is an entry ``<name>-<variant>`` (``variant`` picks
        one), preceded by ``<name>`` itself when the manifest sets ``default_entry`` (``variant =
        "default"`` picks it alone); without, the one entry is ``<name>``. Parameters merge as
        ``[parameters]``, then ``[datasets.<dataset>]``, then the variant's, then ``overrides``
        (``--param``, part of the entry name).
        """
        m = self.manifest
        known = [*(["default"] if m.default_entry else []), *m.variants]
        if variant is not None and variant not in known:
            raise SubmissionError(
                f"{self.folder}: no variant {variant!r} (variants: {', '.join(known) or 'none'})"
            )
        base = {**m.parameters, **m.datasets.get(dataset or "", {})}
        chosen = [variant] if variant else known
        entries = (
            [
                (m.name, dict(base))
                if v == "default"
                else (f"{m.name}-{v}", {**base, **m.variants[v]})
                for v in chosen
            ]
            if chosen
            else [(m.name, dict(base))]
        )
        if overrides:
            suffix = ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
            entries = [(f"{name}[{suffix}]", {**p, **overrides}) for name, p in entries]
        return entries


def _fail(path: Path, message: str) -> SubmissionError:
    return SubmissionError(f"{path}: {message}")


def _expect(
    path: Path, data: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str
) -> Any:
    if key not in data:
        raise _fail(path, f"missing key {key!r} ({what})")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(path, f"{key!r} must be {what}, got {value!r}")
    return value


#: The largest manifest read [bytes], the deepest nesting of its values, the longest parameter
#: value from the command line [characters].
MAX_MANIFEST_BYTES: Final[int] = 64 * 1024
MAX_DEPTH: Final[int] = 8
MAX_PARAMETER_CHARS: Final[int] = 256


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _control_character(value: Any, where: str = "the manifest") -> tuple[str, str] | None:
    """(where, the character) of the first control or bidirectional-override character in a
    key or string of ``value``, or None (tabs are allowed)."""
    if isinstance(value, str):
        match = _CONTROL.search(value)
        return (where, match.group()) if match else None
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, item in items:
        if isinstance(key, str) and _CONTROL.search(key):
            return f"a key of {where}", _CONTROL.search(key).group()  # type: ignore[union-attr]
        label = f"{safe_text(key, 40)!r}" if where == "the manifest" else f"{where}.{key}"
        inner = _control_character(item, label)
        if inner is not None:
            return inner
    return None


def _parse_manifest(path: Path, folder: Path, require_weights: bool = True) -> Manifest:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise _fail(
                path, f"{size} bytes; a manifest may hold at most {MAX_MANIFEST_BYTES // 1024} KiB"
            )
        text = path.read_text(encoding="utf-8")
        if "\x00" in text:
            raise _fail(path, "contains a NUL character; a manifest is TOML text")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise _fail(
            folder, f"no {MANIFEST_FILE}; a submission folder needs one (see submissions/pf)"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid TOML ({exc})") from None
    except RecursionError:
        raise _fail(path, f"values nested too deeply (at most {MAX_DEPTH} levels)") from None
    if _depth(data) > MAX_DEPTH + 2:  # [variants.<label>] tables add two levels
        raise _fail(path, f"values nested too deeply (at most {MAX_DEPTH} levels)")
    control = _control_character(data)
    if control is not None:
        raise _fail(
            path,
            f"{control[0]} holds the control character {safe_text(control[1])}; a manifest "
            "holds printable text (names, descriptions and parameters are printed)",
        )
    known = set(Manifest.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail(path, f"unknown key(s) {unknown}; known keys: {', '.join(sorted(known))}")
    name = _expect(path, data, "name", str, "the entry's name")
    if not _NAME.match(name):
        raise _fail(path, f"name {name!r} must be lower case letters, digits, '-' or '_'")
    entry = _expect(path, data, "entry", str, "'module:Class'")
    if not _ENTRY.match(entry):
        raise _fail(path, f"entry {entry!r} must look like 'module:Class'")
    module = entry.split(":")[0]
    parts = module.split(".")
    local = (folder / Path(*parts)).with_suffix(".py").is_file() or (
        folder / Path(*parts) / "__init__.py"
    ).is_file()
    if not local:
        raise _fail(
            path,
            f"entry {entry!r}: the module must be a file of the submission folder "
            f"({'/'.join(parts)}.py); nothing else is imported (that module imports what it "
            "needs of metbench)",
        )
    framework = _expect(path, data, "framework", str, f"one of {', '.join(FRAMEWORKS)}")
    if framework not in FRAMEWORKS:
        raise _fail(path, f"framework {framework!r} is not one of {', '.join(FRAMEWORKS)}")
    paper = _expect(path, data, "paper", str, "a reference (URL or citation)")
    authors = _expect(path, data, "authors", list, "a list of names")
    if not authors or not all(isinstance(a, str) for a in authors):
        raise _fail(path, "'authors' must be a non-empty list of names")
    trainable = _expect(path, data, "trainable", bool, "true or false")
    weights = data.get("weights", [])
    if not isinstance(weights, list) or not all(isinstance(w, str) for w in weights):
        raise _fail(path, "'weights' must be a list of paths inside the submission folder")
    root = folder.resolve()
    category = data.get("category", "submission")
    shared = shared_data_folder() if category in PRIVILEGED_CATEGORIES else None
    for w in weights:
        named = Path(os.path.normpath(root / w))
        target = (folder / w).resolve()
        # a repository entry may link a weights file into the shared reference data beside the
        # project (never copied into it); a submission's weights are its own files
        linked_to_shared = (
            shared is not None and named.is_relative_to(root) and target.is_relative_to(shared)
        )
        if not (target.is_relative_to(root) or linked_to_shared):
            raise _fail(
                path,
                f"weights path {w!r} points outside the submission folder {folder}; keep weights inside it",
            )
        if require_weights and not target.exists():
            hint = (
                f"; train it with `metbench train {folder}`, then `metbench adopt` the training"
                if trainable
                else ""
            )
            raise _fail(path, f"weights file {w!r} does not exist in {folder}{hint}")
    if category not in CATEGORIES:
        raise _fail(path, f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    uses_truth = data.get("uses_truth", [])
    allowed = (*TRUTH_PARTICLE_COLUMNS, *TRUTH_MATCHED_INPUTS)
    if not isinstance(uses_truth, list) or set(uses_truth) - set(allowed):
        raise _fail(path, f"'uses_truth' may only list {', '.join(allowed)}")
    if set(uses_truth) & set(TRUTH_PARTICLE_COLUMNS) and category != "oracle":
        raise _fail(
            path,
            'an entry that reads truth_is_pileup must have category = "oracle"',
        )
    inputs = data.get("inputs", "candidates")
    if inputs not in ("candidates", "stored"):
        raise _fail(path, f"inputs {inputs!r} must be 'candidates' or 'stored'")
    met_source = data.get("met_source", "")
    if not isinstance(met_source, str) or (met_source and not _NAME.match(met_source)):
        raise _fail(
            path, f"'met_source' must name another entry (e.g. \"puppi\"), got {met_source!r}"
        )
    matched = [u for u in uses_truth if u in TRUTH_MATCHED_INPUTS]
    if matched and not met_source:
        raise _fail(
            path,
            f"uses_truth lists {', '.join(matched)}: truth-matched inputs are for a kinematic "
            'reconstruction that returns another entry\'s MET; set met_source (e.g. "puppi") '
            "or remove them (a MET estimator reading truth would be ranked beside those that "
            "cannot)",
        )
    for key, low in (("batch_size", 1), ("max_particles", 1)):
        value = data.get(key, Manifest.__dataclass_fields__[key].default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise _fail(path, f"{key!r} must be an integer >= {low}, got {value!r}")
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise _fail(path, "[parameters] must be a table")
    variants = data.get("variants", {})
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise _fail(path, "[variants.<label>] must be tables of parameter overrides")
    for label in variants:
        if not _NAME.match(label):
            raise _fail(
                path, f"variant label {label!r} must be lower case letters, digits, '-' or '_'"
            )
    default_entry = data.get("default_entry", False)
    if not isinstance(default_entry, bool):
        raise _fail(path, f"'default_entry' must be true or false, got {default_entry!r}")
    if default_entry and "default" in variants:
        raise _fail(path, "with default_entry = true, no variant may be labelled 'default'")
    datasets = data.get("datasets", {})
    if not isinstance(datasets, dict) or not all(isinstance(v, dict) for v in datasets.values()):
        raise _fail(path, "[datasets.<name>] must be tables of parameters for that dataset")
    for table, values in [("[parameters]", parameters)] + [
        (f"[{kind}.{label}]", v)
        for kind, tables in (("variants", variants), ("datasets", datasets))
        for label, v in tables.items()
    ]:
        if TRAINING_SEED in values and not _is_seed(values[TRAINING_SEED]):
            raise _fail(
                path,
                f"{table} {TRAINING_SEED} = {values[TRAINING_SEED]!r}: the training seed must be "
                "an integer >= 0",
            )
        budget: Any = values.get(TRAINING_EPOCHS)
        if TRAINING_EPOCHS in values and not (_is_seed(budget) and budget >= 1):
            raise _fail(
                path,
                f"{table} {TRAINING_EPOCHS} = {budget!r}: the budget of training epochs must "
                "be an integer >= 1",
            )
    return Manifest(
        name=name,
        entry=entry,
        framework=framework,
        paper=paper,
        authors=tuple(authors),
        trainable=trainable,
        weights=tuple(weights),
        description=str(data.get("description", "")),
        category=category,
        uses_truth=tuple(uses_truth),
        inputs=inputs,
        met_source=met_source,
        batch_size=data.get("batch_size", 256),
        max_particles=data.get("max_particles", DEFAULT_MAX_PARTICLES),
        parameters=parameters,
        variants=variants,
        default_entry=default_entry,
        datasets=datasets,
    )


def _is_seed(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _module_file(root: Path, name: str) -> Path | None:
    """The source file of module ``name`` (``metbench.x.y``) under the package folder ``root``."""
    parts = name.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if parts and candidate.is_file():
            return candidate
    return root / "__init__.py" if not parts else None


def _walk_run_time(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """Every absolute module name an ``import`` statement of ``path`` may load, wherever in the
    file it stands (inside functions too; in metbench's modules not under ``if TYPE_CHECKING:``),
    with ``from a import b`` giving ``a`` and ``a.b``."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return set()  # the child reports the syntax error; the hash still covers the bytes
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    # metbench's own type-only imports never run; a submission's are followed whatever they say
    nodes = ast.walk(tree) if module == "__submission__" else _walk_run_time(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: max(len(package.split(".")) - node.level + 1, 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (name := _literal_import(node)) is not None:
            names.add(name)
    return names


#: The calls that import a module named by their first argument.
_IMPORT_CALLS: Final = frozenset({"import_module", "__import__"})


def _literal_import(node: ast.AST) -> str | None:
    """The module a call ``importlib.import_module("a.b")`` or ``__import__("a.b")`` imports, when
    its name is a string literal; None for any other node (a computed name cannot be followed)."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0]
    if called in _IMPORT_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def metbench_modules(sources: list[Path], modules: tuple[str, ...] = ()) -> list[Path]:
    """The ``metbench`` source files that code in ``sources`` imports (plus ``modules``, by
    name), transitively, found by reading the import statements (nothing is executed): each
    module, the packages above it, and what they import in turn."""
    root = Path(metbench.__file__).resolve().parent
    found: set[Path] = set()
    queue: list[tuple[Path | None, str, bool]] = [(p, "__submission__", False) for p in sources]
    queue.append((None, "", False))
    while queue:
        path, module, is_package = queue.pop()
        names = set(modules) if path is None else _imported_names(path, module, is_package)
        for name in names:
            parts = name.split(".")
            if parts[0] != "metbench":
                continue
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
                prefix = ".".join(parts[:depth])
                file = _module_file(root, prefix)
                if file is not None and file not in found:
                    found.add(file)
                    queue.append((file, prefix, file.name == "__init__.py"))
    return sorted(found)


def _content_hash(folder: Path) -> str:
    """sha256 over the metbench version, every file of the submission folder (dot-files too;
    not what is in a ``__pycache__`` folder, which the child never sees), and every metbench
    module the folder's code imports, transitively, starting from every ``.py`` file of the
    folder (the entry's module among them): a change in a building block it uses makes its
    results stale."""
    h = hashlib.sha256()
    h.update(f"metbench {metbench.__version__}\n".encode())
    own: list[Path] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if _HIDDEN_FOLDER in rel.parts[:-1]:  # never shown to the child (bytecode caches)
            continue
        h.update(f"{rel.as_posix()}\n".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
        if path.suffix == ".py":
            own.append(path)
    root = Path(metbench.__file__).resolve().parent
    for path in metbench_modules(own):
        h.update(f"module {path.relative_to(root.parent).as_posix()}\n".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def load_submission(folder: Path | str, require_weights: bool = True) -> Submission:
    """Read and validate a submission folder (the entry is imported later, in the child).

    ``require_weights=False`` accepts missing weight files (``metbench train`` writes them)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: no such submission folder (try `metbench list`)")
    manifest = _parse_manifest(folder / MANIFEST_FILE, folder, require_weights)
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if path.is_symlink() and rel.as_posix() not in manifest.weights:
            raise SubmissionError(
                f"{folder}: {safe_text(rel.as_posix(), 200)} is a symbolic link; a submission "
                "folder holds its own files (a link is accepted only as a weights file listed in "
                "the manifest)"
            )
        if path.suffix == ".pyc" and _HIDDEN_FOLDER not in rel.parts[:-1]:
            raise SubmissionError(
                f"{folder}: {safe_text(rel.as_posix(), 200)} is compiled Python outside "
                "__pycache__, which Python imports without any source; a submission ships its "
                "sources (.py): delete it"
            )
    _check_provenance(folder.resolve(), manifest, folder / MANIFEST_FILE)
    return Submission(folder.resolve(), manifest, _content_hash(folder.resolve()))


def repository_submissions() -> Path | None:
    """The repository's ``submissions/`` folder, whose submissions alone may be baselines,
    references or oracles and own their names: ``$METBENCH_SUBMISSIONS`` when set, else
    ``submissions/`` beside the metbench package that runs (a source checkout, editable or on
    ``PYTHONPATH``); None when neither exists (e.g. metbench installed from a wheel)."""
    configured = os.environ.get("METBENCH_SUBMISSIONS", "").strip()
    if configured:
        folder = Path(configured)
    else:
        folder = Path(metbench.__file__).resolve().parent.parent / "submissions"
    return folder.resolve() if folder.is_dir() else None


def shared_data_folder() -> Path | None:
    """The shared reference data beside the project (``<repository>/../shared/data``: the real
    experiment files and CMS's DeepMET graphs), which the repository's own entries may link
    weights into; None without a repository or without the folder."""
    repository = repository_submissions()
    if repository is None:
        return None
    folder = repository.parent.parent / "shared" / "data"
    return folder.resolve() if folder.is_dir() else None


def _entry_names(name: str, variants: Any) -> set[str]:
    labels = list(variants) if isinstance(variants, dict) else []
    return {name, *(f"{name}-{label}" for label in labels)}


def _repository_names(repository: Path) -> dict[str, Path]:
    """Every entry name (``<name>``, ``<name>-<variant>``) and folder name of the repository's
    submissions, with the folder that owns it."""
    owners: dict[str, Path] = {}
    for manifest in sorted(repository.glob(f"*/{MANIFEST_FILE}")):
        owners.setdefault(manifest.parent.name, manifest.parent)
        try:
            if manifest.stat().st_size > MAX_MANIFEST_BYTES:
                continue
            data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
            continue
        if isinstance(data.get("name"), str):
            for entry in _entry_names(data["name"], data.get("variants")):
                owners.setdefault(entry, manifest.parent)
    return owners


def _check_provenance(folder: Path, manifest: Manifest, path: Path) -> None:
    """A folder outside the repository's ``submissions/`` (:func:`repository_submissions`) is a
    ``submission`` and takes none of the names of the repository's entries: a downloaded folder
    cannot pass itself off as ``pf`` or as a baseline."""
    repository = repository_submissions()
    if repository is not None and folder.is_relative_to(repository):
        return
    if manifest.category in PRIVILEGED_CATEGORIES:
        where = f"the repository's {repository}" if repository else "the repository's submissions/"
        raise _fail(
            path,
            f"category {manifest.category!r} is kept for the submissions in {where} (set "
            "METBENCH_SUBMISSIONS to name another); a folder from elsewhere has "
            'category = "submission"',
        )
    if repository is None:
        return
    owners = _repository_names(repository)
    for entry in sorted(_entry_names(manifest.name, manifest.variants)):
        owner = owners.get(entry)
        if owner is not None and owner.resolve() != folder:
            raise _fail(
                path,
                f"the entry name {entry!r} belongs to the repository's submission {owner}; "
                "choose another name (name in metbench.toml)",
            )


def parse_parameter(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line; the value is read as TOML (numbers, booleans,
    quoted strings) and otherwise kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SubmissionError(f"--param {text[:40]!r} must look like key=value")
    if "\x00" in text:
        raise SubmissionError(f"--param {text[:40]!r}: NUL characters are not allowed")
    if len(value) > MAX_PARAMETER_CHARS or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key.strip()):
        raise SubmissionError(
            f"--param {text[:40]!r}...: the key must be a Python name and the value at most "
            f"{MAX_PARAMETER_CHARS} characters"
        )
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed

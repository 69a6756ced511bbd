"""``metbench new``: a submission folder that runs as it is, for one framework.

:func:`new_submission` writes ``<into>/<name>/`` with

* ``metbench.toml``: the manifest (category ``submission``, not trainable);
* ``<module>.py``: the entry's class (``<name>`` with ``-`` as ``_``), a working estimator to
  start from: PF MET for ``numpy``, per-candidate weights from a small untrained network for
  ``torch`` and ``keras``, and from an ONNX model (``weights/model.onnx``, written here) for
  ``onnx``, each returning ``MET = -sum_i w_i pT_i`` [GeV];
* ``README.md``: what to fill in;
* ``test_<module>.py``: a test that loads the entry as the harness does and predicts a batch of
  hand-made events (``python -m pytest <into>/<name>``).
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from typing import Final

from metbench.errors import MetbenchError
from metbench.estimators.submission import FRAMEWORKS, _repository_names, repository_submissions

__all__ = ["TemplateError", "class_name", "module_name", "new_submission"]

_NAME: Final = re.compile(r"^[a-z][a-z0-9_-]*$")


class TemplateError(MetbenchError):
    """A folder that cannot be written (bad name, existing folder, unknown framework)."""


def module_name(name: str) -> str:
    """The entry module's name for the entry ``name`` (``my-met`` -> ``my_met``)."""
    return name.replace("-", "_")


def class_name(name: str) -> str:
    """The entry class's name for the entry ``name`` (``my-met`` -> ``MyMet``)."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", name) if part)


_FEATURES = '''

#: The candidate features the network reads, in this order.
FEATURES = ("pt", "eta", "charge", "from_pv")


def candidate_features(batch: EventBatch) -> np.ndarray:
    """``(n, max_particles, len(FEATURES))`` float32 inputs: log(1 + pT/GeV), eta, charge, from_pv."""
    x = np.stack([batch.feature(f) for f in FEATURES], axis=-1).astype(np.float32)
    x[..., 0] = np.log1p(x[..., 0])
    return x


def weighted_met(batch: EventBatch, weights: np.ndarray) -> np.ndarray:
    """``(n, 2)`` MET (px, py) [GeV] = minus the sum of the weighted candidates' pT."""
    w = np.where(batch.mask, weights, 0.0) * batch.feature("pt").astype(np.float64)
    phi = batch.feature("phi").astype(np.float64)
    return -np.stack([(w * np.cos(phi)).sum(1), (w * np.sin(phi)).sum(1)], axis=1)
'''

_CODE: Final[dict[str, str]] = {
    "numpy": '''"""{name}: MET from the particle-flow candidates (NumPy). Start here and make it better."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch

__all__ = ["{cls}"]


class {cls}:
    """MET = minus the vector sum of every candidate's transverse momentum (PF MET).

    Parameters
    ----------
    min_pt
        Candidates below this pT [GeV] are left out.
    """

    def __init__(self, min_pt: float = 0.0) -> None:
        self.min_pt = float(min_pt)

    def predict(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2)`` MET (px, py) [GeV]."""
        pt = batch.feature("pt").astype(np.float64)
        phi = batch.feature("phi").astype(np.float64)
        keep = batch.mask & (pt >= self.min_pt)
        w = np.where(keep, pt, 0.0)
        return -np.stack([(w * np.cos(phi)).sum(1), (w * np.sin(phi)).sum(1)], axis=1)
''',
    "torch": '''"""{name}: per-candidate weights from a small PyTorch network, MET = -sum w pT."""

from __future__ import annotations

from typing import Any

import numpy as np

from metbench.events import EventBatch

__all__ = ["{cls}", "candidate_features", "weighted_met"]
{features}

class {cls}:
    """A per-candidate MLP (untrained: seeded initial weights) giving each candidate a weight in
    [0, 1]; load your trained ``state_dict`` in ``__init__`` (and list it under ``weights``).

    Parameters
    ----------
    hidden
        Width of the hidden layer.
    seed
        Seed of the initial weights.
    device
        Given by the harness (``cpu`` or ``cuda``).
    """

    def __init__(self, hidden: int = 16, seed: int = 0, device: str = "cpu") -> None:
        import torch

        generator = torch.Generator().manual_seed(seed)
        self.device = device
        self.network: Any = torch.nn.Sequential(
            torch.nn.Linear(len(FEATURES), hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 1),
            torch.nn.Sigmoid(),
        )
        with torch.no_grad():
            for p in self.network.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=generator))
        self.network = self.network.to(device).eval()

    def predict(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2)`` MET (px, py) [GeV]."""
        import torch

        with torch.no_grad():
            x = torch.as_tensor(candidate_features(batch), device=self.device)
            w = self.network(x)[..., 0].cpu().numpy().astype(np.float64)
        return weighted_met(batch, w)
''',
    "keras": '''"""{name}: per-candidate weights from a small Keras network, MET = -sum w pT."""

from __future__ import annotations

from typing import Any

import numpy as np

from metbench.events import EventBatch

__all__ = ["{cls}", "candidate_features", "weighted_met"]
{features}

class {cls}:
    """A per-candidate MLP (untrained: seeded initial weights) giving each candidate a weight in
    [0, 1]; load your trained weights in ``__init__`` (and list them under ``weights``).

    Parameters
    ----------
    hidden
        Width of the hidden layer.
    seed
        Seed of the initial weights.
    """

    def __init__(self, hidden: int = 16, seed: int = 0) -> None:
        import keras

        keras.utils.set_random_seed(seed)
        self.network: Any = keras.Sequential(
            [
                keras.Input((None, len(FEATURES))),
                keras.layers.Dense(hidden, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )

    def predict(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2)`` MET (px, py) [GeV]."""
        w = np.asarray(self.network(candidate_features(batch), training=False))[..., 0]
        return weighted_met(batch, w.astype(np.float64))
''',
    "onnx": '''"""{name}: per-candidate weights from an ONNX model (``weights/model.onnx``), MET = -sum w pT."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metbench.events import EventBatch

__all__ = ["{cls}", "candidate_features", "weighted_met"]
{features}

class {cls}:
    """Runs ``weights_file`` with onnxruntime: input ``features`` ``(n, m, len(FEATURES))``
    float32, output ``weights`` ``(n, m, 1)`` in [0, 1]. ``metbench new`` wrote a stand-in (a
    logistic function of log(1 + pT/GeV)); replace it with your exported model.

    Parameters
    ----------
    weights_file
        The model, relative to the submission folder.
    weights_dir
        Given by the harness: the submission folder.
    """

    def __init__(self, weights_file: str = "weights/model.onnx", weights_dir: str = ".") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(Path(weights_dir) / weights_file), options, providers=["CPUExecutionProvider"]
        )

    def predict(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2)`` MET (px, py) [GeV]."""
        (w,) = self.session.run(["weights"], {{"features": candidate_features(batch)}})
        return weighted_met(batch, np.asarray(w)[..., 0].astype(np.float64))
''',
}

_MANIFEST = """name = "{name}"
entry = "{module}:{cls}"
framework = "{framework}"
category = "submission"
description = "{name}: describe it in one line for the leaderboard"
paper = "the paper or URL it follows"
authors = ["your name"]
trainable = false
{weights}batch_size = 256
"""

_README = """# {name}

A metbench entry ({framework}), written by `metbench new {name} --framework {framework}`: a
working estimator to start from.

- `metbench.toml`: the manifest (name, `entry = "{module}:{cls}"`, framework, paper, authors;
  see `metbench/estimators/submission.py` for every key). Fill in `description`, `paper` and
  `authors`.
- `{module}.py`: the entry's class. `predict(batch)` gets an `EventBatch` (float32 candidates
  `(n, max_particles, k)`, a mask, event columns; `metbench/events.py`) and returns `(n, 2)` MET
  (px, py) in GeV. Other modules of this folder are imported relatively
  (`from .net import Network`); building blocks come from `metbench.physics` and `metbench.nn`.
- `test_{module}.py`: `python -m pytest {folder}` loads the entry as the harness does and
  predicts a hand-made batch.
{weights_note}
Run it: `metbench run {folder} --dataset mini`, then `metbench show`.

Say here what it is, what it follows, and every deviation from its original.
"""

_TEST = '''"""{name}: the entry loads as the harness loads it and predicts a batch of hand-made events."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metbench.estimators.loader import import_entry
from metbench.events import PARTICLE_FEATURES, EventBatch

FOLDER = Path(__file__).resolve().parent


def hand_made_batch(n: int = 4, m: int = 6) -> EventBatch:
    """``n`` events of up to ``m`` candidates (the first event has 3), pT 1-50 GeV."""
    rng = np.random.default_rng(1)
    particles = np.zeros((n, m, len(PARTICLE_FEATURES)), np.float32)
    column = PARTICLE_FEATURES.index
    particles[..., column("pt")] = rng.uniform(1, 50, (n, m))
    particles[..., column("eta")] = rng.uniform(-2.5, 2.5, (n, m))
    particles[..., column("phi")] = rng.uniform(-np.pi, np.pi, (n, m))
    particles[..., column("charge")] = rng.choice([-1, 0, 1], (n, m))
    particles[..., column("from_pv")] = 3
    mask = np.ones((n, m), bool)
    mask[0, 3:] = False
    particles[~mask] = 0
    event = {{
        "event_id": np.arange(n, dtype=np.int64),
        "mu": np.full(n, 30, np.float32),
        "n_pv": np.full(n, 20, np.int32),
    }}
    return EventBatch(particles, mask, PARTICLE_FEATURES, event)


def test_predicts_finite_met_per_event() -> None:
    estimator = import_entry(FOLDER, "{module}:{cls}")({arguments})
    batch = hand_made_batch()
    met = estimator.predict(batch)
    assert met.shape == (len(batch), 2)
    assert np.isfinite(met).all()
    assert np.abs(met).max() > 0  # the candidates are not ignored
'''


def _onnx_model() -> bytes:
    """A stand-in ONNX model: ``weights = sigmoid(2 (log(1 + pT/GeV) - 1))`` per candidate."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise TemplateError(
            "--framework onnx needs the onnx package to write its stand-in model (pip install onnx)"
        ) from None
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 1], [2.0, 0.0, 0.0, 0.0])
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [-2.0])
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["weights"]),
        ],
        "candidate_weights",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", "m", 4])],
        [helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["n", "m", 1])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def new_submission(name: str, framework: str, into: Path | str = "submissions") -> Path:
    """Write the folder ``<into>/<name>/`` for ``framework`` (see the module docstring).

    Raises
    ------
    TemplateError
        A bad name (lower case letter first, then lower case letters, digits, ``-``, ``_``; a
        Python keyword after ``-`` -> ``_`` is refused), a name of one of the repository's
        entries, an unknown framework, or an existing folder.
    """
    module = module_name(name)
    if not _NAME.match(name) or not module.isidentifier() or keyword.iskeyword(module):
        raise TemplateError(
            f"bad name {name!r}: use a lower case letter, then lower case letters, digits, "
            "'-' or '_' (e.g. my-met)"
        )
    if framework not in FRAMEWORKS:
        raise TemplateError(f"--framework {framework!r} is not one of {', '.join(FRAMEWORKS)}")
    folder = Path(into) / name
    if folder.exists():
        raise TemplateError(f"{folder} exists already; choose another name or remove it")
    repository = repository_submissions()
    if repository is not None:
        owner = _repository_names(repository).get(name)
        if owner is not None:
            raise TemplateError(
                f"the name {name!r} belongs to the repository's submission {owner}; choose another"
            )
    cls = class_name(name)
    weights = 'weights = ["weights/model.onnx"]\n' if framework == "onnx" else ""
    weights_note = (
        "- `weights/model.onnx`: a stand-in model (input `features`, output `weights`); export\n"
        "  yours under the same name, or change `weights` and `weights_file`.\n"
        if framework == "onnx"
        else ""
    )
    arguments = "weights_dir=str(FOLDER)" if framework == "onnx" else ""
    model = _onnx_model() if framework == "onnx" else b""
    values = {
        "name": name, "module": module, "cls": cls, "framework": framework,
        "folder": folder.as_posix(), "features": _FEATURES, "weights": weights,
        "weights_note": weights_note, "arguments": arguments,
    }  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "metbench.toml").write_text(_MANIFEST.format(**values), encoding="utf-8")
    (folder / f"{module}.py").write_text(_CODE[framework].format(**values), encoding="utf-8")
    (folder / "README.md").write_text(_README.format(**values), encoding="utf-8")
    (folder / f"test_{module}.py").write_text(_TEST.format(**values), encoding="utf-8")
    if model:
        (folder / "weights").mkdir()
        (folder / "weights" / "model.onnx").write_bytes(model)
    return folder

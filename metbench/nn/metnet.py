"""METNet and METNetSig (ATLAS; mattcleigh/METNetwork): an MLP that combines the object-based MET
working points into one estimate, in PyTorch.

Inputs (:func:`metnet_features`), after the original's choice of variables as far as metbench's
event model has them: for each working point (Loose, Tight, Tighter, Tenacious) the final MET
(ET, EX, EY, SumET, significance ET/sqrt(SumET)), its jet term (ET, EX, EY, SumET) and soft-track
term (ET, EX, EY, SumET) and the number of jets; the lepton term (ET, EX, EY, SumET) and the number of
leptons; the track MET (charged candidates from the primary vertex); the mean pileup mu and the
number of reconstructed vertices. Every (EX, EY) pair is rotated into the frame where the Tight MET
points along +x (the Tight EX, EY themselves are dropped, as in the original), and the network's
output is rotated back. Inputs and targets are standardised with statistics stored in the
network's buffers.

Network: blocks of Linear -> LeakyReLU(0.1) -> LayerNorm and a linear output of (px, py).

METNetSig adds a second MLP of the same blocks that gives log sigma, the resolution of each
component of the MET (an isotropic covariance sigma^2 I), from the inputs in
:data:`RESOLUTION_FEATURES` only (sum ET of every term, object counts, mu, N_PV: nothing that
measures the MET itself). Three choices bring its pulls close to Gaussian at every true MET (see
the entry's README for the measurements):

- its sigma is trained after the MET, by the Gaussian likelihood of the trained MET's error
  (two stages, each with its own early stopping), and it cannot see the MET: given its inputs
  the error is then the resolution, whatever the true MET. With the MET among its inputs, an
  event with a large measured MET is either real MET (error ~0) or fake (error ~MET), and one
  Gaussian cannot describe that two-peaked error;
- the MET estimate is trained with each event weighted by the inverse population of its bin of
  true |MET| (``flat_truth``): flat in the truth, it is not pulled towards 0 GeV, the most common
  true MET, so its error does not depend on the truth (a response near 1 from 80 GeV on). Trained
  on the natural population, events with real MET are estimated short of the truth and the
  errors are biased where the MET is large;
- one sigma for both components: where the true MET is 0 the error lies along the estimate, where
  it is real in every direction, and a network that cannot tell the two apart (as it should not)
  learns a sigma along the estimate too large for the one and one across it too small for the
  other (tried: 1-sigma coverage 0.73 against 0.70 isotropic on the validation split).
"""

from __future__ import annotations

import io
from typing import Any, Final

import numpy as np

from metbench.events import EventBatch
from metbench.physics.objects import WORKING_POINTS, met_terms

__all__ = [
    "DISTRIBUTION_LOSSES",
    "FEATURE_NAMES",
    "N_TRUTH_BINS",
    "RESOLUTION_FEATURES",
    "TRUTH_BIN_WIDTH",
    "METNetEstimator",
    "METNetSigEstimator",
    "METNetSigTEstimator",
    "build_network",
    "distribution_distance",
    "flat_truth_weights",
    "metnet_features",
    "resolution_nll",
    "rotate",
    "truth_bin",
]

_TERMS: Final = ("", "_jets", "_soft")


def _feature_names() -> tuple[str, ...]:
    names: list[str] = []
    for wp in WORKING_POINTS:
        for term in _TERMS:
            xy = ("ex", "ey") if not (wp == "tight" and term == "") else ()
            names += [f"{wp}{term}_et", *(f"{wp}{term}_{c}" for c in xy), f"{wp}{term}_sumet"]
        names += [f"{wp}_sig", f"{wp}_n_jets"]
    names += ["leptons_et", "leptons_ex", "leptons_ey", "leptons_sumet", "n_leptons"]
    names += ["track_et", "track_ex", "track_ey", "track_sumet", "mu", "n_pv"]
    return tuple(names)


#: The network's input variables, in order.
FEATURE_NAMES: Final[tuple[str, ...]] = _feature_names()

#: The inputs of METNetSig's resolution network: what sets the size of the MET's error (the sum ET
#: of every term, the lepton ET, the jet and lepton counts, mu, N_PV), none of the MET vectors or
#: magnitudes.
RESOLUTION_FEATURES: Final[tuple[str, ...]] = tuple(
    name
    for name in FEATURE_NAMES
    if name.endswith(("_sumet", "_n_jets")) or name in ("leptons_et", "n_leptons", "mu", "n_pv")
)

#: Bin width [GeV] of the true |MET| for ``flat_truth``: bin 0 holds |t| = 0 exactly (processes
#: without invisible particles), then 10-GeV bins, the last one open from 400 GeV.
TRUTH_BIN_WIDTH: Final[float] = 10.0
#: Number of those bins.
N_TRUTH_BINS: Final = 42


def truth_bin(t: Any) -> Any:
    """The ``flat_truth`` bin (a ``torch.long`` tensor) of the true |MET| ``t`` [GeV] (a tensor):
    0 where ``t == 0``, else ``1 + min(floor(t / 10 GeV), 40)``."""
    import torch

    above = 1 + (t / TRUTH_BIN_WIDTH).floor().clamp(max=N_TRUTH_BINS - 2).long()
    return torch.where(t == 0, torch.zeros_like(above), above)


def rotate(xy: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate ``(..., 2)`` vectors by ``angle`` [rad] (per event, shape ``(n,)``)."""
    c, s = np.cos(angle), np.sin(angle)
    c, s = c.reshape(c.shape + (1,) * (xy.ndim - 2)), s.reshape(s.shape + (1,) * (xy.ndim - 2))
    return np.stack([c * xy[..., 0] - s * xy[..., 1], s * xy[..., 0] + c * xy[..., 1]], axis=-1)


def metnet_features(batch: EventBatch) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of METNet for a batch.

    Returns
    -------
    features
        ``(n, len(FEATURE_NAMES))`` float32, vectors rotated by ``-tight_phi``.
    tight_phi
        ``(n,)`` azimuth of the Tight MET [rad]: rotate the output by it.
    """
    terms = met_terms(batch)
    pt, phi = batch.feature("pt"), batch.feature("phi")
    track_sel = (batch.feature("charge") != 0) & (batch.feature("from_pv") >= 2) & batch.mask
    track_px = -(pt * np.cos(phi) * track_sel).sum(axis=1)
    track_py = -(pt * np.sin(phi) * track_sel).sum(axis=1)
    terms["track"] = np.stack([track_px, track_py], axis=1).astype(np.float64)
    terms["track_sumet"] = (pt * track_sel).sum(axis=1).astype(np.float64)
    tight_phi = np.arctan2(terms["tight"][:, 1], terms["tight"][:, 0])
    columns: dict[str, np.ndarray] = {}

    def vector(name: str, sumet: np.ndarray) -> None:
        v = rotate(terms[name], -tight_phi)
        columns[f"{name}_et"] = np.hypot(v[:, 0], v[:, 1])
        columns[f"{name}_ex"], columns[f"{name}_ey"] = v[:, 0], v[:, 1]
        columns[f"{name}_sumet"] = sumet

    for wp in WORKING_POINTS:
        vector(f"{wp}_jets", terms[f"{wp}_jets_sumet"])
        vector(f"{wp}_soft", terms[f"{wp}_soft_sumet"])
        total = terms["leptons_sumet"] + terms[f"{wp}_jets_sumet"] + terms[f"{wp}_soft_sumet"]
        vector(wp, total)
        columns[f"{wp}_sig"] = columns[f"{wp}_et"] / np.sqrt(np.maximum(total, 1.0))
        columns[f"{wp}_n_jets"] = terms[f"{wp}_n_jets"]
    vector("leptons", terms["leptons_sumet"])
    columns["n_leptons"] = terms["n_leptons"]
    vector("track", terms["track_sumet"])
    columns["mu"] = batch.event["mu"].astype(np.float64)
    columns["n_pv"] = batch.event["n_pv"].astype(np.float64)
    features = np.stack([columns[name] for name in FEATURE_NAMES], axis=1)
    return features.astype(np.float32), tight_phi


def build_network(
    n_in: int,
    widths: tuple[int, ...] = (256, 256, 256, 256, 256),
    significance: bool = False,
    student_t: bool = False,
) -> Any:
    """The METNet MLP (a ``torch.nn.Module``).

    Its ``forward(x)`` takes rotated, *unstandardised* features ``(n, n_in)`` and returns
    ``(n, 2)`` rotated (px, py) [GeV], or, for METNetSig, ``(n, 3)`` with sigma [GeV], the
    resolution of each component of that (px, py), from a second MLP that sees only the
    :data:`RESOLUTION_FEATURES` (``n_in`` must then be ``len(FEATURE_NAMES)``), and with
    ``student_t`` ``(n, 4)``: also the degrees of freedom nu = 2 + exp(a) > 2 of a Student t error
    of covariance sigma^2 I, from the same MLP; the standardisation lives in the buffers
    ``x_mean, x_std, y_mean, y_std``.
    """
    import torch
    from torch import nn

    def mlp(n: int, n_out: int) -> nn.Sequential:
        blocks: list[nn.Module] = []
        for width in widths:
            blocks += [nn.Linear(n, width), nn.LeakyReLU(0.1), nn.LayerNorm(width)]
            n = width
        return nn.Sequential(*blocks, nn.Linear(n, n_out))

    resolution_columns = [FEATURE_NAMES.index(name) for name in RESOLUTION_FEATURES]

    class METNet(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.mlp = mlp(n_in, 2)
            self.significance = significance
            self.register_buffer("x_mean", torch.zeros(n_in))
            self.register_buffer("x_std", torch.ones(n_in))
            self.register_buffer("y_mean", torch.zeros(2))
            self.register_buffer("y_std", torch.ones(2))
            if significance:
                self.sigma_mlp = mlp(len(resolution_columns), 2 if student_t else 1)

        def standardised(self, x: torch.Tensor) -> torch.Tensor:
            """The raw output: standardised (px, py) [and log sigma in units of the mean of
            ``y_std`` [and a = log(nu - 2)]]."""
            xs = (x - self.x_mean) / self.x_std
            met = self.mlp(xs)
            if not self.significance:
                return met
            log_sigma = self.sigma_mlp(xs[:, resolution_columns]).clamp(-10.0, 10.0)
            return torch.cat([met, log_sigma], dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.standardised(x)
            met = out[:, :2] * self.y_std + self.y_mean
            if not self.significance:
                return met
            sigma = torch.exp(out[:, 2:3]) * self.y_std.mean()
            return torch.cat([met, sigma, 2.0 + torch.exp(out[:, 3:])], dim=1)

    return METNet()


def _rotated_features(
    source: Any, per_process: int | None, chunk: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Features and rotated true MET of a (capped) split, computed in chunks."""
    from metbench.data.source import to_event_batch
    from metbench.nn.training import read_sample

    arr = read_sample(source, per_process)
    xs, ys = [], []
    for i in range(0, len(arr), chunk):
        batch = to_event_batch(arr[i : i + chunk], source.max_particles)
        x, phi = metnet_features(batch.for_estimator())
        truth = np.stack([batch.truth["gen_met_x"], batch.truth["gen_met_y"]], axis=1)
        xs.append(x)
        ys.append(rotate(truth.astype(np.float64), -phi).astype(np.float32))
    return np.concatenate(xs), np.concatenate(ys)


#: The original's distribution terms (``METNetwork/Resources/Utils.py``, ``get_loss``): geomloss
#: ``SamplesLoss`` name and options, applied to standardised MET vectors.
DISTRIBUTION_LOSSES: Final[dict[str, tuple[str, dict[str, float]]]] = {
    "sinkhorn": ("sinkhorn", {"p": 1, "blur": 0.01}),
    "sinkhorn2": ("sinkhorn", {"p": 2, "blur": 0.01}),
    "energy": ("energy", {}),
}


def distribution_distance(name: str) -> Any:
    """``distance(predicted, true) -> scalar tensor`` between two ``(n, 2)`` point clouds (one
    batch of MET vectors each, equal weights), the geomloss ``SamplesLoss`` named in
    :data:`DISTRIBUTION_LOSSES`: ``sinkhorn`` is the debiased Sinkhorn divergence with the
    Euclidean cost (close to the Wasserstein-1 distance for a small blur), ``energy`` the energy
    distance."""
    from geomloss import SamplesLoss

    loss, options = DISTRIBUTION_LOSSES[name]
    return SamplesLoss(loss, backend="tensorized", **options)


def flat_truth_weights(t: Any) -> Any:
    """The weight of each :func:`truth_bin` (a ``(N_TRUTH_BINS,)`` float32 tensor) that makes the
    training events with true |MET| ``t`` [GeV] (a tensor) flat in the truth: every populated bin
    gets the same total weight, empty bins weight 0, and the mean weight per event is 1."""
    import torch

    counts = torch.bincount(truth_bin(t), minlength=N_TRUTH_BINS).double()
    populated = counts > 0
    per_bin = torch.where(populated, len(t) / (populated.sum() * counts.clamp(min=1)), 0.0)
    return per_bin.float()


class METNetEstimator:
    """METNet as a metbench entry.

    Parameters
    ----------
    weights_file
        The network's ``state_dict`` (``.pt``), relative to the submission folder; the ONNX
        export sits beside it with the suffix ``.onnx``.
    widths
        Hidden layer widths.
    runtime
        ``torch`` or ``onnx`` (onnxruntime on the exported graph).
    huber_delta
        Huber loss threshold of the MET, in standardised units.
    flat_truth
        Weight each training event by the inverse number of training events in its bin of true
        |MET| (:func:`truth_bin`), so that the MET is learned flat in the truth (METNetSig's
        default; METNet's committed weights were trained without).
    distribution_loss, distribution_weight
        The original's optional distribution-matching term: a geomloss distance between the
        batch's predicted and true (standardised, rotated) MET vectors taken as two point clouds,
        added to the per-event loss with this weight (see :data:`DISTRIBUTION_LOSSES`; ``None``
        or weight 0: no term, as for the committed weights).
    weights_dir, device
        Given by the harness.
    """

    significance = False
    student_t = False
    #: Parameters that change how the trained network is run, not what is trained.
    inference_parameters = ("runtime",)

    def __init__(
        self,
        weights_file: str = "weights/metnet.pt",
        widths: list[int] | None = None,
        runtime: str = "torch",
        huber_delta: float = 1.0,
        distribution_loss: str | None = None,
        distribution_weight: float = 0.0,
        flat_truth: bool = False,
        weights_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        from pathlib import Path

        from metbench.nn.onnx_runtime import OnnxRunner, check_runtime

        check_runtime(runtime)
        if distribution_loss is not None:
            import importlib.util

            if distribution_loss not in DISTRIBUTION_LOSSES:
                raise ValueError(
                    f"distribution_loss {distribution_loss!r} is not one of "
                    f"{', '.join(DISTRIBUTION_LOSSES)}"
                )
            if importlib.util.find_spec("geomloss") is None:
                raise ValueError(
                    f"distribution_loss {distribution_loss!r} needs geomloss: "
                    "pip install 'metbench[torch]' (or geomloss)"
                )
        if distribution_weight < 0:
            raise ValueError(f"distribution_weight must be >= 0, got {distribution_weight}")
        self.distribution_loss = distribution_loss
        self.distribution_weight = float(distribution_weight)
        self.folder = Path(weights_dir) if weights_dir else Path.cwd()
        self.weights_path = self.folder / weights_file
        self.onnx_path = self.weights_path.with_suffix(".onnx")
        self.widths = tuple(widths or (256, 256, 256, 256, 256))
        self.runtime, self.device, self.huber_delta = runtime, device, float(huber_delta)
        self.flat_truth = bool(flat_truth)
        self._truth_weights: Any = None  # set by fit when flat_truth
        self.network = build_network(
            len(FEATURE_NAMES), self.widths, self.significance, self.student_t
        )
        self._onnx = OnnxRunner(self.onnx_path)
        self._cache: tuple[bytes, np.ndarray, np.ndarray] | None = None
        # weights of another architecture (an earlier version of the entry) are no error until
        # the network is used: a training replaces them
        self._unusable_weights: str | None = None
        if self.weights_path.is_file():
            import torch

            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            try:
                self.network.load_state_dict(state)
            except RuntimeError as error:
                self._unusable_weights = str(error).splitlines()[0]
        self.network.eval()
        if device == "cuda":
            self.network.to("cuda")

    # inference -------------------------------------------------------------------------------

    def _outputs(self, batch: EventBatch, reuse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(network output in the rotated frame, tight_phi).

        ``reuse``: take the outputs of the last :meth:`predict` if it was on the same batch (the
        harness asks for the covariance and the degrees of freedom right after the MET).
        :meth:`predict` itself never reuses, so timing repeated ``predict`` calls measures the
        full computation every time."""
        key = batch.event["event_id"].tobytes()
        if reuse and self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        if not self.weights_path.is_file():
            raise FileNotFoundError(
                f"{self.weights_path} does not exist: train the entry (metbench train) and adopt the training (metbench adopt)"
            )
        if self._unusable_weights is not None:
            raise ValueError(
                f"{self.weights_path} does not fit this version of the network "
                f"({self._unusable_weights.rstrip(':')}): train the entry (metbench train) and "
                "adopt the training (metbench adopt)"
            )
        x, phi = metnet_features(batch)
        if self.runtime == "onnx":
            out = self._onnx({"features": x})
        else:
            import torch

            with torch.no_grad():
                param = next(self.network.parameters())
                out = self.network(torch.as_tensor(x, device=param.device)).cpu().numpy()
        self._cache = (key, out.astype(np.float64), phi)
        return self._cache[1], phi

    def predict(self, batch: EventBatch) -> np.ndarray:
        out, phi = self._outputs(batch)
        return rotate(out[:, :2], phi)

    # training --------------------------------------------------------------------------------

    def _loss(self) -> Any:
        import torch

        huber = torch.nn.HuberLoss(delta=self.huber_delta, reduction="none")
        distance = (
            distribution_distance(self.distribution_loss)
            if self.distribution_loss and self.distribution_weight > 0
            else None
        )

        def loss(model: Any, x: Any, y: Any) -> Any:
            out = model.standardised(x)
            y_std = (y - model.y_mean) / model.y_std
            per_event = huber(out[:, :2], y_std).mean(1)
            if self._truth_weights is not None:
                per_event = per_event * self._truth_weights[truth_bin(torch.linalg.norm(y, dim=1))]
            total = per_event.mean()
            if distance is None:
                return total
            return total + self.distribution_weight * distance(out[:, :2], y_std)

        return loss

    def fit(self, train: Any, val: Any, settings: Any) -> Any:
        """Compute (or reuse) the features, set the standardisation, train (METNetSig: the MET,
        checkpoints in ``met/``, then the resolution network with the MET fixed, ``resolution/``)."""
        from dataclasses import replace

        import torch

        from metbench.data.store import atomic_write_bytes
        from metbench.nn.torch_training import fit_torch
        from metbench.nn.training import describe

        ckpt = settings.checkpoint_dir
        ckpt.mkdir(parents=True, exist_ok=True)
        caps = [settings.train_events_per_process, settings.val_events_per_process]
        # shared by METNet and METNetSig trained on the same dataset and caps
        cache = ckpt.parent / f"metnet-features-{caps[0] or 'all'}-{caps[1] or 'all'}.npz"
        if cache.is_file():
            saved = np.load(cache)
            xt, yt, xv, yv = (saved[k] for k in ("xt", "yt", "xv", "yv"))
        else:
            print("computing the working-point features (fastjet) ...", flush=True)
            xt, yt = _rotated_features(train, caps[0])
            xv, yv = _rotated_features(val, caps[1])
            buffer = io.BytesIO()
            np.savez(buffer, xt=xt, yt=yt, xv=xv, yv=yv)
            atomic_write_bytes(cache, buffer.getvalue())
        print(f"train: {len(xt)} events, val: {len(xv)} events", flush=True)
        torch.manual_seed(settings.seed)
        net = build_network(len(FEATURE_NAMES), self.widths, self.significance, self.student_t)
        net.x_mean.copy_(torch.as_tensor(xt.mean(0)))
        net.x_std.copy_(torch.as_tensor(np.maximum(xt.std(0), 1e-6)))
        net.y_mean.copy_(torch.as_tensor(yt.mean(0)))
        net.y_std.copy_(torch.as_tensor(yt.std(0)))
        if self.flat_truth:
            self._truth_weights = flat_truth_weights(torch.linalg.norm(torch.as_tensor(yt), dim=1))
        tensors = [torch.as_tensor(a) for a in (xt, yt, xv, yv)]

        def train_batches(epoch: int) -> Any:
            generator = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
            order = torch.randperm(len(xt), generator=generator)
            for i in range(0, len(xt), settings.batch_size):
                idx = order[i : i + settings.batch_size]
                yield tensors[0][idx], tensors[1][idx]

        def val_batches() -> Any:
            for i in range(0, len(xv), 4096):
                yield tensors[2][i : i + 4096], tensors[3][i : i + 4096]

        if not self.significance:
            state = fit_torch(net, self._loss(), train_batches, val_batches, settings)
            self._history = {"settings": describe(settings), **vars(state)}
        else:  # the MET, then the resolution around it, each with its own early stopping
            met_state = fit_torch(
                net, self._loss(), train_batches, val_batches,
                replace(settings, checkpoint_dir=ckpt / "met"),
                parameter_groups=[{"params": list(net.mlp.parameters())}],
            )  # fmt: skip
            state = fit_torch(
                net, lambda model, x, y: resolution_nll(model, model.standardised(x), y),
                train_batches, val_batches,
                replace(settings, checkpoint_dir=ckpt / "resolution", init_weights=None),
                parameter_groups=[{"params": list(net.sigma_mlp.parameters())}],
            )  # fmt: skip
            self._history = {"settings": describe(settings), "met": vars(met_state), **vars(state)}
        self.network = net.eval()
        self._cache, self._unusable_weights = None, None
        return state

    def export_onnx(self, path: Any) -> None:
        """Export the network (rotated features in, rotated output out) to ONNX."""
        import torch

        from metbench.nn.onnx_runtime import export_onnx

        export_onnx(
            self.network, (torch.zeros((2, len(FEATURE_NAMES))),), ["features"], ["met"],
            ({0: torch.export.Dim("n")},), path,
        )  # fmt: skip

    def save(self, folder: Any) -> None:
        """The state dict, its ONNX export and the training history."""
        from metbench.nn.torch_training import save_weights_and_history

        target = folder / self.weights_path.relative_to(self.folder)
        save_weights_and_history(self.network, target, getattr(self, "_history", None))
        self.export_onnx(target.with_suffix(".onnx"))


def resolution_nll(model: Any, out: Any, y: Any) -> Any:
    """METNetSig's negative log-likelihood of the error ``e`` of the *detached* MET estimate,
    isotropic in two dimensions, with the network's log sigma ``out[:, 2]`` in units of the mean
    ``y_std`` (``y``: the true MET [GeV]); per event, up to a constant:

    - Gaussian (``out`` has 3 columns): ``|e|^2 / (2 sigma^2) + 2 log sigma``;
    - Student t of covariance ``sigma^2 I`` and nu = 2 + exp(``out[:, 3]``) degrees of freedom
      (scale ``s^2 = sigma^2 (nu - 2) / nu``; in two dimensions the normalisation's Gamma
      functions cancel): ``2 log s + (nu + 2) / 2 log(1 + |e|^2 / (nu s^2))``, which tends to the
      Gaussian's as nu grows.
    """
    import torch

    met = out[:, :2].detach() * model.y_std + model.y_mean
    error2 = ((met - y) ** 2).sum(1) / model.y_std.mean() ** 2
    log_sigma = out[:, 2]
    if out.shape[1] < 4:
        return (0.5 * error2 * torch.exp(-2 * log_sigma) + 2 * log_sigma).mean()
    nu_minus_2 = torch.exp(out[:, 3])
    nu = nu_minus_2 + 2.0
    log_scale2 = 2 * log_sigma + torch.log(nu_minus_2) - torch.log(nu)
    return (
        log_scale2 + 0.5 * (nu + 2.0) * torch.log1p(error2 * torch.exp(-2 * log_sigma) / nu_minus_2)
    ).mean()


class METNetSigEstimator(METNetEstimator):
    """METNetSig: METNet trained flat in the true MET, with a second network for the resolution
    (one sigma per component, from the :data:`RESOLUTION_FEATURES`) trained afterwards by the
    Gaussian likelihood of the estimate's error; gives the harness a covariance."""

    significance = True

    def __init__(
        self, weights_file: str = "weights/metnetsig.pt", flat_truth: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(weights_file=weights_file, flat_truth=flat_truth, **kwargs)

    def predict_uncertainty(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2, 2)`` covariance [GeV^2]: sigma^2 times the unit matrix."""
        out, _ = self._outputs(batch, reuse=True)
        return out[:, 2, None, None] ** 2 * np.eye(2)


class METNetSigTEstimator(METNetSigEstimator):
    """METNetSig whose error model is a bivariate Student t: the resolution network also gives
    each event's degrees of freedom nu > 2, trained with sigma by the t's likelihood
    (:func:`resolution_nll`); the harness scores the coverage of the t's own regions
    (:class:`metbench.estimators.protocol.StudentTEstimator`)."""

    student_t = True

    def predict_dof(self, batch: EventBatch) -> np.ndarray:
        """``(n,)`` degrees of freedom nu > 2 of each event's error."""
        out, _ = self._outputs(batch, reuse=True)
        return np.asarray(out[:, 3])

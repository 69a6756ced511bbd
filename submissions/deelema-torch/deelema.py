"""DeeLeMa as a metbench entry: the network of :mod:`metbench.nn.deelema` on truth-matched b quarks
and leptons, constrained to the PUPPI MET."""

from __future__ import annotations

from typing import Any

import numpy as np

from metbench.events import EventBatch
from metbench.nn.deelema import SCALE, build_deelema, deelema_inputs, fit_deelema, zflip
from metbench.physics.puppi_met import stored_puppi_met

__all__ = ["DeeLeMaEstimator"]


class DeeLeMaEstimator:
    """DeeLeMa as a metbench entry (truth-matched b quarks and leptons; MET from PUPPI).

    Its MET is the PUPPI MET it is constrained to (the sum of its two neutrinos); its neutrinos
    go to the kinematic-reconstruction task.

    Parameters
    ----------
    weights_file
        The ``state_dict`` (``.pt``), relative to the submission folder; the ONNX export sits
        beside it with the suffix ``.onnx``.
    hidden, layers
        Width and depth of the MLP (the original's: 256, 5).
    canonical
        Run the MLP in each event's canonical frame (exactly z-mirror, rotation and boost
        equivariant; see :mod:`metbench.nn.deelema`). The weights must have been trained so.
    boost
        With ``canonical``: include the longitudinal boost in the frame (default) or not
        (rotation and z-mirror only; the pz bias stays removed). The weights must have been
        trained so.
    zflip
        Training: add the z-mirrored copy of every training event (pz -> -pz of all inputs).
    train_met
        Training: the MET the neutrinos are constrained to, ``puppi`` (as in prediction) or
        ``neutrinos`` (the sum of the two truth neutrinos' px, py: the closure test of the method).
    runtime
        ``torch``, or ``onnx`` (onnxruntime on the export).
    weights_dir, device
        Given by the harness.
    """

    #: Parameters that change how the trained network is run, not what is trained.
    inference_parameters = ("runtime",)

    def __init__(
        self,
        weights_file: str = "weights/deelema.pt",
        hidden: int = 256,
        layers: int = 5,
        canonical: bool = False,
        boost: bool = True,
        zflip: bool = True,
        train_met: str = "puppi",
        runtime: str = "torch",
        weights_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        from pathlib import Path

        import torch

        from metbench.nn.onnx_runtime import OnnxRunner, check_runtime

        self.runtime = check_runtime(runtime)

        self.folder = Path(weights_dir) if weights_dir else Path.cwd()
        self.weights_path = self.folder / weights_file
        if train_met not in ("puppi", "neutrinos"):
            raise ValueError(f"train_met must be 'puppi' or 'neutrinos', not {train_met!r}")
        self.hidden, self.layers, self.canonical = hidden, layers, bool(canonical)
        self.boost = bool(boost)
        self.zflip, self.train_met = bool(zflip), train_met
        self.network = build_deelema(hidden, layers, canonical=self.canonical, boost=self.boost)
        # weights of another architecture (an earlier version of the entry) are no error until
        # the network is used: a training replaces them
        self._unusable_weights: str | None = None
        if self.weights_path.is_file():
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            try:
                self.network.load_state_dict(state)
            except RuntimeError as error:
                self._unusable_weights = str(error).splitlines()[0].rstrip(":")
        self.network.eval()
        self._onnx = OnnxRunner(self.weights_path.with_suffix(".onnx"))

    def predict(self, batch: EventBatch) -> np.ndarray:
        return stored_puppi_met(batch)

    def predict_neutrinos(self, batch: EventBatch) -> np.ndarray:
        import torch

        if not self.weights_path.is_file():
            raise FileNotFoundError(f"{self.weights_path} does not exist: run metbench train")
        if self._unusable_weights is not None:
            raise ValueError(
                f"{self.weights_path} does not fit this version of the network "
                f"({self._unusable_weights}): train the entry (metbench train) and adopt the "
                "training (metbench adopt)"
            )
        x, usable = deelema_inputs(batch, stored_puppi_met(batch))
        if self.runtime == "onnx":
            q = self._onnx({"inputs": x}).astype(np.float64) * SCALE
        else:
            with torch.no_grad():
                q = self.network(torch.as_tensor(x)).numpy().astype(np.float64) * SCALE
        q[~usable] = np.nan
        return q

    def _sample(self, source: Any, cap: int | None) -> np.ndarray:
        """The usable tt -> 2l2nu events' inputs, with the MET of ``train_met``."""
        from metbench.data.source import EventSource, to_event_batch
        from metbench.nn.training import read_sample

        ttbar = EventSource(source.folder, source.split, processes=["ttbar_2l2nu"])
        arr = read_sample(ttbar, cap)
        xs = []
        for i in range(0, len(arr), 256):
            batch = to_event_batch(arr[i : i + 256])
            if self.train_met == "neutrinos":
                nu = batch.truth["truth_neutrinos"]
                met = nu[:, 0, :2] + nu[:, 1, :2]
                x, usable = deelema_inputs(batch, np.nan_to_num(met))
                usable &= np.isfinite(met).all(1)
            else:
                x, usable = deelema_inputs(batch, stored_puppi_met(batch))
            xs.append(x[usable])
        return np.concatenate(xs)

    def fit(self, train: Any, val: Any, settings: Any) -> Any:
        """Unsupervised: the mass-consistency loss only (the neutrino truth enters only as the
        MET with ``train_met="neutrinos"``); the learned masses are recorded per epoch. The
        original's optimiser: Adam at 1e-2 (unless ``--learning-rate``), decayed per epoch as
        (1 - epoch / epochs)^2 to zero at ``--epochs``."""
        import torch

        from metbench.nn.training import describe

        xt = torch.as_tensor(self._sample(train, settings.train_events_per_process))
        xv = torch.as_tensor(self._sample(val, settings.val_events_per_process))
        print(f"train: {len(xt)} tt events, val: {len(xv)}", flush=True)
        torch.manual_seed(settings.seed)
        net = build_deelema(self.hidden, self.layers, canonical=self.canonical, boost=self.boost)
        if self.zflip:
            xt = torch.cat([xt, zflip(xt)])
        state = fit_deelema(net, xt, xv, settings)
        self.network = net.eval()
        m_w, m_top = net.masses()
        print(f"learned masses: m_W = {m_w:.1f} GeV, m_top = {m_top:.1f} GeV", flush=True)
        self._history = {
            "settings": describe(settings), "learned_masses": {"w": m_w, "top": m_top},
            **vars(state),
        }  # fmt: skip
        return state

    def save(self, folder: Any) -> None:
        """The state dict and the training history (with the learned masses)."""
        from metbench.nn.torch_training import save_weights_and_history

        target = folder / self.weights_path.relative_to(self.folder)
        save_weights_and_history(self.network, target, getattr(self, "_history", None))
        self.export_onnx(target.with_suffix(".onnx"))

    def export_onnx(self, path: Any) -> None:
        """Export the network ((n, 18) inputs in, (n, 2, 3) neutrino momenta out) to ONNX."""
        import torch

        from metbench.nn.onnx_runtime import export_onnx

        export_onnx(
            self.network, (torch.zeros((2, 18)),), ["inputs"], ["neutrinos"],
            ({0: torch.export.Dim("n")},), path,
        )  # fmt: skip

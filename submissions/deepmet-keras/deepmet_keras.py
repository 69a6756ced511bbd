"""DeepMET (Keras 3) as a metbench entry: predict, and ``fit`` for ``metbench train``.

The network is :func:`metbench.nn.deepmet_network.build_model`; inputs are prepared by
:func:`metbench.nn.deepmet_inputs.producer_inputs` as CMSSW's DeepMETProducer does. See README.md.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from metbench.data.source import EventSource, to_event_batch
from metbench.data.store import atomic_write_bytes
from metbench.events import EventBatch
from metbench.nn.deepmet_inputs import MAX_CANDIDATES, NORM, producer_inputs
from metbench.nn.schedules import triangular2_learning_rate
from metbench.nn.training import (
    TrainSettings,
    TrainState,
    bucketed_batches,
    describe,
    load_init_weights,
    read_sample,
)

#: The original's cyclic learning rate (triangular2): lowest rate and first peak.
CYCLIC_BASE_LR, CYCLIC_MAX_LR = 3e-4, 1e-3

#: Columns a training sample needs.
COLUMNS = ["pf", "event_id", "mu", "n_pv", "process", "n_pu", "gen_met_x", "gen_met_y",
           "gen_qt_x", "gen_qt_y"]  # fmt: skip


def network_inputs(batch: EventBatch, pad_to: int | None = None) -> list[np.ndarray]:
    """``[continuous, cat0, cat1, cat2, mask]`` for the Keras network."""
    cont, charge, pdg, from_pv = producer_inputs(batch, pad_to=pad_to)
    mask = np.zeros(charge.shape, np.float32)
    n = min(batch.max_particles, charge.shape[1])
    mask[:, :n] = batch.mask[:, :n]
    return [cont, charge.astype(np.int32), pdg.astype(np.int32), from_pv.astype(np.int32), mask]


class DeepMetKeras:
    """DeepMET, Keras 3 on TensorFlow.

    Parameters
    ----------
    weights_file
        Trained weights (``.weights.h5``), relative to the submission folder.
    loss
        ``resolution`` (MSE) or ``response`` (MSE plus the binned response term).
    response_weight
        Weight of the response term (``loss = "response"``).
    official_graph
        Instead of ``weights``: one of CMS's graphs (relative to the project root), run with
        4500 candidates and padding counted, as the producer does.
    chunk
        Events per network call (a large batch is run in chunks, so memory stays bounded).
    weights_dir
        The submission folder (given by the harness).
    device
        ``cpu`` or ``cuda`` (given by the harness).
    """

    def __init__(
        self,
        weights_file: str = "weights/resolution.weights.h5",
        loss: str = "resolution",
        response_weight: float = 5.0,
        official_graph: str | None = None,
        chunk: int = 128,
        weights_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        from metbench.nn.deepmet_network import build_model, load_official_weights

        if loss not in ("resolution", "response"):
            raise ValueError(f"loss must be 'resolution' or 'response', not {loss!r}")
        self.folder = Path(weights_dir) if weights_dir else Path(__file__).parent
        self.loss_name, self.response_weight = loss, float(response_weight)
        self.chunk = int(chunk)
        self.weights_path = self.folder / weights_file
        self.official = official_graph is not None
        if official_graph is not None:
            from metbench.nn.deepmet_graph import graph_weights

            graph = Path(official_graph)
            if not graph.is_absolute():
                graph = self.folder.parents[1] / graph
            self.model = build_model(MAX_CANDIDATES, count_padding=True)
            load_official_weights(self.model, graph_weights(graph))
        else:
            self.model = build_model(None)
            if self.weights_path.is_file():
                self.model.load_weights(self.weights_path)
        self.trained = self.official or self.weights_path.is_file()

    def predict(self, batch: EventBatch) -> np.ndarray:
        if not self.trained:
            raise FileNotFoundError(
                f"{self.weights_path} does not exist: train it first with metbench train"
            )
        import keras

        outputs = []
        for start in range(0, len(batch), self.chunk):  # bounded memory at any batch size
            part = batch.take(slice(start, start + self.chunk))
            if self.official:  # every pad of 4500 takes part, as in CMSSW
                inputs = network_inputs(part, MAX_CANDIDATES)
                inputs[4] = np.ones_like(inputs[4])
            else:  # padding plays no role: cut it to the longest event
                longest = max(int(part.mask.sum(axis=1).max(initial=0)), 1)
                inputs = network_inputs(part.hardest(longest), None)
            outputs.append(keras.ops.convert_to_numpy(self.model(inputs, training=False)))
        return np.concatenate(outputs).astype(np.float64) * NORM

    # training ------------------------------------------------------------------------------

    def _loss(self) -> Any:
        from metbench.nn.deepmet_network import resolution_loss, response_loss

        if self.loss_name == "response":
            return response_loss(self.response_weight)
        return resolution_loss

    def fit(self, train: EventSource, val: EventSource, settings: TrainSettings) -> TrainState:
        """Train from PF-MET initialisation, or from ``settings.init_weights``, or resume
        ``settings.checkpoint_dir``.

        The learning rate is the original's cyclic schedule (:data:`CYCLIC_BASE_LR` to
        :data:`CYCLIC_MAX_LR`, triangular2, a half cycle of (train + validation events) / batch
        size steps, counted across resumptions), or ``settings.learning_rate`` fixed if given.
        Adam with gradient-norm clipping at 1, as the original."""
        import keras

        from metbench.nn.deepmet_network import build_model

        if self.official:
            raise ValueError("the official-graph variant is CMS's training; it is not retrained")
        keras.utils.set_random_seed(settings.seed)
        ckpt = settings.checkpoint_dir
        ckpt.mkdir(parents=True, exist_ok=True)
        state = TrainState() if settings.restart else TrainState.load(ckpt)
        samples = {}
        for name, source, cap in (
            ("train", train, settings.train_events_per_process),
            ("val", val, settings.val_events_per_process),
        ):
            arr = read_sample(source, cap, COLUMNS)
            samples[name] = (arr, ak.to_numpy(ak.num(arr.pf, axis=1)))
            print(f"{name}: {len(arr)} events", flush=True)
        self.model = model = build_model(None)
        # the original's schedule unless a fixed rate is asked for: triangular2 from 3e-4 to 1e-3,
        # a half cycle of len(all events read) / batch size steps (train_ptmiss.py)
        cyclic = settings.learning_rate is None
        step_size = (len(samples["train"][1]) + len(samples["val"][1])) / settings.batch_size
        optimizer = keras.optimizers.Adam(
            learning_rate=CYCLIC_BASE_LR if cyclic else settings.learning_rate, clipnorm=1.0
        )
        model.compile(optimizer=optimizer, loss=self._loss())
        resumed = bool(state.epoch) and (ckpt / "last.weights.h5").is_file()
        if resumed:
            model.load_weights(ckpt / "last.weights.h5")
            optimizer.build(model.trainable_variables)
            saved = np.load(ckpt / "optimizer.npz")
            for i, var in enumerate(optimizer.variables):
                var.assign(saved[f"v{i}"])
            print(f"resumed after epoch {state.epoch} from {ckpt}", flush=True)
        load_init_weights(settings, resumed, model.load_weights, "the entry's own .weights.h5 file")

        def batches(name: str, rng: np.random.Generator | None) -> Any:
            arr, sizes = samples[name]
            for idx in bucketed_batches(sizes, settings.batch_size, rng):
                part = arr[np.sort(idx)]
                batch = to_event_batch(part, max(int(sizes[idx].max()), 1))
                target = np.stack([batch.truth["gen_met_x"], batch.truth["gen_met_y"]], -1)
                yield network_inputs(batch.for_estimator()), (target / NORM).astype(np.float32)

        while not state.finished(settings):
            rng = np.random.default_rng([settings.seed, state.epoch])
            start = time.perf_counter()
            losses = []
            n_batches = -(-len(samples["train"][1]) // settings.batch_size)
            for step, (x, y) in enumerate(batches("train", rng), 1):
                if cyclic:
                    done = state.epoch * n_batches + step - 1  # steps before this one
                    optimizer.learning_rate = triangular2_learning_rate(
                        done, CYCLIC_BASE_LR, CYCLIC_MAX_LR, step_size
                    )
                losses.append(float(model.train_on_batch(x, y)))
                if settings.progress and (step % 20 == 0 or step == n_batches):
                    print(
                        f"epoch {state.epoch + 1}: {step}/{n_batches} batches, "
                        f"loss {np.mean(losses):.5f}, {time.perf_counter() - start:.0f} s",
                        flush=True,
                    )
            val_sum, val_n = 0.0, 0
            for x, y in batches("val", None):
                val_sum += float(model.test_on_batch(x, y)) * len(y)
                val_n += len(y)
            lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            improved = state.record(
                float(np.mean(losses)), val_sum / val_n, time.perf_counter() - start, lr
            )
            if improved:
                _save_weights(model, ckpt / "best.weights.h5")
            _save_weights(model, ckpt / "last.weights.h5")
            arrays = {f"v{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)}
            _save_npz(ckpt / "optimizer.npz", arrays)
            state.save(ckpt)
            h = state.history[-1]
            print(
                f"epoch {state.epoch}: train {h['train_loss']:.5f}, val {h['val_loss']:.5f}"
                f"{' (best)' if improved else ''}, {h['seconds']:.0f} s",
                flush=True,
            )
        model.load_weights(ckpt / "best.weights.h5")
        self.trained = True
        self._history = {"settings": describe(settings), **state.__dict__}
        return state

    def save(self, folder: Path) -> None:
        """Write the best weights to the manifest's path and the training history beside them."""
        target = folder / self.weights_path.relative_to(self.folder)
        _save_weights(self.model, target)
        history = getattr(self, "_history", None)
        if history is not None:
            atomic_write_bytes(
                target.with_name(target.name.replace(".weights.h5", ".history.json")),
                json.dumps(history, indent=1, default=str).encode(),
            )


def _save_weights(model: Any, path: Path) -> None:
    # Keras insists on a name ending in .weights.h5, so not metbench.data.store.atomic_path
    tmp = path.with_name(f".tmp-{path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(tmp)
    tmp.replace(path)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    named: dict[str, Any] = dict(arrays)  # names, not savez's own keywords
    np.savez(buffer, **named)
    atomic_write_bytes(path, buffer.getvalue())

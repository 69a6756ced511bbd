"""A Perceiver for MET (slowmoyang/KSC-RnD-2024-Transformer4MET, "diffmet"), in PyTorch.

Charged candidates (px, py, eta, charge, electron / muon / hadron flags, not-from-the-primary-
vertex flag) and neutral candidates (px, py, eta, photon / neutral-hadron / forward flags) are
projected to 128 features each; one single-head cross-attention from a learned 64 x 128 latent
array reads them, self-attention blocks (8 heads, the same block applied ``n_layers`` times as in
the original) work on the latents, the latents are averaged, and a linear layer without bias gives
(px, py). Momenta enter as sign(p) log(1 + |p|/GeV); the output is in units of
:data:`OUTPUT_SCALE` GeV. The cost is O(latents x candidates): linear in the number of candidates.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from metbench.events import EventBatch

__all__ = ["OUTPUT_SCALE", "PerceiverEstimator", "build_perceiver", "perceiver_inputs"]

#: The network's output times this is the MET [GeV].
OUTPUT_SCALE: Final[float] = 50.0
CHARGED_FEATURES: Final[int] = 8
NEUTRAL_FEATURES: Final[int] = 7
#: Names of the network's inputs in the ONNX export (the order of :func:`perceiver_inputs`).
INPUT_NAMES: Final = ("charged", "charged_mask", "neutral", "neutral_mask")


def _signlog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def perceiver_inputs(batch: EventBatch, angle: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """``(charged, charged_mask, neutral, neutral_mask)`` for a batch.

    Parameters
    ----------
    batch
        Events.
    angle
        Optional per-event azimuthal rotation [rad] (training augmentation).

    Returns
    -------
    charged
        ``(n, Nc, 8)`` float32; ``Nc`` the largest number of charged candidates in the batch.
    charged_mask
        ``(n, Nc)`` bool.
    neutral, neutral_mask
        Likewise for neutral candidates, ``(n, Nn, 7)``.
    """
    pt = batch.feature("pt").astype(np.float64)
    phi = batch.feature("phi").astype(np.float64)
    if angle is not None:
        phi = phi + angle[:, None]
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    eta = batch.feature("eta")
    charge = batch.feature("charge")
    apdg = np.abs(batch.feature("pdg_id")).astype(np.int64)
    from_pv = batch.feature("from_pv")
    charged = batch.mask & (charge != 0)
    neutral = batch.mask & (charge == 0)
    columns_c = [_signlog(px), _signlog(py), eta, charge, apdg == 11, apdg == 13, apdg == 211,
                 from_pv == 0]  # fmt: skip
    columns_n = [_signlog(px), _signlog(py), eta, apdg == 22, apdg == 130, apdg == 1, apdg == 2]
    out = []
    for sel, columns in ((charged, columns_c), (neutral, columns_n)):
        counts = sel.sum(axis=1)
        size = max(int(counts.max(initial=0)), 1)
        rows, cols = np.nonzero(sel)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slot = np.arange(len(rows)) - starts[rows]
        features = np.zeros((len(sel), size, len(columns)), np.float32)
        for k, column in enumerate(columns):
            features[rows, slot, k] = np.asarray(column, np.float64)[rows, cols]
        mask = np.zeros((len(sel), size), bool)
        mask[rows, slot] = True
        out += [features, mask]
    return tuple(out)


def build_perceiver(
    embed_dim: int = 128,
    n_latents: int = 64,
    n_heads: int = 8,
    n_layers: int = 2,
    widening: int = 4,
) -> Any:
    """The Perceiver (a ``torch.nn.Module``): ``forward(charged, charged_mask, neutral,
    neutral_mask) -> (n, 2)`` MET / :data:`OUTPUT_SCALE`."""
    import torch
    from torch import nn

    def mlp() -> nn.Module:
        return nn.Sequential(
            nn.Linear(embed_dim, widening * embed_dim),
            nn.GELU(),
            nn.Linear(widening * embed_dim, embed_dim),
        )

    class CrossAttention(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.norm_q, self.norm_kv = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
            self.attention = nn.MultiheadAttention(embed_dim, 1, batch_first=True)
            self.norm_mlp, self.mlp = nn.LayerNorm(embed_dim), mlp()

        def forward(self, latent: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> Any:
            kv = self.norm_kv(source)
            z = (
                latent
                + self.attention(
                    self.norm_q(latent), kv, kv, key_padding_mask=~mask, need_weights=False
                )[0]
            )
            return z + self.mlp(self.norm_mlp(z))

    class SelfAttention(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(embed_dim)
            self.attention = nn.MultiheadAttention(embed_dim, n_heads, batch_first=True)
            self.norm_mlp, self.mlp = nn.LayerNorm(embed_dim), mlp()

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            h = self.norm(z)
            z = z + self.attention(h, h, h, need_weights=False)[0]
            return z + self.mlp(self.norm_mlp(z))

    class PerceiverMET(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.charged_projection = nn.Linear(CHARGED_FEATURES, embed_dim)
            self.neutral_projection = nn.Linear(NEUTRAL_FEATURES, embed_dim)
            latent = torch.empty(n_latents, embed_dim)
            nn.init.trunc_normal_(latent, std=0.02)
            self.latent = nn.Parameter(latent)
            self.cross = CrossAttention()
            self.self_attention = SelfAttention()
            self.n_layers = n_layers
            self.head = nn.Linear(embed_dim, 2, bias=False)

        def forward(
            self,
            charged: torch.Tensor,
            charged_mask: torch.Tensor,
            neutral: torch.Tensor,
            neutral_mask: torch.Tensor,
        ) -> torch.Tensor:
            source = torch.cat(
                [self.charged_projection(charged), self.neutral_projection(neutral)], dim=1
            )
            mask = torch.cat([charged_mask, neutral_mask], dim=1)
            # an event without candidates attends to one zero token (no data-dependent branch,
            # so that the graph exports to ONNX)
            empty = ~mask.any(dim=1, keepdim=True)
            first = torch.arange(mask.shape[1], device=mask.device) == 0
            mask = mask | (empty & first)
            z = self.cross(self.latent.expand(source.shape[0], -1, -1), source, mask)
            for _ in range(self.n_layers):
                z = self.self_attention(z)
            return self.head(z.mean(dim=1))

    return PerceiverMET()


class PerceiverEstimator:
    """The Perceiver as a metbench entry.

    Parameters
    ----------
    weights_file
        The ``state_dict`` (``.pt``), relative to the submission folder.
    huber_delta
        Huber loss threshold, in units of :data:`OUTPUT_SCALE` GeV.
    embed_dim, n_latents, n_heads, n_layers
        Architecture (the original's: 128, 64, 8, 2).
    chunk
        Events per network call (a large batch is run in chunks, so memory stays bounded).
    runtime
        ``torch``, or ``onnx`` (onnxruntime on the export written beside the weights).
    weights_dir, device
        Given by the harness.
    """

    #: Parameters that change how the trained network is run, not what is trained.
    inference_parameters = ("runtime", "chunk")

    def __init__(
        self,
        weights_file: str = "weights/perceiver.pt",
        huber_delta: float = 0.5,
        embed_dim: int = 128,
        n_latents: int = 64,
        n_heads: int = 8,
        n_layers: int = 2,
        chunk: int = 64,
        runtime: str = "torch",
        weights_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        from pathlib import Path

        import torch

        from metbench.models.onnx_runtime import OnnxRunner, check_runtime

        self.runtime = check_runtime(runtime)
        self.chunk = int(chunk)
        self.folder = Path(weights_dir) if weights_dir else Path.cwd()
        self.weights_path = self.folder / weights_file
        self.huber_delta = float(huber_delta)
        self.architecture = {
            "embed_dim": embed_dim, "n_latents": n_latents, "n_heads": n_heads,
            "n_layers": n_layers,
        }  # fmt: skip
        self.device = torch.device("cuda" if device == "cuda" else "cpu")
        self.network = build_perceiver(**self.architecture)
        if self.weights_path.is_file():
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            self.network.load_state_dict(state)
        self.network.eval().to(self.device)
        self._onnx = OnnxRunner(self.weights_path.with_suffix(".onnx"))

    def _tensors(self, batch: EventBatch, angle: np.ndarray | None = None) -> tuple[Any, ...]:
        import torch

        return tuple(torch.as_tensor(a, device=self.device) for a in perceiver_inputs(batch, angle))

    def predict(self, batch: EventBatch) -> np.ndarray:
        import torch

        if not self.weights_path.is_file():
            raise FileNotFoundError(f"{self.weights_path} does not exist: run metbench train")
        outputs = []
        with torch.no_grad():
            for start in range(0, len(batch), self.chunk):  # bounded memory at any batch size
                part = batch.take(slice(start, start + self.chunk))
                if self.runtime == "onnx":
                    arrays = perceiver_inputs(part)
                    outputs.append(self._onnx(dict(zip(INPUT_NAMES, arrays, strict=True))))
                else:
                    outputs.append(self.network(*self._tensors(part)).cpu().numpy())
        return np.concatenate(outputs).astype(np.float64) * OUTPUT_SCALE

    def fit(self, train: Any, val: Any, settings: Any) -> Any:
        """Huber loss, AdamW, a random azimuthal rotation of every training event each epoch."""
        import awkward as ak
        import torch

        from metbench.data.source import to_event_batch
        from metbench.models.torch_training import fit_torch
        from metbench.training import bucketed_batches, describe, read_sample

        self.device = torch.device("cuda" if settings.device == "cuda" else "cpu")
        samples = {}
        for name, source, cap in (
            ("train", train, settings.train_events_per_process),
            ("val", val, settings.val_events_per_process),
        ):
            arr = read_sample(source, cap)
            samples[name] = (arr, ak.to_numpy(ak.num(arr.pf, axis=1)))
            print(f"{name}: {len(arr)} events", flush=True)

        def batches(name: str, rng: np.random.Generator | None) -> Any:
            arr, sizes = samples[name]
            for idx in bucketed_batches(sizes, settings.batch_size, rng):
                batch = to_event_batch(arr[np.sort(idx)], max(int(sizes[idx].max()), 1))
                truth = np.stack([batch.truth["gen_met_x"], batch.truth["gen_met_y"]], -1)
                angle = None
                if rng is not None:  # augmentation: turn the whole event
                    angle = rng.uniform(-np.pi, np.pi, len(idx))
                    c, s = np.cos(angle), np.sin(angle)
                    truth = np.stack(
                        [c * truth[:, 0] - s * truth[:, 1], s * truth[:, 0] + c * truth[:, 1]], -1
                    )
                x = self._tensors(batch.for_estimator(), angle)
                yield (
                    x,
                    torch.as_tensor(truth / OUTPUT_SCALE, dtype=torch.float32, device=self.device),
                )

        huber = torch.nn.HuberLoss(delta=self.huber_delta)

        def loss(model: Any, x: Any, y: Any) -> Any:
            return huber(model(*x), y)

        torch.manual_seed(settings.seed)
        net = build_perceiver(**self.architecture).to(self.device)
        state = fit_torch(
            net,
            loss,
            lambda epoch: batches("train", np.random.default_rng([settings.seed, epoch])),
            lambda: batches("val", None),
            settings,
            default_lr=5e-4,
            optimizer_class="AdamW",
        )
        self.network = net.eval()
        self._history = {"settings": describe(settings), **vars(state)}
        return state

    def save(self, folder: Any) -> None:
        """The state dict and the training history."""
        from metbench.models.torch_training import save_weights_and_history

        target = folder / self.weights_path.relative_to(self.folder)
        save_weights_and_history(self.network, target, getattr(self, "_history", None))
        self.export_onnx(target.with_suffix(".onnx"))

    def export_onnx(self, path: Any) -> None:
        """Export the network (the four arrays of :func:`perceiver_inputs` in) to ONNX."""
        import torch

        from metbench.models.onnx_runtime import export_onnx

        n, n_charged, n_neutral = (torch.export.Dim(k) for k in ("n", "n_charged", "n_neutral"))
        examples = (
            torch.zeros((2, 3, CHARGED_FEATURES)), torch.ones((2, 3), dtype=torch.bool),
            torch.zeros((2, 5, NEUTRAL_FEATURES)), torch.ones((2, 5), dtype=torch.bool),
        )  # fmt: skip
        shapes = (
            {0: n, 1: n_charged}, {0: n, 1: n_charged}, {0: n, 1: n_neutral}, {0: n, 1: n_neutral}
        )  # fmt: skip
        export_onnx(self.network, examples, list(INPUT_NAMES), ["met"], shapes, path)

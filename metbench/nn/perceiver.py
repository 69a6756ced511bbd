"""A Perceiver for MET (slowmoyang/KSC-RnD-2024-Transformer4MET, "diffmet"), in PyTorch.

Charged candidates (px, py, eta, charge, electron / muon / hadron flags, not-from-the-primary-
vertex flag) and neutral candidates (px, py, eta, photon / neutral-hadron / forward flags) are
projected to 128 features each; one single-head cross-attention from a learned 64 x 128 latent
array reads them, self-attention blocks (8 heads, the same block applied ``n_layers`` times as in
the original) work on the latents. Momenta enter as sign(p) log(1 + |p|/GeV), optionally divided
by the original's input scales (:data:`INPUT_SCALES`). Both kinds share one candidate axis
(:func:`perceiver_inputs`: the charged ones first, then the neutral ones), so a batch is padded
once, to its largest event. The cost is O(latents x candidates): linear in the number of
candidates.

Two heads:

``mean`` (the original's)
    The latents are averaged and a linear layer without bias gives (px, py). Both the softmax
    over candidates and the mean over latents are blind to how many candidates there are: the
    same event with every candidate doubled gives the same output.
``sum`` (metbench's own variant, ``submissions/perceiver-sum-torch``)
    A cross-attention from every candidate back to the latents gives each candidate a weight
    w; the MET is -sum_i w_i (px_i, py_i), as DeepMET computes it, so that the output scales with
    the candidates. As DeepMET's, the weight is linear (unbounded) and starts at exactly 1 (the
    readout is zero-initialised): the untrained network is the PF MET. A sigmoid's (0, 1) was
    tried first and failed: within one epoch every weight went to 1 - 1e-4 (the loss wanted the
    sum scaled up, the sigmoid capped it at the PF MET) and the saturated sigmoid passed no
    gradient (val loss 0.20258 after epochs 1 and 2, the PF MET's).

The network's output is in *training units* (:func:`encode_target` of the MET): the MET over
``target_scale`` GeV (``target = "linear"``), or signlog(MET / GeV) over ``target_scale``
(``target = "signlog"``, the original's). :func:`decode_target` gives GeV back. A weights file
written by :meth:`PerceiverEstimator.save` records the network's configuration (architecture,
input scales, target) beside the state dict, so that weights are always decoded as they were
trained; a bare state dict (the first committed weights) is the ``linear`` / 50 GeV network
without input scales.

Speed: the single-head cross-attentions never project the (many) candidates. For the encoder,
the query of latent i against candidate j is ``(W_q l_i + b_q) . (W_k x_j + b_k)``
``= (W_k^T (W_q l_i + b_q)) . x_j + const_i``; the constant cancels in the softmax over j, and
``sum_j a_ij (W_v x_j + b_v) = W_v (sum_j a_ij x_j) + b_v`` since the weights sum to one. So the
scores take one (latents x 128) product per candidate and the values are projected after the
sum, on the 64 latents: the same function and parameters as ``torch.nn.MultiheadAttention``
(a test checks it), with about a third of the arithmetic.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from metbench.events import EventBatch

__all__ = [
    "HEADS",
    "INFERENCE_SLOTS",
    "INPUT_SCALES",
    "LEGACY_ENCODING",
    "OUTPUT_SCALE",
    "TARGETS",
    "CandidateTable",
    "PerceiverEstimator",
    "build_perceiver",
    "decode_target",
    "encode_target",
    "inference_groups",
    "perceiver_inputs",
    "signlog",
    "signlog_inverse",
]

#: The first committed network's output times this is the MET [GeV] (``target = "linear"``).
OUTPUT_SCALE: Final[float] = 50.0
CHARGED_FEATURES: Final[int] = 8
NEUTRAL_FEATURES: Final[int] = 7
#: Names of the network's inputs in the ONNX export (the order of :func:`perceiver_inputs`).
INPUT_NAMES: Final = ("charged", "charged_mask", "neutral", "neutral_mask")
HEADS: Final[tuple[str, ...]] = ("mean", "sum")
TARGETS: Final[tuple[str, ...]] = ("linear", "signlog")
#: Per-feature divisors of the inputs. ``original``: the original's ``signlog1pabs``
#: preprocessing (``config/preprocessing/delphes/signlog1pabs.yaml``): tracks' signlog(px),
#: signlog(py), eta over 0.51, 0.51, 2.26, towers' over 0.60, 0.60, 1.22 (used here for the
#: charged and the neutral candidates); flags unscaled.
INPUT_SCALES: Final[dict[str, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    "none": ((1.0,) * CHARGED_FEATURES, (1.0,) * NEUTRAL_FEATURES),
    "original": (
        (0.51, 0.51, 2.26, 1.0, 1.0, 1.0, 1.0, 1.0),
        (0.60, 0.60, 1.22, 1.0, 1.0, 1.0, 1.0),
    ),
}
#: How a bare state dict (the first committed weights) encodes its inputs and output.
LEGACY_ENCODING: Final[dict[str, Any]] = {
    "head": "mean", "input_scale": "none", "target": "linear", "target_scale": OUTPUT_SCALE,
}  # fmt: skip
#: Marks a weights file that holds ``{"format", "network", "state_dict"}``.
WEIGHTS_FORMAT: Final = "metbench-perceiver/2"


def signlog(x: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): the original's ``SignLog1pAbs``."""
    return np.sign(x) * np.log1p(np.abs(x))


def signlog_inverse(y: np.ndarray) -> np.ndarray:
    """sign(y) (exp|y| - 1): the inverse of :func:`signlog`."""
    return np.sign(y) * np.expm1(np.abs(y))


def encode_target(met: np.ndarray, target: str, scale: float) -> np.ndarray:
    """The MET [GeV] in the network's training units.

    Parameters
    ----------
    met
        ``(n, 2)`` MET [GeV].
    target
        ``linear`` (MET / scale) or ``signlog`` (signlog(MET) / scale, per component).
    scale
        The divisor.
    """
    if target == "linear":
        return np.asarray(met, np.float64) / scale
    if target == "signlog":
        return signlog(np.asarray(met, np.float64)) / scale
    raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")


def decode_target(y: np.ndarray, target: str, scale: float) -> np.ndarray:
    """The MET [GeV] of a network output in training units (the inverse of
    :func:`encode_target`)."""
    if target == "linear":
        return np.asarray(y, np.float64) * scale
    if target == "signlog":
        return signlog_inverse(np.asarray(y, np.float64) * scale)
    raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")


class CandidateTable:
    """The network's per-candidate inputs of a set of events, flat, computed once.

    Momenta are kept as (px, py) [GeV] so that a batch can be turned by an angle before the
    signlog; :meth:`inputs` pads any subset of the events like :func:`perceiver_inputs`.

    Parameters
    ----------
    batch
        The events.

    Attributes
    ----------
    rows
        Per type (charged, neutral): ``(n_candidates, n_features)`` float32, px and py in the
        first two columns (linear, GeV).
    counts, offsets
        Per type: candidates per event and the first row of each event.
    """

    def __init__(self, batch: EventBatch) -> None:
        pt = batch.feature("pt").astype(np.float64)
        phi = batch.feature("phi").astype(np.float64)
        px, py = pt * np.cos(phi), pt * np.sin(phi)
        eta = batch.feature("eta")
        charge = batch.feature("charge")
        apdg = np.abs(batch.feature("pdg_id")).astype(np.int64)
        from_pv = batch.feature("from_pv")
        charged = batch.mask & (charge != 0)
        neutral = batch.mask & (charge == 0)
        columns_c = [px, py, eta, charge, apdg == 11, apdg == 13, apdg == 211, from_pv == 0]
        columns_n = [px, py, eta, apdg == 22, apdg == 130, apdg == 1, apdg == 2]
        self.rows: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        for sel, columns in ((charged, columns_c), (neutral, columns_n)):
            self.rows.append(
                np.stack([np.asarray(c)[sel] for c in columns], axis=-1).astype(np.float32)
            )
            self.counts.append(sel.sum(axis=1).astype(np.int64))
        self.offsets = [
            np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) for c in self.counts
        ]

    @classmethod
    def concatenate(cls, tables: list[CandidateTable]) -> CandidateTable:
        """One table of the events of several (in order)."""
        out = cls.__new__(cls)
        out.rows = [np.concatenate([t.rows[k] for t in tables]) for k in range(2)]
        out.counts = [np.concatenate([t.counts[k] for t in tables]) for k in range(2)]
        out.offsets = [
            np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) for c in out.counts
        ]
        return out

    def __len__(self) -> int:
        return len(self.counts[0])

    @property
    def sizes(self) -> np.ndarray:
        """Candidates per event."""
        return self.counts[0] + self.counts[1]

    def inputs(
        self, events: np.ndarray | None = None, angle: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """``(charged, charged_mask, neutral, neutral_mask)`` of some events, as
        :func:`perceiver_inputs` gives them.

        Parameters
        ----------
        events
            Event indices (repeats allowed); ``None``: all.
        angle
            Optional per-event azimuthal rotation [rad] (training augmentation).
        """
        events = np.arange(len(self)) if events is None else np.asarray(events, np.int64)
        size = max(int(self.sizes[events].max(initial=0)), 1)
        out = []
        for k, (rows, counts, offsets) in enumerate(
            zip(self.rows, self.counts, self.offsets, strict=True)
        ):
            n = counts[events]
            starts = np.concatenate([[0], np.cumsum(n)[:-1]])
            owner = np.repeat(np.arange(len(events)), n)
            rank = np.arange(int(n.sum())) - starts[owner]
            x = rows[offsets[events][owner] + rank]
            px, py = x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)
            if angle is not None:
                c, s = np.cos(angle[owner]), np.sin(angle[owner])
                px, py = c * px - s * py, s * px + c * py
            x[:, 0], x[:, 1] = signlog(px), signlog(py)
            # charged candidates take the first slots of an event, neutral ones the next
            slot = rank + (self.counts[0][events][owner] if k else 0)
            features = np.zeros((len(events), size, rows.shape[1]), np.float32)
            features[owner, slot] = x
            mask = np.zeros((len(events), size), bool)
            mask[owner, slot] = True
            out += [features, mask]
        return tuple(out)


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
        ``(n, N, 8)`` float32; ``N`` the largest number of candidates of an event of the batch.
    charged_mask
        ``(n, N)`` bool: the slots that hold a charged candidate (an event's first ones).
    neutral, neutral_mask
        Likewise for the neutral candidates, ``(n, N, 7)``, in the slots after the event's
        charged ones: one candidate axis, padded once (the two masks never overlap).
    """
    return CandidateTable(batch).inputs(None, angle)


#: Padded candidate slots (events x the group's largest event) per network call at inference.
INFERENCE_SLOTS: Final = 8192


def inference_groups(n_candidates: np.ndarray, max_events: int) -> list[np.ndarray]:
    """The events of a batch in groups for the network, each padded to its largest event: sorted
    by their number of candidates, at most ``max_events`` and :data:`INFERENCE_SLOTS` padded slots
    a group (one event at least). A batch of events in random order, padded to its largest, is
    half padding on the standard dataset; the sorted groups are about 85% candidates, and the
    network's cost grows with the padded length (2026-12-05: 1.9x faster on mini, batch 32).

    Parameters
    ----------
    n_candidates
        ``(n,)`` candidates of each event.
    max_events
        The largest group.

    Returns
    -------
    list of ndarray
        The events' indices, group by group; together each event once.
    """
    order = np.argsort(n_candidates, kind="stable")
    groups: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):  # the group [start, end) takes event end-1
        size = end - start
        if size > max_events or (
            size > 1 and size * n_candidates[order[end - 1]] > INFERENCE_SLOTS
        ):
            groups.append(order[start : end - 1])
            start = end - 1
    if start < len(order):
        groups.append(order[start:])
    return groups


def build_perceiver(
    embed_dim: int = 128,
    n_latents: int = 64,
    n_heads: int = 8,
    n_layers: int = 2,
    widening: int = 4,
    head: str = "mean",
    input_scale: str = "none",
    target: str = "linear",
    target_scale: float = OUTPUT_SCALE,
) -> Any:
    """The Perceiver (a ``torch.nn.Module``): ``forward(charged, charged_mask, neutral,
    neutral_mask) -> (n, 2)``, the MET in training units (:func:`encode_target`).

    Parameters
    ----------
    embed_dim, n_latents, n_heads, n_layers, widening
        Architecture (the original's: 128, 64, 8, 2, 4).
    head
        ``mean`` (the original's) or ``sum`` (per-candidate weights, MET = -sum w p).
    input_scale
        A key of :data:`INPUT_SCALES`.
    target, target_scale
        The output's units (the ``sum`` head encodes its sum in them).
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, not {head!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if input_scale not in INPUT_SCALES:
        raise ValueError(
            f"input_scale must be one of {', '.join(INPUT_SCALES)}, not {input_scale!r}"
        )
    inv_sqrt_d = embed_dim**-0.5

    def mlp() -> nn.Module:
        return nn.Sequential(
            nn.Linear(embed_dim, widening * embed_dim),
            nn.GELU(),
            nn.Linear(widening * embed_dim, embed_dim),
        )

    class CrossAttention(nn.Module):  # type: ignore[misc]
        """Pre-norm single-head cross-attention latents <- candidates, then an MLP (the
        parameters of ``nn.MultiheadAttention(embed_dim, 1)``, evaluated reassociated)."""

        def __init__(self) -> None:
            super().__init__()
            self.norm_q, self.norm_kv = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
            self.attention = nn.MultiheadAttention(embed_dim, 1, batch_first=True)
            self.norm_mlp, self.mlp = nn.LayerNorm(embed_dim), mlp()

        def forward(self, latent: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> Any:
            w_q, w_k, w_v = self.attention.in_proj_weight.chunk(3)
            b_q, _, b_v = self.attention.in_proj_bias.chunk(3)
            query = F.linear(self.norm_q(latent), w_q, b_q)  # (L, E): no batch axis
            # scores_ij = (W_k^T q_i) . x_j (+ q_i . b_k, the same for every j)
            query_k = (query @ w_k) * inv_sqrt_d
            x = self.norm_kv(source)[:, None]  # (B, 1, N, E)
            # softmax_j(query_k_i . x_j) x_j, fused (no B x L x N tensor is kept)
            summary = F.scaled_dot_product_attention(
                query_k.expand(x.shape[0], 1, -1, -1),
                x,
                x,
                attn_mask=mask[:, None, None, :],
                scale=1.0,
            )[:, 0]  # (B, L, E)
            z = latent + self.attention.out_proj(F.linear(summary, w_v, b_v))
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

    class Summation(nn.Module):  # type: ignore[misc]
        """Per-candidate weights ``1 + readout(...)``: each candidate's embedding plus a
        pre-norm single-head cross-attention candidate <- latents, read out by a linear layer
        (the parameters of ``nn.MultiheadAttention(embed_dim, 1)`` and ``nn.Linear(embed_dim,
        1)``, evaluated reassociated: nothing of size candidates x embed_dim is projected). The
        readout starts at zero (:meth:`start_at_pf_met`): every weight 1, the PF MET."""

        def __init__(self) -> None:
            super().__init__()
            self.norm_candidates, self.norm_latents = (
                nn.LayerNorm(embed_dim),
                nn.LayerNorm(embed_dim),
            )
            self.attention = nn.MultiheadAttention(embed_dim, 1, batch_first=True)
            self.readout = nn.Linear(embed_dim, 1)
            self.start_at_pf_met()

        def start_at_pf_met(self) -> None:
            with torch.no_grad():
                self.readout.weight.zero_()
                self.readout.bias.zero_()

        def forward(self, z: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> Any:
            w_q, w_k, w_v = self.attention.in_proj_weight.chunk(3)
            b_q, b_k, b_v = self.attention.in_proj_bias.chunk(3)
            zn = self.norm_latents(z)  # (B, L, E)
            key = F.linear(zn, w_k, b_k)
            # scores_ji = (W_q c_j + b_q) . k_i = c_j . (W_q^T k_i) + b_q . k_i
            key_q = (key @ w_q) * inv_sqrt_d  # (B, L, E)
            key_b = (key @ b_q) * inv_sqrt_d  # (B, L)
            value = self.attention.out_proj(F.linear(zn, w_v, b_v))  # (B, L, E)
            # readout(c_j + sum_i a_ji v_i) = readout(c_j) + sum_i a_ji (w . v_i)
            value_w = value @ self.readout.weight[0]  # (B, L)
            c = self.norm_candidates(source)  # (B, N, E)
            a = torch.softmax(torch.matmul(c, key_q.transpose(1, 2)) + key_b[:, None, :], -1)
            offset = self.readout(source)[..., 0] + (a @ value_w[..., None])[..., 0]
            return (1.0 + offset) * mask  # w = 1 + readout: 1 (PF MET) at the start

    scales = INPUT_SCALES[input_scale]

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
            self.scaled = input_scale != "none"
            self.register_buffer("charged_scale", torch.tensor(scales[0]), persistent=False)
            self.register_buffer("neutral_scale", torch.tensor(scales[1]), persistent=False)
            if head == "mean":
                self.head = nn.Linear(embed_dim, 2, bias=False)
            else:
                self.summation = Summation()

        def forward(
            self,
            charged: torch.Tensor,
            charged_mask: torch.Tensor,
            neutral: torch.Tensor,
            neutral_mask: torch.Tensor,
        ) -> torch.Tensor:
            c, n = charged, neutral
            if self.scaled:
                c, n = c / self.charged_scale, n / self.neutral_scale
            # one candidate axis: each slot holds a charged or a neutral candidate (or padding),
            # the other kind's features are zero: one product gives either projection
            weight = torch.cat(
                [self.charged_projection.weight, self.neutral_projection.weight], dim=1
            )
            bias_c, bias_n = self.charged_projection.bias, self.neutral_projection.bias
            source = F.linear(torch.cat([c, n], dim=-1), weight, bias_c)
            source = source + neutral_mask[..., None] * (bias_n - bias_c)
            mask = charged_mask | neutral_mask
            # an event without candidates attends to one zero token (no data-dependent branch,
            # so that the graph exports to ONNX)
            empty = ~mask.any(dim=1, keepdim=True)
            first = torch.arange(mask.shape[1], device=mask.device) == 0
            mask = mask | (empty & first)
            z = self.cross(self.latent, source, mask)
            for _ in range(self.n_layers):
                z = self.self_attention(z)
            if head == "mean":
                return self.head(z.mean(dim=1))
            weights = self.summation(z, source, mask)  # (B, N); 0 where padded
            logp = torch.where(neutral_mask[..., None], neutral[..., :2], charged[..., :2])
            momenta = torch.sign(logp) * torch.expm1(logp.abs())  # (px, py) [GeV]
            met = -(weights[..., None] * momenta).sum(dim=1)
            if target == "signlog":
                return torch.sign(met) * torch.log1p(met.abs()) / target_scale
            return met / target_scale

    return PerceiverMET()


def _xavier_normal_(network: Any) -> None:
    """The original's initialisation (``diffmet.models.base.init_modules``): Xavier-normal
    weights and zero biases for every linear map; the attention's input projection as the
    original's two layers (queries E x E, keys and values 2E x E). The ``sum`` head's readout
    stays zero (the network starts as the PF MET, as DeepMET's does)."""
    import torch
    from torch import nn

    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                e = module.embed_dim
                nn.init.xavier_normal_(module.in_proj_weight[:e])
                nn.init.xavier_normal_(module.in_proj_weight[e:])
                nn.init.zeros_(module.in_proj_bias)
        if hasattr(network, "summation"):
            network.summation.start_at_pf_met()


class PerceiverEstimator:
    """The Perceiver as a metbench entry.

    Parameters
    ----------
    weights_file
        The weights (``.pt``), relative to the submission folder.
    head
        ``mean`` (the original's) or ``sum`` (see the module docstring).
    embed_dim, n_latents, n_heads, n_layers
        Architecture (the original's: 128, 64, 8, 2).
    input_scale
        A key of :data:`INPUT_SCALES` (``original``: the original's preprocessing).
    target, target_scale
        Training units of the output (:func:`encode_target`): the original's is ``signlog`` /
        3.67.
    huber_delta
        Huber loss threshold, in training units.
    learning_rate
        AdamW's learning rate (``metbench train --learning-rate`` overrides it).
    weight_decay
        AdamW's weight decay.
    decay_linear_only
        Decay only the weights of linear maps (the original's nanoGPT-style groups: no decay of
        biases, LayerNorms and the latent array); ``False``: every parameter.
    grad_clip
        Clip the gradient norm of every step to this (``None``: no clipping).
    reduce_lr_on_plateau
        Halve the learning rate after 3 epochs without improvement.
    rotate
        Turn every training event by a random azimuthal angle each epoch.
    processes
        Train and validate on these processes only (``None``: all).
    flat_met
        ``[low, high, bins]``: each epoch draws as many training events as the sample holds,
        with replacement, with probabilities that make the generated MET flat in ``bins``
        equal bins from ``low`` to ``high`` GeV (events above ``high`` in the last bin);
        ``None``: every event once per epoch.
    init
        ``torch`` (PyTorch's default initialisation) or ``xavier_normal`` (the original's).
    threads
        ``torch.set_num_threads`` during training (``None``: PyTorch's default).
    chunk
        At most this many events per network call at inference: a batch's events are sorted by
        their number of candidates and run in groups of at most ``chunk`` events and
        :data:`INFERENCE_SLOTS` padded candidates (:func:`inference_groups`), so memory stays
        bounded and little of the work is padding.
    runtime
        ``torch``, or ``onnx`` (onnxruntime on the export written beside the weights).
    weights_dir, device
        Given by the harness.

    The architecture and output units of an existing weights file are those recorded in it (a
    bare state dict: :data:`LEGACY_ENCODING` with this architecture); the parameters above
    define what :meth:`fit` trains.
    """

    #: Parameters that change how the trained network is run, not what is trained.
    inference_parameters = ("runtime", "chunk", "threads")

    def __init__(
        self,
        weights_file: str = "weights/perceiver.pt",
        head: str = "mean",
        embed_dim: int = 128,
        n_latents: int = 64,
        n_heads: int = 8,
        n_layers: int = 2,
        input_scale: str = "none",
        target: str = "linear",
        target_scale: float = OUTPUT_SCALE,
        huber_delta: float = 0.5,
        learning_rate: float = 5e-4,
        weight_decay: float = 0.01,
        decay_linear_only: bool = False,
        grad_clip: float | None = None,
        reduce_lr_on_plateau: bool = True,
        rotate: bool = True,
        processes: list[str] | None = None,
        flat_met: list[float] | None = None,
        init: str = "torch",
        threads: int | None = None,
        chunk: int = 64,
        runtime: str = "torch",
        weights_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        from pathlib import Path

        import torch

        from metbench.nn.onnx_runtime import OnnxRunner, check_runtime

        self.runtime = check_runtime(runtime)
        self.chunk = int(chunk)
        self.folder = Path(weights_dir) if weights_dir else Path.cwd()
        self.weights_path = self.folder / weights_file
        self.config: dict[str, Any] = {
            "embed_dim": int(embed_dim), "n_latents": int(n_latents), "n_heads": int(n_heads),
            "n_layers": int(n_layers), "head": head, "input_scale": input_scale,
            "target": target, "target_scale": float(target_scale),
        }  # fmt: skip
        build_perceiver(**{**self.config, "embed_dim": 8, "n_latents": 1, "n_heads": 1})  # checks
        if init not in ("torch", "xavier_normal"):
            raise ValueError(f"init must be 'torch' or 'xavier_normal', not {init!r}")
        if flat_met is not None and (len(flat_met) != 3 or not flat_met[0] < flat_met[1]):
            raise ValueError(
                f"flat_met must be [low, high, bins] with low < high, not {flat_met!r}"
            )
        self.recipe: dict[str, Any] = {
            "huber_delta": float(huber_delta), "learning_rate": float(learning_rate),
            "weight_decay": float(weight_decay), "decay_linear_only": bool(decay_linear_only),
            "grad_clip": None if grad_clip is None else float(grad_clip),
            "reduce_lr_on_plateau": bool(reduce_lr_on_plateau), "rotate": bool(rotate),
            "processes": None if processes is None else list(processes),
            "flat_met": None if flat_met is None else [float(v) for v in flat_met], "init": init,
        }  # fmt: skip
        self.threads = threads
        self.device = torch.device("cuda" if device == "cuda" else "cpu")
        #: The configuration of the network in use (that of the weights file, once loaded).
        self.network_config = dict(self.config)
        if self.weights_path.is_file():
            saved = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            state = saved
            if saved.get("format") == WEIGHTS_FORMAT:
                self.network_config, state = dict(saved["network"]), saved["state_dict"]
            else:
                self.network_config = {**self.config, **LEGACY_ENCODING}
            self.network = build_perceiver(**self.network_config)
            self.network.load_state_dict(state)
        else:
            self.network = build_perceiver(**self.network_config)
        self.network.eval().to(self.device)
        self._onnx = OnnxRunner(self.weights_path.with_suffix(".onnx"))

    def _tensors(self, arrays: tuple[np.ndarray, ...]) -> tuple[Any, ...]:
        import torch

        return tuple(torch.as_tensor(a, device=self.device) for a in arrays)

    def predict(self, batch: EventBatch) -> np.ndarray:
        import torch

        if not self.weights_path.is_file():
            raise FileNotFoundError(f"{self.weights_path} does not exist: run metbench train")
        out = np.zeros((len(batch), 2), np.float32)
        with torch.no_grad():
            for rows in inference_groups(batch.jagged.counts, self.chunk):
                arrays = perceiver_inputs(batch.take(rows))
                if self.runtime == "onnx":
                    out[rows] = self._onnx(dict(zip(INPUT_NAMES, arrays, strict=True)))
                else:
                    out[rows] = self.network(*self._tensors(arrays)).cpu().numpy()
        cfg = self.network_config
        return decode_target(out, cfg["target"], cfg["target_scale"])

    def _read(self, source: Any, cap: int | None) -> tuple[CandidateTable, np.ndarray]:
        """The candidate table and the generated MET (n, 2) [GeV] of a capped sample."""
        import awkward as ak

        from metbench.data.source import to_event_batch
        from metbench.nn.training import read_sample

        wanted = self.recipe["processes"]
        if wanted is not None:
            files = source.manifest["files"]
            known = {files[f]["process"] for f in source.files}
            if set(wanted) - known:
                raise ValueError(
                    f"processes {sorted(set(wanted) - known)} are not in split {source.split} "
                    f"(it has {', '.join(sorted(known))})"
                )
            source = source.restrict([f for f in source.files if files[f]["process"] in wanted])
        arr = read_sample(source, cap)
        tables, truth = [], []
        for start in range(0, len(arr), 256):
            part = arr[start : start + 256]
            sizes = ak.to_numpy(ak.num(part.pf, axis=1))
            batch = to_event_batch(part, max(int(sizes.max(initial=0)), 1))
            tables.append(CandidateTable(batch))
            truth.append(np.stack([batch.truth["gen_met_x"], batch.truth["gen_met_y"]], -1))
        return CandidateTable.concatenate(tables), np.concatenate(truth).astype(np.float64)

    def _parameter_groups(self, net: Any) -> list[dict[str, Any]]:
        """AdamW's groups: weight decay on every parameter, or (``decay_linear_only``) on the
        weights of linear maps and attention projections only."""
        from torch import nn

        decay = self.recipe["weight_decay"]
        if not self.recipe["decay_linear_only"]:
            return [{"params": list(net.parameters()), "weight_decay": decay}]
        linear = set()
        for module in net.modules():
            if isinstance(module, nn.Linear):
                linear.add(id(module.weight))
            elif isinstance(module, nn.MultiheadAttention):
                linear.add(id(module.in_proj_weight))
        params = list(net.parameters())
        return [
            {"params": [p for p in params if id(p) in linear], "weight_decay": decay},
            {"params": [p for p in params if id(p) not in linear], "weight_decay": 0.0},
        ]

    def training_batches(
        self,
        table: CandidateTable,
        truth: np.ndarray,
        batch_size: int,
        rng: np.random.Generator | None = None,
    ) -> Any:
        """Yield the ``(inputs, target)`` tensors of one pass over a sample.

        Parameters
        ----------
        table, truth
            The sample's candidates and generated MET ``(n, 2)`` [GeV].
        batch_size
            Events per batch.
        rng
            A training epoch's generator: the flat gen-MET resampling (``flat_met``), the
            shuffled batches of similar sizes and the rotations (``rotate``) draw from it;
            ``None`` (validation): every event once, in batches of similar sizes, unturned.
        """
        import torch

        from metbench.nn.training import bucketed_batches, flat_resample

        recipe, cfg = self.recipe, self.config
        events = np.arange(len(table))
        if rng is not None and recipe["flat_met"] is not None:
            low, high, bins = recipe["flat_met"]
            edges = np.linspace(low, high, int(bins) + 1)
            events = flat_resample(np.hypot(truth[:, 0], truth[:, 1]), edges, len(table), rng)
        for pos in bucketed_batches(table.sizes[events], batch_size, rng):
            idx = np.sort(events[pos])
            y = truth[idx]
            angle = None
            if rng is not None and recipe["rotate"]:  # augmentation: turn the whole event
                angle = rng.uniform(-np.pi, np.pi, len(idx))
                c, s = np.cos(angle), np.sin(angle)
                y = np.stack([c * y[:, 0] - s * y[:, 1], s * y[:, 0] + c * y[:, 1]], -1)
            target = encode_target(y, cfg["target"], cfg["target_scale"])
            yield (
                self._tensors(table.inputs(idx, angle)),
                torch.as_tensor(target, dtype=torch.float32, device=self.device),
            )

    def training_loss(self) -> Any:
        """``loss(model, inputs, target)``: the Huber loss (``huber_delta``) between the
        network's output and the target, both in training units, averaged over events and
        components."""
        import torch

        huber = torch.nn.HuberLoss(delta=self.recipe["huber_delta"])

        def loss(model: Any, x: Any, y: Any) -> Any:
            return huber(model(*x), y)

        return loss

    def fit(self, train: Any, val: Any, settings: Any) -> Any:
        """Train the network of the parameters with their recipe (see the class); resumable
        from ``settings.checkpoint_dir``, or started from ``settings.init_weights``."""
        import json

        import torch

        from metbench.nn.torch_training import fit_torch
        from metbench.nn.training import describe

        if self.threads:
            torch.set_num_threads(int(self.threads))
        self.device = torch.device("cuda" if settings.device == "cuda" else "cpu")
        samples = {}
        for name, source, cap in (
            ("train", train, settings.train_events_per_process),
            ("val", val, settings.val_events_per_process),
        ):
            samples[name] = self._read(source, cap)
            print(f"{name}: {len(samples[name][0])} events", flush=True)
        torch.manual_seed(settings.seed)
        net = build_perceiver(**self.config)
        if self.recipe["init"] == "xavier_normal":
            _xavier_normal_(net)
        net.to(self.device)
        self._note_init_weights(settings)
        state = fit_torch(
            net,
            self.training_loss(),
            lambda epoch: self.training_batches(
                *samples["train"],
                settings.batch_size,
                np.random.default_rng([settings.seed, epoch]),
            ),
            lambda: self.training_batches(*samples["val"], settings.batch_size),
            settings,
            default_lr=self.recipe["learning_rate"],
            optimizer_class="AdamW",
            parameter_groups=self._parameter_groups(net),
            grad_clip=self.recipe["grad_clip"],
            reduce_lr_on_plateau=self.recipe["reduce_lr_on_plateau"],
        )
        self.network = net.eval()
        self.network_config = dict(self.config)
        self._history = {
            "settings": describe(settings), "network": self.config, "recipe": self.recipe,
            **vars(state),
        }  # fmt: skip
        earlier = None
        if settings.init_weights is not None:
            earlier = settings.init_weights.with_suffix(".history.json")
        if earlier is not None and earlier.is_file():  # the history of the starting weights
            self._history["init_weights_history"] = json.loads(earlier.read_text())
        return state

    def _note_init_weights(self, settings: Any) -> None:
        """Say so when ``--init-weights`` were trained with other input scales or target units
        (they are only a starting point then)."""
        import torch

        path = settings.init_weights
        if path is None or not path.is_file():
            return
        saved = torch.load(path, map_location="cpu", weights_only=True)
        had = saved["network"] if saved.get("format") == WEIGHTS_FORMAT else LEGACY_ENCODING
        keys = ("input_scale", "target", "target_scale")
        if any(had.get(k) != self.config[k] for k in keys):
            print(
                f"note: {path} was trained with {', '.join(f'{k}={had.get(k)}' for k in keys)}; "
                f"this training uses {', '.join(f'{k}={self.config[k]}' for k in keys)}",
                flush=True,
            )

    def save(self, folder: Any) -> None:
        """The weights (with the network's configuration), the training history and the ONNX
        export."""
        from metbench.nn.torch_training import save_weights_and_history

        target = folder / self.weights_path.relative_to(self.folder)
        save_weights_and_history(
            self.network,
            target,
            getattr(self, "_history", None),
            extra={"format": WEIGHTS_FORMAT, "network": self.network_config},
        )
        self.export_onnx(target.with_suffix(".onnx"))

    def export_onnx(self, path: Any) -> None:
        """Export the network (the four arrays of :func:`perceiver_inputs` in, training units
        out) to ONNX."""
        import torch

        from metbench.nn.onnx_runtime import export_onnx

        n, size = torch.export.Dim("n"), torch.export.Dim("n_candidates")
        charged_mask = torch.tensor([[True, True, False, False, False]] * 3)
        examples = (
            torch.zeros((3, 5, CHARGED_FEATURES)), charged_mask,
            torch.zeros((3, 5, NEUTRAL_FEATURES)), ~charged_mask,
        )  # fmt: skip
        shapes = ({0: n, 1: size},) * 4
        export_onnx(self.network, examples, list(INPUT_NAMES), ["met"], shapes, path)

"""Vertexing: interactions reconstructed as vertices from the tracks, the primary vertex, and each
track's association to it as CMS's ``PackedCandidate::fromPV`` records it. Units: cm, GeV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from metbench.data.generate.detector import DetectorConfig, DetectorInput
    from metbench.data.generate.tracking import Tracks

__all__ = ["Vertices", "closest_vertex", "from_pv", "reconstruct_vertices"]


@dataclass(frozen=True)
class Vertices:
    """Vertex candidates (clusters of interactions closer than the merge distance) and the
    reconstructed ones among them.

    Attributes
    ----------
    cluster_event
        Event of each cluster.
    z
        Fitted z of each cluster [cm] (tracks weighted by 1/sigma_dz^2; 0 without tracks).
    reconstructed
        Whether the cluster has enough eligible tracks to be a vertex.
    track_cluster
        Cluster of each track (that of its interaction).
    eligible
        Whether each track passes the vertexing preselection (d0 significance).
    n_pv
        Reconstructed vertices per event.
    pv_cluster, pv_z
        Per event, the primary vertex (largest sum of pt^2; -1 if none) and its z [cm] (0, the
        beam spot, without one).
    """

    cluster_event: np.ndarray
    z: np.ndarray
    reconstructed: np.ndarray
    track_cluster: np.ndarray
    eligible: np.ndarray
    n_pv: np.ndarray
    pv_cluster: np.ndarray
    pv_z: np.ndarray


def reconstruct_vertices(gen: DetectorInput, tracks: Tracks, cfg: DetectorConfig) -> Vertices:
    """Merge interactions closer in z than ``cfg.vertex_merge_distance`` (chains, per event),
    fit each cluster's z from its eligible tracks, keep clusters with at least
    ``cfg.vertex_min_tracks`` of them, and choose the primary vertex of each event."""
    eligible = np.abs(tracks.d0) / tracks.sigma_d0 < cfg.vertex_max_d0_significance
    n_int = len(gen.interaction_event)
    order = np.lexsort((gen.interaction_z, gen.interaction_event))
    z_sorted = gen.interaction_z[order]
    ev_sorted = gen.interaction_event[order]
    new_cluster = np.ones(n_int, dtype=bool)
    new_cluster[1:] = (ev_sorted[1:] != ev_sorted[:-1]) | (
        np.diff(z_sorted) > cfg.vertex_merge_distance
    )
    cluster_sorted = np.cumsum(new_cluster) - 1
    cluster_of_int = np.empty(n_int, dtype=np.int64)
    cluster_of_int[order] = cluster_sorted
    n_clusters = int(cluster_sorted[-1]) + 1 if n_int else 0
    cluster_event = np.zeros(n_clusters, dtype=np.int64)
    cluster_event[cluster_sorted] = ev_sorted

    t_cluster = cluster_of_int[tracks.interaction]
    w = np.where(eligible, 1.0 / tracks.sigma_dz**2, 0.0)
    n_trk = np.bincount(t_cluster, weights=eligible.astype(np.float64), minlength=n_clusters)
    sumw = np.bincount(t_cluster, weights=w, minlength=n_clusters)
    sumwz = np.bincount(t_cluster, weights=w * tracks.z0, minlength=n_clusters)
    sumpt2 = np.bincount(
        t_cluster, weights=np.where(eligible, tracks.pt**2, 0.0), minlength=n_clusters
    )
    reco = n_trk >= cfg.vertex_min_tracks
    vz = np.where(sumw > 0, sumwz / np.where(sumw > 0, sumw, 1.0), 0.0)
    n_pv = np.bincount(cluster_event[reco], minlength=gen.n_events).astype(np.int32)

    # primary vertex: the reconstructed vertex with the largest sum of pt^2; events without one
    # fall back to the beam spot (z = 0), as CMS does
    score = np.where(reco, sumpt2, -1.0)
    pv_cluster = np.full(gen.n_events, -1, dtype=np.int64)
    if n_clusters:
        best = np.lexsort((score, cluster_event))  # last per event is the best
        last_of_event = np.ones(n_clusters, dtype=bool)
        ce = cluster_event[best]
        last_of_event[:-1] = ce[1:] != ce[:-1]
        winners = best[last_of_event]
        winners = winners[reco[winners]]
        pv_cluster[cluster_event[winners]] = winners
    pv_z = np.where(pv_cluster >= 0, vz[np.maximum(pv_cluster, 0)], 0.0)
    return Vertices(
        cluster_event=cluster_event, z=vz, reconstructed=reco, track_cluster=t_cluster,
        eligible=eligible, n_pv=n_pv, pv_cluster=pv_cluster, pv_z=pv_z,
    )  # fmt: skip


def from_pv(
    tracks: Tracks, vertices: Vertices, lepton: np.ndarray, cfg: DetectorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per track, CMS's ``PackedCandidate::fromPV`` and dz to the primary vertex [cm].

    fromPV: 3 used in the primary vertex's fit; 2 attached to it (closest in z among the
    reconstructed vertices while in no fit) or an identified lepton; 1 in no fit; 0 in the fit
    of another vertex. A track is in its vertex's fit when eligible, its vertex reconstructed and
    |z0 - z_vertex| below ``cfg.vertex_fit_dz_significance`` sigma_dz."""
    t_cluster = vertices.track_cluster
    in_fit = (
        vertices.eligible
        & vertices.reconstructed[t_cluster]
        & (
            np.abs(tracks.z0 - vertices.z[t_cluster])
            < cfg.vertex_fit_dz_significance * tracks.sigma_dz
        )
    )
    t_pv = vertices.pv_cluster[tracks.event]
    in_fit_pv = in_fit & (t_cluster == t_pv)
    closest = closest_vertex(
        tracks.event, tracks.z0, np.flatnonzero(vertices.reconstructed), vertices.cluster_event,
        vertices.z,
    )  # fmt: skip
    closest_is_pv = (closest == t_pv) & (t_pv >= 0)
    flags = np.where(
        in_fit_pv,
        3,
        np.where(closest_is_pv & ~in_fit | lepton, 2, np.where(~in_fit, 1, 0)),
    ).astype(np.int8)
    return flags, tracks.z0 - vertices.pv_z[tracks.event]


def closest_vertex(
    t_event: np.ndarray,
    t_z0: np.ndarray,
    vertices: np.ndarray,
    cluster_event: np.ndarray,
    vz: np.ndarray,
) -> np.ndarray:
    """Cluster index of the reconstructed vertex closest in z to each track (-1 if none)."""
    if len(vertices) == 0:
        return np.full(len(t_event), -1, dtype=np.int64)
    span = 1.0e4  # cm; separates events on one axis
    key_v = cluster_event[vertices] * span + vz[vertices]
    order = np.argsort(key_v)
    key_v = key_v[order]
    vertices = vertices[order]
    key_t = t_event * span + t_z0
    right = np.searchsorted(key_v, key_t)
    left = np.clip(right - 1, 0, len(key_v) - 1)
    right = np.clip(right, 0, len(key_v) - 1)
    choose_right = np.abs(key_v[right] - key_t) < np.abs(key_v[left] - key_t)
    best = np.where(choose_right, right, left)
    same_event = cluster_event[vertices[best]] == t_event
    return np.where(same_event, vertices[best], -1)

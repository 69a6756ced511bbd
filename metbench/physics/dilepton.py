"""The neutrinos of tt -> (b l nu)(b l nu) from the W and top masses, solved analytically.

For one chain, a massless neutrino with m(l nu) = m_W and m(b l nu) = m_top satisfies two linear
equations in its four-momentum,

    E_l E - p_l . p = (m_W^2 - m_l^2) / 2,
    E_b E - p_b . p = (m_top^2 - m_bl^2 - m_W^2 + m_l^2) / 2,

and E = |p|. Eliminating E leaves a plane in momentum space cut by a spheroid with a focus at the
origin: an ellipse, ``p(phi) = centre + axis_1 cos(phi) + axis_2 sin(phi)``, or nothing when the
masses are too small for the chain's b and lepton (:func:`neutrino_ellipse`). With both chains'
ellipses, the event's measured MET fixes the rest: nu_1 on its ellipse and MET - nu_1,T on the
transverse projection of nu_2's ellipse. The solutions are the zeros of one periodic function of
phi (0, 2 or 4 of them), found on a grid of ``n_phi`` points and refined by bisection
(:func:`dilepton_solutions`); :func:`solvable` says which events have one.

With exact inputs (the generator's b quarks, leptons and the neutrinos' own MET) every event is
solvable at its own W and top masses, and a growing fraction is not as the assumed masses go below
them: :func:`solvable_fraction` over a sample is a kinematic-endpoint measure of the masses,
independent of any network (``python -m metbench.nn.deelema_closure endpoint``).

Units: GeV. Four-momenta are ``(..., 4)`` arrays ``(px, py, pz, E)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "NeutrinoEllipse",
    "dilepton_solutions",
    "neutrino_ellipse",
    "solvable",
    "solvable_fraction",
]


class NeutrinoEllipse(NamedTuple):
    """The momenta ``centre + axis_1 cos(phi) + axis_2 sin(phi)`` [GeV] ``(n, 3)`` each of a
    chain's massless neutrino at given W and top masses; ``exists`` ``(n,)`` is false where no
    momentum satisfies both (centre and axes are then NaN)."""

    centre: np.ndarray
    axis_1: np.ndarray
    axis_2: np.ndarray
    exists: np.ndarray

    def at(self, phi: np.ndarray) -> np.ndarray:
        """``(n, k, 3)`` momenta at the angles ``phi`` ``(n, k)`` or ``(k,)``."""
        phi = np.broadcast_to(phi, (len(self.centre), np.shape(phi)[-1]))
        return (
            self.centre[:, None]
            + self.axis_1[:, None] * np.cos(phi)[..., None]
            + self.axis_2[:, None] * np.sin(phi)[..., None]
        )


def _minkowski_square(p: np.ndarray) -> np.ndarray:
    return p[..., 3] ** 2 - np.sum(p[..., :3] ** 2, axis=-1)


def _orthonormal_pair(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors ``(n, 3)`` orthogonal to the unit vectors ``n`` and to each other."""
    helper = np.where(
        (np.abs(n[:, 2]) < 0.9)[:, None], np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    )
    u = np.cross(n, helper)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return u, np.cross(n, u)


def neutrino_ellipse(
    b: np.ndarray, lepton: np.ndarray, m_w: float | np.ndarray, m_top: float | np.ndarray
) -> NeutrinoEllipse:
    """The ellipse of massless-neutrino momenta with m(l nu) = ``m_w`` and m(b l nu) = ``m_top``.

    Parameters
    ----------
    b, lepton
        ``(n, 4)`` (px, py, pz, E) of the chain's b quark and charged lepton [GeV].
    m_w, m_top
        The W and top masses [GeV], scalars or ``(n,)``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # incomplete events: NaN, no ellipse
        return _neutrino_ellipse(b, lepton, m_w, m_top)


def _neutrino_ellipse(
    b: np.ndarray, lepton: np.ndarray, m_w: float | np.ndarray, m_top: float | np.ndarray
) -> NeutrinoEllipse:
    b, lepton = np.asarray(b, dtype=np.float64), np.asarray(lepton, dtype=np.float64)
    m_w2 = np.asarray(m_w, dtype=np.float64) ** 2
    m_top2 = np.asarray(m_top, dtype=np.float64) ** 2
    m_l2 = np.maximum(_minkowski_square(lepton), 0.0)
    m_bl2 = _minkowski_square(b + lepton)
    e_l, p_l, e_b, p_b = lepton[:, 3], lepton[:, :3], b[:, 3], b[:, :3]
    alpha = 0.5 * (m_w2 - m_l2)  # E_l E - p_l.p
    beta = 0.5 * (m_top2 - m_bl2 - m_w2 + m_l2)  # E_b E - p_b.p
    # E = (alpha + p_l.p) / E_l; then the plane a.p = c
    a = (e_b / e_l)[:, None] * p_l - p_b
    c = beta - e_b * alpha / e_l
    a_norm = np.linalg.norm(a, axis=-1)
    normal = a / a_norm[:, None]
    p0 = (c / a_norm)[:, None] * normal
    u, v = _orthonormal_pair(normal)
    # on the plane, p = p0 + s u + t v; E_l^2 |p|^2 - (alpha + p_l.p)^2 = 0 is the conic
    # z^T A z + 2 g^T z + k = 0 in z = (s, t)
    w = np.stack([np.sum(p_l * u, -1), np.sum(p_l * v, -1)], -1)
    shift = alpha + np.sum(p_l * p0, -1)
    quad = e_l[:, None, None] ** 2 * np.eye(2) - w[:, :, None] * w[:, None, :]
    g = -shift[:, None] * w
    k = e_l**2 * np.sum(p0**2, -1) - shift**2
    centre_z = -np.linalg.solve(quad, g[..., None])[..., 0]
    level = -(k + np.sum(g * centre_z, -1))  # (z - z_c)^T A (z - z_c) = level
    eigval, eigvec = np.linalg.eigh(quad)
    exists = (level > 0) & np.all(eigval > 0, -1) & (a_norm > 0)
    radii = np.sqrt(np.where(exists[:, None], level[:, None] / np.where(eigval > 0, eigval, 1), 0))
    centre = p0 + centre_z[:, :1] * u + centre_z[:, 1:] * v
    axes = [
        radii[:, i : i + 1] * (eigvec[:, 0, i : i + 1] * u + eigvec[:, 1, i : i + 1] * v)
        for i in (0, 1)
    ]
    nan = np.where(exists[:, None], 0.0, np.nan)
    return NeutrinoEllipse(centre + nan, axes[0] + nan, axes[1] + nan, exists)


def _mismatch(
    phi: np.ndarray, first: NeutrinoEllipse, second: NeutrinoEllipse, met: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """g(phi) = |B^-1 (MET - nu_1,T(phi) - c_2,T)|^2 - 1 ``(n, k)`` (zero where MET - nu_1,T lies
    on the transverse projection of the second ellipse) and that point's ``(n, k, 2)``
    coordinates (cos psi, sin psi) on it."""
    nu1 = first.at(phi)[..., :2]
    basis = np.stack([second.axis_1[:, :2], second.axis_2[:, :2]], -1)  # (n, 2, 2)
    det = np.linalg.det(basis)
    safe = np.where(np.abs(det)[:, None, None] > 1e-12, basis, np.eye(2))
    rest = met[:, None, :] - nu1 - second.centre[:, None, :2]
    coords = np.linalg.solve(safe[:, None], rest[..., None])[..., 0]
    return np.sum(coords**2, -1) - 1.0, coords


def _subset(ellipse: NeutrinoEllipse, rows: np.ndarray) -> NeutrinoEllipse:
    return NeutrinoEllipse(*(field[rows] for field in ellipse))


def _roots(
    first: NeutrinoEllipse, second: NeutrinoEllipse, met: np.ndarray, n_phi: int
) -> tuple[np.ndarray, np.ndarray]:
    """The zeros of :func:`_mismatch`: ``(rows, phi)``, the event and the first ellipse's angle of
    each solution, in order of angle within an event.

    Brackets: the grid intervals where g changes sign, and around each grid extremum whose sign
    disagrees with its refinement (golden-section search): two zeros closer than the grid step,
    as at the edge of solvability, are found there."""
    step = 2.0 * np.pi / n_phi
    grid = np.linspace(0.0, 2.0 * np.pi, n_phi, endpoint=False)
    g, _ = _mismatch(grid, first, second, met)
    g_prev, g_next = np.roll(g, 1, axis=1), np.roll(g, -1, axis=1)
    finite = np.isfinite(g) & np.isfinite(g_next) & np.isfinite(g_prev)
    rows_c, cols_c = np.nonzero(finite & (np.sign(g) != np.sign(g_next)))
    brackets = [(rows_c, grid[cols_c], grid[cols_c] + step)]
    # extrema on the wrong side of zero: a minimum above it, a maximum below it
    side = np.where(g > 0, 1.0, -1.0)
    extremum = finite & (side * g <= side * g_prev) & (side * g <= side * g_next)
    rows_e, cols_e = np.nonzero(extremum)
    if len(rows_e):
        sub1, sub2, met_e = _subset(first, rows_e), _subset(second, rows_e), met[rows_e]
        sign = side[rows_e, cols_e]
        a, b = grid[cols_e] - step, grid[cols_e] + step
        ratio = (np.sqrt(5.0) - 1.0) / 2.0
        for _ in range(40):  # golden-section search for the extremum, to ~1e-9 of the step
            c, d = b - ratio * (b - a), a + ratio * (b - a)
            gc = sign * _mismatch(c[:, None], sub1, sub2, met_e)[0][:, 0]
            gd = sign * _mismatch(d[:, None], sub1, sub2, met_e)[0][:, 0]
            lower = gc < gd
            a, b = np.where(lower, a, c), np.where(lower, d, b)
        best = 0.5 * (a + b)
        crosses = sign * _mismatch(best[:, None], sub1, sub2, met_e)[0][:, 0] <= 0
        rows_x, lo_x, mid_x = rows_e[crosses], grid[cols_e][crosses] - step, best[crosses]
        brackets += [(rows_x, lo_x, mid_x), (rows_x, mid_x, lo_x + 2.0 * step)]
    rows = np.concatenate([r for r, _, _ in brackets])
    lo = np.concatenate([x for _, x, _ in brackets])
    hi = np.concatenate([x for _, _, x in brackets])
    sub1, sub2, met_r = _subset(first, rows), _subset(second, rows), met[rows]
    g_lo = _mismatch(lo[:, None], sub1, sub2, met_r)[0][:, 0]
    for _ in range(50):  # bisection
        mid = 0.5 * (lo + hi)
        g_mid = _mismatch(mid[:, None], sub1, sub2, met_r)[0][:, 0]
        left = np.sign(g_mid) == np.sign(g_lo)
        lo, g_lo = np.where(left, mid, lo), np.where(left, g_mid, g_lo)
        hi = np.where(left, hi, mid)
    phi = np.mod(0.5 * (lo + hi), 2.0 * np.pi)
    order = np.lexsort((phi, rows))
    return rows[order], phi[order]


def _ellipses(
    b: np.ndarray, leptons: np.ndarray, m_w: float | np.ndarray, m_top: float | np.ndarray
) -> tuple[NeutrinoEllipse, NeutrinoEllipse]:
    b, leptons = np.asarray(b, dtype=np.float64), np.asarray(leptons, dtype=np.float64)
    m_w = np.broadcast_to(np.asarray(m_w, dtype=np.float64).T, (2, len(b)))
    m_top = np.broadcast_to(np.asarray(m_top, dtype=np.float64).T, (2, len(b)))
    return (
        neutrino_ellipse(b[:, 0], leptons[:, 0], m_w[0], m_top[0]),
        neutrino_ellipse(b[:, 1], leptons[:, 1], m_w[1], m_top[1]),
    )


def dilepton_solutions(
    b: np.ndarray,
    leptons: np.ndarray,
    met: np.ndarray,
    m_w: float | np.ndarray = 80.4,
    m_top: float | np.ndarray = 172.5,
    n_phi: int = 360,
) -> tuple[np.ndarray, np.ndarray]:
    """The neutrino pairs of each event that give both chains the masses ``m_w``, ``m_top`` and
    sum to the MET.

    Parameters
    ----------
    b, leptons
        ``(n, 2, 4)`` (px, py, pz, E) of the b quarks and charged leptons of the two chains [GeV].
    met
        ``(n, 2)`` the MET (px, py) [GeV].
    m_w, m_top
        The W and top masses [GeV]: one for all, ``(n,)`` one per event or ``(n, 2)`` one per
        event and chain.
    n_phi
        Grid points on the first neutrino's ellipse (each grid extremum is refined, so two
        solutions closer than the grid step are found too).

    Returns
    -------
    (neutrinos, found)
        ``(n, 4, 2, 3)`` momenta [GeV] of up to four solutions in order of the first neutrino's
        angle on its ellipse (NaN where fewer) and ``(n, 4)`` whether each is a solution.
    """
    met = np.asarray(met, dtype=np.float64)
    first, second = _ellipses(b, leptons, m_w, m_top)
    with np.errstate(divide="ignore", invalid="ignore"):
        rows, phi = _roots(first, second, met, n_phi)
    start = np.searchsorted(rows, rows)  # first index of each row
    rank = np.arange(len(rows)) - start
    keep = rank < 4
    rows, phi, rank = rows[keep], phi[keep], rank[keep]
    sub1, sub2 = _subset(first, rows), _subset(second, rows)
    nu1 = sub1.at(phi[:, None])[:, 0]
    _, coords = _mismatch(phi[:, None], sub1, sub2, met[rows])
    coords = coords[:, 0] / np.linalg.norm(coords[:, 0], axis=-1, keepdims=True)
    nu2 = sub2.centre + sub2.axis_1 * coords[:, :1] + sub2.axis_2 * coords[:, 1:]
    neutrinos = np.full((len(met), 4, 2, 3), np.nan)
    neutrinos[rows, rank, 0], neutrinos[rows, rank, 1] = nu1, nu2
    found = np.zeros((len(met), 4), dtype=bool)
    found[rows, rank] = True
    return neutrinos, found


def solvable(
    b: np.ndarray,
    leptons: np.ndarray,
    met: np.ndarray,
    m_w: float | np.ndarray = 80.4,
    m_top: float | np.ndarray = 172.5,
    n_phi: int = 360,
) -> np.ndarray:
    """``(n,)`` whether each event has neutrinos giving both chains the masses ``m_w``, ``m_top``
    [GeV] and summing to the MET (arguments as :func:`dilepton_solutions`)."""
    met = np.asarray(met, dtype=np.float64)
    first, second = _ellipses(b, leptons, m_w, m_top)
    with np.errstate(divide="ignore", invalid="ignore"):
        rows, _ = _roots(first, second, met, n_phi)
    out = np.zeros(len(met), dtype=bool)
    out[rows] = True
    return out


def solvable_fraction(
    b: np.ndarray,
    leptons: np.ndarray,
    met: np.ndarray,
    m_w: np.ndarray,
    m_top: np.ndarray,
    n_phi: int = 360,
) -> np.ndarray:
    """The fraction of events that are :func:`solvable` at each point of a mass grid:
    ``m_w`` ``(a,)`` and ``m_top`` ``(c,)`` [GeV] give an ``(a, c)`` array."""
    out = np.empty((len(m_w), len(m_top)))
    for i, mw in enumerate(np.asarray(m_w, dtype=np.float64)):
        for j, mt in enumerate(np.asarray(m_top, dtype=np.float64)):
            out[i, j] = np.mean(solvable(b, leptons, met, mw, mt, n_phi))
    return out

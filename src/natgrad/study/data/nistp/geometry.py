"""Geometric NISTP modules: slant, affine, local elastic and pinch, each a map from output pixel
coordinates to input coordinates (composed into one sampling grid by the pipeline)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from natgrad.study.data.nistp import rng
from natgrad.study.data.nistp.base import Module
from natgrad.study.data.nistp.sampling import dct_basis, synthesis

ELASTIC_RANK = 12


def _centre(size):
    return (size - 1) / 2.0


# ---- slant: row i shifted by round(i * angle), re-centred ---------------------------------------

def _slant_draw(key, c, size, bank_size):
    k1, k2 = jax.random.split(key)
    angle = jax.random.uniform(k1, (), maxval=1.0) * c
    sign = jnp.where(jax.random.bernoulli(k2), 1.0, -1.0)
    return {"angle": angle * sign}


def _slant_coords(p, ys, xs):
    cy = _centre(ys.shape[-1])
    shift = jnp.round((ys - cy) * p["angle"][:, None, None])
    return ys, xs - shift


SLANT = Module("slant", _slant_draw, coords=_slant_coords, integer=True)


# ---- affine: u ~ U(-.5, .5)^6; a = 1 + .8cu0, b = .8cu1, c = 9cu2, d = .8cu3, e = 1 + .8cu4, f = 9cu5

def _affine_draw(key, c, size, bank_size):
    u = jax.random.uniform(key, (6,), minval=-0.5, maxval=0.5)
    scale = jnp.array([0.8, 0.8, 9.0, 0.8, 0.8, 9.0]) * c
    return {"abcdef": u * scale + jnp.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])}


def _affine_coords(p, ys, xs):
    # PIL's AFFINE data (a..f) maps output (x, y) to input (a x + b y + c, d x + e y + f); here
    # about the image centre, so that scaling does not also move the character.
    cy = _centre(ys.shape[-1])
    a, b, c, d, e, f = (p["abcdef"][:, i, None, None] for i in range(6))
    dx, dy = xs - cy, ys - cy
    return d * dx + e * dy + f + cy, a * dx + b * dy + c + cy


AFFINE = Module("affine", _affine_draw, coords=_affine_coords)


# ---- local elastic: c' = (floor(10c)/10)^(1/3), alpha = 10c', sigma = 10 - 7c' -------------------

@functools.lru_cache(maxsize=16)
def elastic_tables(size, rank=ELASTIC_RANK):
    """(basis (size, rank), coefficient std (10, rank, rank)) for the ten complexity levels.

    The original draws U(-1, 1) noise on a padded field, blurs it with the separable kernel
    exp(-((x - a)/sigma)^2) of 1.5 sigma taps (normalised), crops and multiplies by alpha. That field
    is stationary with covariance alpha^2/3 * c1 (x) c1 (c1: the 1-D kernel's autocorrelation); here
    it is drawn as unit-variance coefficients on the lowest `rank` DCT frequencies scaled by the
    variances of that covariance (rescaled to keep the total variance): two small matrix products
    per field instead of a blur.
    """
    basis_full = dct_basis(size, size).astype(np.float64)
    std = np.zeros((10, rank, rank), np.float32)
    for level in range(1, 10):
        cp = (level / 10.0) ** (1.0 / 3.0)
        alpha, sigma = 10.0 * cp, 10.0 - 7.0 * cp
        ks = 1.5 * sigma
        g = np.exp(-np.square((np.arange(0, ks) - ks / 2.0) / sigma))
        g /= g.sum()
        c1 = np.array([np.sum(g[:len(g) - k] * g[k:]) if k < len(g) else 0.0 for k in range(size)])
        cov = c1[np.abs(np.arange(size)[:, None] - np.arange(size)[None, :])]
        lam = np.einsum("il,ij,jl->l", basis_full, cov, basis_full)
        lam_r = lam[:rank] * (lam.sum() / lam[:rank].sum())
        std[level] = alpha * np.sqrt(np.outer(lam_r, lam_r) / 3.0)
    return dct_basis(size, rank), std


def _elastic_draw(key, c, size, bank_size):
    level = jnp.clip(jnp.floor(c * 10.0 + 1e-6), 0, 9).astype(jnp.int32)
    z = rng.unit(key, (2, ELASTIC_RANK, ELASTIC_RANK))   # unit variance, like the U(-1,1) noise
    return {"level": level, "z": z}


def _elastic_coords(p, ys, xs):
    basis, std = elastic_tables(ys.shape[-1])
    coeffs = p["z"] * jnp.asarray(std)[p["level"]][:, None]          # (B, 2, r, r)
    b, r = coeffs.shape[0], coeffs.shape[-1]
    fields = synthesis(basis, coeffs.reshape(b * 2, r, r)).reshape(b, 2, *ys.shape[1:])
    return ys + fields[:, 1], xs + fields[:, 0]


ELASTIC = Module("elastic", _elastic_draw, coords=_elastic_coords, grid_only=True)


# ---- pinch (the geometric half of "motion blur + pinch", drawn by filters.MOTION_BLUR_PINCH) -------

def pinch_coords(p, ys, xs):
    """GIMP's whirl-pinch without whirl, radius half the image: a point at normalised distance
    d < 1 from the centre reads the input at distance d * sin(pi/2 d)^(-pinch)."""
    cy = _centre(ys.shape[-1])
    radius = ys.shape[-1] / 2.0
    dy, dx = ys - cy, xs - cy
    d = jnp.sqrt(dy * dy + dx * dx) / radius
    inside = (d < 1.0) & (d > 0.0)
    safe = jnp.where(inside, d, 0.5)
    factor = jnp.where(inside, jnp.power(jnp.sin(0.5 * jnp.pi * safe), -p["pinch"][:, None, None]),
                       1.0)
    return cy + dy * factor, cy + dx * factor


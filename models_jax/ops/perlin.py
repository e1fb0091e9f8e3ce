"""2-D Perlin gradient noise with traced lattice resolution and rotation (jit- and vmap-friendly).

``perlin_noise(key, (H, W), res_y, res_x, angle)`` follows DRAEM's ``rand_perlin_2d``:
pixel ``(i, j)`` sits at lattice coordinates ``(i * res_y / H, j * res_x / W)``; every
lattice point carries a random unit gradient; the value is the quintic-faded
(``6t^5 - 15t^4 + 10t^3``) interpolation of the four corner dot products, times
``sqrt(2)``. Two generalisations make it traceable: the lattice is a fixed
``LATTICE x LATTICE`` periodic grid (indices wrap), so ``res_y``/``res_x`` may be traced
values up to ``LATTICE``; and ``angle`` rotates the sampling coordinates about the image
centre (DRAEM rotates the thresholded noise with an affine warp instead).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["LATTICE", "random_lattice", "perlin_noise", "fractal_noise"]

#: Side of the periodic gradient lattice: the largest resolution (cells per image side).
LATTICE = 64


def _fade(t: jax.Array) -> jax.Array:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def random_lattice(key: jax.Array, count: int | None = None) -> jax.Array:
    """Gradient angles ``f32[LATTICE, LATTICE]`` (or ``f32[count, LATTICE, LATTICE]``), uniform in [0, 2 pi)."""
    shape = (LATTICE, LATTICE) if count is None else (count, LATTICE, LATTICE)
    return jax.random.uniform(key, shape, minval=0.0, maxval=2.0 * jnp.pi)


def perlin_noise(lattice: jax.Array, shape: tuple[int, int], res_y, res_x, angle=0.0) -> jax.Array:
    """Perlin noise ``f32[H, W]`` with about ``res_y x res_x`` lattice cells over the image.

    Args:
      lattice: gradient angles ``f32[LATTICE, LATTICE]`` (:func:`random_lattice`).
      shape: static ``(H, W)``.
      res_y, res_x: cells along each axis (scalars, may be traced; at most :data:`LATTICE`).
      angle: rotation of the noise in radians (may be traced).

    Returns:
      Values in about ``[-1, 1]`` (``sqrt(2)`` times the interpolated dot products).
    """
    h, w = shape
    grads = jnp.stack([jnp.cos(lattice), jnp.sin(lattice)], axis=-1)  # f32[L, L, 2] as (dy, dx)
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    ry = cos * (yy - cy) - sin * (xx - cx) + cy
    rx = sin * (yy - cy) + cos * (xx - cx) + cx
    u = ry * (jnp.asarray(res_y, jnp.float32) / h)
    v = rx * (jnp.asarray(res_x, jnp.float32) / w)
    u0, v0 = jnp.floor(u), jnp.floor(v)
    fu, fv = u - u0, v - v0
    iu, iv = u0.astype(jnp.int32) % LATTICE, v0.astype(jnp.int32) % LATTICE
    iu1, iv1 = (iu + 1) % LATTICE, (iv + 1) % LATTICE

    def corner(gu, gv, du, dv):
        g = grads[gu, gv]
        return g[..., 0] * du + g[..., 1] * dv

    n00 = corner(iu, iv, fu, fv)
    n10 = corner(iu1, iv, fu - 1.0, fv)
    n01 = corner(iu, iv1, fu, fv - 1.0)
    n11 = corner(iu1, iv1, fu - 1.0, fv - 1.0)
    su, sv = _fade(fu), _fade(fv)
    top = n00 + su * (n10 - n00)
    bottom = n01 + su * (n11 - n01)
    return jnp.sqrt(2.0) * (top + sv * (bottom - top))


def fractal_noise(lattices: jax.Array, shape: tuple[int, int], res, angle=0.0) -> jax.Array:
    """Sum of Perlin layers, one per lattice of ``lattices f32[octaves, LATTICE, LATTICE]``,
    resolution doubling and amplitude halving: ``f32[H, W]``.

    ``res`` (cells of the first octave, may be traced) times ``2**(octaves-1)`` must be
    at most :data:`LATTICE`.
    """
    total = jnp.zeros(shape, jnp.float32)
    for octave in range(lattices.shape[0]):
        scale = 2.0**octave
        total = total + perlin_noise(lattices[octave], shape, res * scale, res * scale, angle) / scale
    return total

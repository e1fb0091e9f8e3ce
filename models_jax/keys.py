"""PRNG keys that compile fast on XLA:CPU.

XLA's CPU compiler spends seconds on every threefry call site (one per
parameter initialiser, several per simulated anomaly), which made a seeded
ResNet init or a DRAEM training step take tens of seconds to compile;
``RngBitGenerator`` (``impl="rbg"``) compiles in a fraction of that.
:func:`rbg_key` derives an ``rbg`` key from any single key, deterministically.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["rbg_key"]


def rbg_key(key: jax.Array) -> jax.Array:
    """The ``rbg`` key derived from ``key`` (a pure function of it): a threefry key's two data
    words are repeated into rbg's four; an rbg key is returned unchanged.

    Args:
      key: a typed key (threefry or rbg) or a legacy ``uint32[2]`` from ``jax.random.PRNGKey``.

    Raises:
      ValueError: ``key`` is not a single key.
    """
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if jax.random.key_impl(key) == jax.random.key_impl(jax.random.key(0, impl="rbg")):
            return key
        data = jax.random.key_data(key)
    else:
        data = jnp.asarray(key)  # legacy uint32[2] from jax.random.PRNGKey
    data = jnp.asarray(data, jnp.uint32).reshape(-1)
    if data.shape != (2,):
        raise ValueError(f"key must be a single PRNG key (threefry or rbg), got key data of shape {data.shape}")
    return jax.random.wrap_key_data(jnp.concatenate([data, data]), impl="rbg")

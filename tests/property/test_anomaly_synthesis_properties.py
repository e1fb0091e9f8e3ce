"""DRAEM's simulated anomalies: the mask is exactly the set of pixels the generator altered."""

import hypothesis.extra.numpy as hnp
import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from models_jax.keys import rbg_key
from models_jax.ops.anomaly_synthesis import synthesize_anomalies

_SYNTHESIZE = jax.jit(synthesize_anomalies)


@given(
    pixels=hnp.arrays(np.uint8, (2, 16, 24, 3)),
    seed=st.integers(0, 2**31 - 1),
    probability=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_the_mask_is_exactly_the_set_of_altered_pixels(pixels, seed, probability):
    images = (pixels / np.float32(255)).astype(np.float32)
    augmented, masks = (np.asarray(a) for a in _SYNTHESIZE(rbg_key(jax.random.key(seed)), images, probability))
    altered = np.any(augmented != images, axis=-1)
    assert set(np.unique(masks).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(altered, masks == 1.0)
    assert augmented.min() >= 0.0 and augmented.max() <= 1.0
    if probability == 0.0:
        assert not altered.any()

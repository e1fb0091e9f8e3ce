"""Calls are padded to power-of-two buckets, so a stream compiles a bounded set of programs."""

from hypothesis import given
from hypothesis import strategies as st

from pyimgano.scoring import call_batch_size


def test_a_folders_partial_last_batch_uses_a_bucket_not_its_own_size():
    assert [call_batch_size(n, 16) for n in (1, 2, 3, 4, 5, 8, 9, 16, 17, 83)] == [1, 2, 4, 4, 8, 8, 16, 16, 16, 16]
    assert call_batch_size(3, 16, n_dev=2) == 4 and call_batch_size(1, 16, n_dev=8) == 8
    assert call_batch_size(5, 6) == 6 and call_batch_size(20, 16, n_dev=3) == 18


@given(count=st.integers(1, 500), batch=st.integers(1, 64), n_dev=st.integers(1, 8))
def test_buckets_hold_the_call_are_few_and_split_over_the_devices(count, batch, n_dev):
    rows = call_batch_size(count, batch, n_dev)
    assert rows % n_dev == 0
    assert rows >= min(count, batch)
    assert rows < max(2 * min(count, batch), 1) + n_dev
    sizes = {call_batch_size(c, batch, n_dev) for c in range(1, 500)}
    assert len(sizes) <= batch.bit_length() + 1

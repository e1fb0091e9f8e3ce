"""The shared trainer on a linear model (cheap to compile): order, reproducibility, resume, devices, divergence."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.training import (
    create_train_state,
    data_parallel_for,
    epoch_order,
    make_optimizer,
    make_train_step,
    run_training,
)
from pyimgano.checkpoints import CheckpointDir

N, EPOCHS, BATCH = 24, 8, 4
TOTAL = EPOCHS * (N // BATCH)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]], np.float32) + 0.25).astype(np.float32)
    return {"x": x, "y": y}


def linear_loss(params, batch_stats, frozen, batch, key):
    pred = batch["x"] @ params["w"] + params["b"]
    # A key-dependent (but tiny) input jitter, so the per-step keys matter to the result.
    jitter = 1e-3 * jax.random.normal(key, pred.shape)
    loss = jnp.mean((pred + jitter - batch["y"]) ** 2)
    return loss, (batch_stats, {"mae": jnp.mean(jnp.abs(pred - batch["y"]))})


_OPT = make_optimizer("sgd", lr=0.05, total_steps=TOTAL, momentum=0.5)
_STEPS: dict = {}


def _setup(devices=None, optimizer=_OPT):
    parallel = data_parallel_for(BATCH, devices)
    cache_key = (parallel.num_devices, id(optimizer))
    if cache_key not in _STEPS:
        _STEPS[cache_key] = make_train_step(linear_loss, optimizer, parallel)
    state = create_train_state({"w": jnp.zeros((3, 1)), "b": jnp.zeros((1,))}, optimizer)
    return state, _STEPS[cache_key], parallel


def _train(key=0, checkpoints=None, progress=None, run=None, devices=None, epochs=EPOCHS):
    state, step, parallel = _setup(devices)
    return run_training(
        state, step, _data(), key=jax.random.key(key), epochs=epochs, batch_size=BATCH, parallel=parallel,
        run=run, checkpoints=checkpoints, progress=progress,
    )


def _leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves((state.params, state.opt_state, state.step))]


def test_training_fits_the_linear_model_and_the_loss_goes_down():
    result = _train(epochs=EPOCHS)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == EPOCHS and losses[-1] < 0.05 * losses[0]
    np.testing.assert_allclose(np.asarray(result.state.params["w"])[:, 0], [1.5, -2.0, 0.5], atol=0.1)
    assert int(result.state.step) == TOTAL


def test_epoch_order_is_a_permutation_fixed_by_key_and_epoch():
    key = jax.random.key(3)
    first = epoch_order(key, 0, 10)
    assert sorted(first.tolist()) == list(range(10))
    np.testing.assert_array_equal(first, epoch_order(key, 0, 10))
    assert not np.array_equal(first, epoch_order(key, 1, 10))
    assert not np.array_equal(first, epoch_order(jax.random.key(4), 0, 10))


def test_one_key_gives_bit_identical_weights_and_another_key_differs():
    a, b, c = _train(key=1), _train(key=1), _train(key=2)
    for x, y in zip(_leaves(a.state), _leaves(b.state)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(np.asarray(a.state.params["w"]), np.asarray(c.state.params["w"]))


class _Stop(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_uninterrupted_weights(tmp_path):
    reference = _train(key=5)
    store = CheckpointDir(tmp_path / "ckpt")
    steps_per_epoch = N // BATCH

    def interrupt(n):
        if n >= N * (2 * steps_per_epoch + 2) // TOTAL:  # two steps into epoch 3
            raise _Stop

    with pytest.raises(_Stop):
        _train(key=5, checkpoints=store, progress=interrupt)
    assert store.load().epoch == 2
    seen = []
    resumed = _train(key=5, checkpoints=store, progress=seen.append)
    assert resumed.resumed_epochs == 2
    # One jump to the resumed point, then only the remaining epochs' steps.
    assert seen[0] == N * 2 * steps_per_epoch // TOTAL and len(seen) == 1 + (EPOCHS - 2) * steps_per_epoch
    for x, y in zip(_leaves(reference.state), _leaves(resumed.state)):
        np.testing.assert_array_equal(x, y)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in reference.history], rel=0, abs=0)
    summary = json.loads((tmp_path / "ckpt" / "training.json").read_text())
    assert summary["epoch"] == EPOCHS and len(summary["history"]) == EPOCHS


def test_a_finished_run_is_returned_without_training_again(tmp_path):
    store = CheckpointDir(tmp_path)
    first = _train(key=6, checkpoints=store)
    calls = []
    again = _train(key=6, checkpoints=store, progress=calls.append)
    assert again.resumed_epochs == EPOCHS and calls == [N]
    for x, y in zip(_leaves(first.state), _leaves(again.state)):
        np.testing.assert_array_equal(x, y)


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    store = CheckpointDir(tmp_path)
    _train(key=7, checkpoints=store, run={"dataset": "a"}, epochs=1)
    with pytest.raises(ValueError, match="another training run.*dataset"):
        _train(key=7, checkpoints=store, run={"dataset": "b"}, epochs=1)
    with pytest.raises(ValueError, match="key"):
        _train(key=8, checkpoints=store, run={"dataset": "a"}, epochs=1)


def test_two_devices_split_the_batch_and_match_one_device():
    assert len(jax.local_devices()) == 2  # tests/conftest.py forces two host devices
    two = _train(key=9)
    one = _train(key=9, devices=jax.local_devices()[:1])
    assert data_parallel_for(BATCH).num_devices == 2 and data_parallel_for(3).num_devices == 1
    assert len(two.state.params["w"].sharding.device_set) == 2
    for x, y in zip(_leaves(two.state), _leaves(one.state)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_a_diverging_run_raises_and_names_the_remedy():
    optimizer = make_optimizer("sgd", lr=1e4, total_steps=TOTAL)
    state, step, parallel = _setup(optimizer=optimizer)
    with pytest.raises(FloatingPointError, match="grad_clip_norm"):
        run_training(state, step, _data(), key=jax.random.key(0), epochs=EPOCHS, batch_size=BATCH, parallel=parallel)


def test_bad_sizes_are_refused():
    state, step, parallel = _setup()
    with pytest.raises(ValueError, match="epochs"):
        run_training(state, step, _data(), key=jax.random.key(0), epochs=0, batch_size=BATCH, parallel=parallel)
    with pytest.raises(ValueError, match="non-empty"):
        empty = {"x": np.zeros((0, 3), np.float32), "y": np.zeros((0, 1), np.float32)}
        run_training(state, step, empty, key=jax.random.key(0), epochs=1, batch_size=BATCH, parallel=parallel)

"""Optimiser chain, schedules and the flat checkpoint form of a train state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models_jax.training import checkpoint_arrays, create_train_state, make_optimizer, make_schedule, restore_train_state


def test_the_step_schedule_drops_by_five_at_80_and_again_at_90_percent():
    rate = make_schedule("step", 1.0, 100)
    assert float(rate(0)) == 1.0 and float(rate(79)) == 1.0
    assert float(rate(80)) == pytest.approx(0.2) and float(rate(89)) == pytest.approx(0.2)
    assert float(rate(90)) == pytest.approx(0.04) and float(rate(99)) == pytest.approx(0.04)


def test_cosine_decays_to_zero_and_constant_stays():
    assert float(make_schedule("cosine", 0.5, 10)(0)) == pytest.approx(0.5)
    assert float(make_schedule("cosine", 0.5, 10)(10)) == pytest.approx(0.0, abs=1e-7)
    assert float(make_schedule("constant", 0.5, 10)(7)) == 0.5


def test_unknown_names_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="lr_schedule"):
        make_schedule("linear", 1.0, 10)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("rmsprop", lr=1.0, total_steps=10)
    with pytest.raises(ValueError, match="grad_clip_norm"):
        make_optimizer("sgd", lr=1.0, total_steps=10, grad_clip_norm=0.0)


def test_gradient_clipping_bounds_the_update():
    params = {"w": jnp.zeros((4,))}
    grads = {"w": jnp.full((4,), 100.0)}
    opt = make_optimizer("sgd", lr=0.1, total_steps=10, momentum=0.0, grad_clip_norm=1.0)
    updates, _ = opt.update(grads, opt.init(params), params)
    assert float(jnp.linalg.norm(updates["w"])) == pytest.approx(0.1, rel=1e-5)
    unclipped = make_optimizer("sgd", lr=0.1, total_steps=10, momentum=0.0)
    updates, _ = unclipped.update(grads, unclipped.init(params), params)
    assert float(jnp.linalg.norm(updates["w"])) == pytest.approx(20.0, rel=1e-5)


def test_weight_decay_is_added_to_the_gradient_like_torch_sgd():
    params = {"w": jnp.full((2,), 2.0)}
    opt = make_optimizer("sgd", lr=1.0, total_steps=10, momentum=0.0, weight_decay=0.5)
    updates, _ = opt.update({"w": jnp.zeros((2,))}, opt.init(params), params)
    np.testing.assert_allclose(np.asarray(updates["w"]), [-1.0, -1.0])


def _state():
    opt = make_optimizer("adam", lr=1e-3, total_steps=10, schedule="step", grad_clip_norm=1.0)
    params = {"conv": {"kernel": jnp.arange(6.0).reshape(2, 3)}, "bias": jnp.ones((3,))}
    return create_train_state(params, opt, batch_stats={"bn": {"mean": jnp.zeros((3,))}}, frozen={"t": jnp.ones(2)})


def test_checkpoint_arrays_name_every_trained_leaf_and_leave_out_the_frozen_ones():
    arrays = checkpoint_arrays(_state())
    assert "params/conv/kernel" in arrays and "batch_stats/bn/mean" in arrays and "step" in arrays
    assert any(name.startswith("opt_state/") and name.endswith("mu/conv/kernel") for name in arrays)
    assert not any(name.startswith("frozen") for name in arrays)
    assert all(isinstance(a, np.ndarray) for a in arrays.values())


def test_restore_puts_the_arrays_back_bit_for_bit():
    state = _state()
    arrays = {k: v + 1 if v.dtype.kind == "f" else v for k, v in checkpoint_arrays(state).items()}
    restored = restore_train_state(state, arrays)
    np.testing.assert_array_equal(np.asarray(restored.params["conv"]["kernel"]), np.arange(6.0).reshape(2, 3) + 1)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    np.testing.assert_array_equal(np.asarray(restored.frozen["t"]), np.ones(2))


def test_restore_lists_missing_unexpected_and_misshaped_entries():
    state = _state()
    arrays = checkpoint_arrays(state)
    arrays.pop("params/bias")
    arrays["params/extra"] = np.zeros(1, np.float32)
    arrays["params/conv/kernel"] = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"missing \['params/bias'\].*unexpected \['params/extra'\].*params/conv/kernel"):
        restore_train_state(state, arrays)

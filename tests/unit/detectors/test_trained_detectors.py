"""STFPM, Reverse Distillation, DRAEM and the autoencoder through the public API, on tiny images."""

import json

import jax
import numpy as np
import pytest

import pyimgano
from models_jax.detectors import autoencoder, draem, reverse_distillation, stfpm
from models_jax.keys import rbg_key
from models_jax.training import compiled_train_step, create_train_state
from pyimgano.scoring import prepare_frames
from pyimgano.weights import backbone_variables_for

MODULES = {
    "vision_stfpm": stfpm,
    "vision_reverse_distillation": reverse_distillation,
    "vision_draem": draem,
    "vision_ae": autoencoder,
}
NAMES = list(MODULES)


def _leaves(state):
    return [np.asarray(leaf) for leaf in jax.tree.leaves(state.model)]


def _assert_same_weights(a, b):
    left, right = _leaves(a), _leaves(b)
    assert len(left) == len(right)
    for x, y in zip(left, right):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", NAMES)
def test_the_loss_decreases_over_a_few_steps(name, trained, trained_frames):
    state, _ = trained(name)  # compiles the step this test reuses
    module, config = MODULES[name], state.config
    optimizer, step, parallel = compiled_train_step(module.training_loss, module.build_optimizer, config, 6, 4)
    frozen = backbone_variables_for(config) or {}
    params, batch_stats = module.init_trainable(config, rbg_key(jax.random.key(0)), frozen)
    train_state = parallel.replicate(create_train_state(params, optimizer, batch_stats=batch_stats, frozen=frozen))
    batch = parallel.split(prepare_frames(config, list(trained_frames[:4])))
    key = rbg_key(jax.random.key(1))  # one batch, one key: a fixed objective
    losses = []
    for _ in range(6):
        train_state, metrics = step(train_state, batch, key)
        losses.append(float(metrics["loss"]))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.95 * losses[0], losses


@pytest.mark.parametrize("name", NAMES)
def test_the_checkpoint_records_every_epoch(name, trained):
    _, folder = trained(name)
    summary = json.loads((folder / "training.json").read_text())
    assert summary["epoch"] == 3 and len(summary["history"]) == 3
    assert summary["run"]["devices"] == 2 and summary["run"]["config"]["epochs"] == 3
    assert all(np.isfinite(h["loss"]) for h in summary["history"])


@pytest.mark.parametrize("name", NAMES)
def test_training_is_bit_reproducible_for_a_seed(name, trained, trained_frames, tiny_trained_kwargs):
    state, _ = trained(name)
    again = pyimgano.fit(name, trained_frames, "rgb_u8_hwc", **tiny_trained_kwargs[name])
    _assert_same_weights(state, again)
    other_seed = pyimgano.fit(name, trained_frames, "rgb_u8_hwc", key=jax.random.PRNGKey(99), **tiny_trained_kwargs[name])
    assert any(not np.array_equal(x, y) for x, y in zip(_leaves(state), _leaves(other_seed)))


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("name", NAMES)
def test_an_interrupted_fit_resumed_with_the_same_call_equals_the_uninterrupted_one(
    name, trained, trained_frames, tiny_trained_kwargs, tmp_path
):
    state, _ = trained(name)
    n = len(trained_frames)  # 8 frames, 2 steps per epoch, 6 steps: progress 2, 4, 5, 6, 8 ... after steps

    def interrupt(done):
        if done >= n * 3 // 6:  # the first step of epoch 2, after epoch 1's checkpoint
            raise _Interrupt

    kwargs = tiny_trained_kwargs[name]
    with pytest.raises(_Interrupt):
        pyimgano.fit(name, trained_frames, "rgb_u8_hwc", checkpoint_dir=tmp_path, progress=interrupt, **kwargs)
    assert json.loads((tmp_path / "training.json").read_text())["epoch"] == 1
    seen = []
    resumed = pyimgano.fit(name, trained_frames, "rgb_u8_hwc", checkpoint_dir=tmp_path, progress=seen.append, **kwargs)
    assert seen[0] == n * 2 // 6 and len(seen) == 1 + 4  # resumed after epoch 1: four steps left
    _assert_same_weights(state, resumed)


def test_a_checkpoint_directory_of_other_images_is_refused(trained, trained_frames, tiny_trained_kwargs):
    _, folder = trained("vision_ae")
    other = trained_frames[::-1].copy()
    with pytest.raises(ValueError, match="another training run.*images_sha256"):
        pyimgano.fit("vision_ae", other, "rgb_u8_hwc", checkpoint_dir=folder, **tiny_trained_kwargs["vision_ae"])


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_keeps_scores_and_maps(name, trained, frames_factory, defect, tmp_path):
    state, _ = trained(name)
    frames = np.stack([frames_factory(1, size=(40, 48), seed=3)[0], defect(frames_factory(1, size=(40, 48), seed=4)[0])])
    loaded = pyimgano.load_state(pyimgano.save_state(state, tmp_path / "model.pyimgano"))
    assert loaded.detector == name and loaded.config == state.config
    s0, m0 = pyimgano.predict(state, frames, "rgb_u8_hwc")
    s1, m1 = pyimgano.predict(loaded, frames, "rgb_u8_hwc")
    np.testing.assert_array_equal(np.asarray(s0), np.asarray(s1))
    np.testing.assert_array_equal(np.asarray(m0), np.asarray(m1))
    # score / anomaly_maps: one score per frame, maps at the frames' size
    scores = np.asarray(pyimgano.score(loaded, frames, "rgb_u8_hwc"))
    maps = np.asarray(pyimgano.anomaly_maps(loaded, frames, "rgb_u8_hwc"))
    assert scores.shape == (2,) and scores.dtype == np.float32 and np.all(np.isfinite(scores))
    assert maps.shape == (2, 40, 48) and maps.dtype == np.float32 and np.all(np.isfinite(maps))
    np.testing.assert_allclose(scores, np.asarray(s0), rtol=1e-6)


def test_the_reverse_distillation_alias_resolves():
    assert pyimgano.get_detector("vision_reverse_dist").name == "vision_reverse_distillation"


@pytest.mark.parametrize("name", NAMES)
def test_every_trained_detector_accepts_the_common_training_options(name):
    from pyimgano.api import make_config
    from pyimgano.registry import get_detector

    _, config = make_config(name, epochs=2, lr=0.01, batch_size=3, image_size=64, seed=5)
    assert (config.epochs, config.lr, config.batch_size, tuple(config.image_size), config.seed) == (2, 0.01, 3, (64, 64), 5)
    assert "requires_training" in get_detector(name).tags
    with pytest.raises(ValueError, match="epochs"):
        make_config(name, epochs=0)
    with pytest.raises(ValueError, match="lr_schedule"):
        make_config(name, lr_schedule="linear")


@pytest.mark.parametrize("name", ["vision_reverse_distillation", "vision_draem", "vision_ae"])
def test_an_image_size_the_network_cannot_halve_often_enough_is_refused(name):
    from pyimgano.api import make_config

    with pytest.raises(ValueError, match="divisible by"):
        make_config(name, image_size=(64, 56))


def test_checkpoint_dir_is_refused_for_a_detector_that_does_not_train(frames_factory, tiny_patchcore_kwargs, tmp_path):
    with pytest.raises(ValueError, match="does not train"):
        pyimgano.fit("vision_patchcore", frames_factory(2), "rgb_u8_hwc", checkpoint_dir=tmp_path, **tiny_patchcore_kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_the_state_shapes_hook_names_every_array_of_a_fitted_state_and_refuses_a_narrowed_one(name, trained):
    import attrs

    from pyimgano.fileio import flatten_tree, unflatten_tree
    from pyimgano.registry import get_detector
    from pyimgano.state_integrity import check_model_arrays, model_arrays

    state, _ = trained(name)
    spec, model = get_detector(name), state.model
    expected = spec.state_shapes(model.config)
    arrays = model_arrays(model)
    assert {p: (tuple(a.shape), np.dtype(a.dtype).name) for p, a in arrays.items()} == expected
    check_model_arrays(spec, model, "state")
    field = [f.name for f in attrs.fields(type(model)) if f.name != "config"][-1]
    flat = flatten_tree(getattr(model, field))
    path = next(p for p in sorted(flat) if np.ndim(flat[p]) >= 1 and np.shape(flat[p])[-1] > 1)
    flat[path] = flat[path][..., :1]  # e.g. a conv kernel with one output channel left
    narrowed = attrs.evolve(model, **{field: unflatten_tree(flat)})
    with pytest.raises(ValueError, match=f"{field}/{path} has shape"):
        check_model_arrays(spec, narrowed, "state")

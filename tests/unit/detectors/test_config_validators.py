"""The shared field validators: every registered config with a ``blur_sigma`` refuses a negative one,
every config with a ``patch_size`` refuses an even one, with the same message naming the value."""

import attrs
import pytest

from pyimgano.api import make_config
from models_jax.detectors.common import non_negative, odd
from pyimgano.registry import detector_specs


def _with_field(field: str) -> list[str]:
    return sorted(s.name for s in detector_specs() if field in attrs.fields_dict(s.config_cls))


BLURRED = _with_field("blur_sigma")
PATCHED = _with_field("patch_size")


def test_the_fields_are_where_the_detectors_document_them():
    assert {"vision_patchcore", "vision_padim", "vision_spade", "vision_softpatch", "vision_anomalydino"} <= set(
        BLURRED
    )
    assert {"vision_patchcore", "vision_softpatch"} <= set(PATCHED)


@pytest.mark.parametrize("name", BLURRED)
def test_a_negative_blur_sigma_is_refused_naming_the_value(name):
    config_cls = next(s.config_cls for s in detector_specs() if s.name == name)
    assert attrs.fields_dict(config_cls)["blur_sigma"].validator is non_negative
    with pytest.raises(ValueError, match=r"^blur_sigma must be >= 0, got -0\.5$"):
        make_config(name, blur_sigma=-0.5)
    assert make_config(name, blur_sigma=0.0)[1].blur_sigma == 0.0


@pytest.mark.parametrize("name", PATCHED)
@pytest.mark.parametrize("size", [2, 4])
def test_an_even_patch_size_is_refused_naming_the_value(name, size):
    with pytest.raises(ValueError, match=rf"^patch_size must be odd \(a centred neighbourhood\), got {size}$"):
        make_config(name, patch_size=size)
    assert make_config(name, patch_size=5)[1].patch_size == 5


def test_the_validators_themselves():
    field = attrs.make_class("C", {"v": attrs.field()}).__attrs_attrs__.v
    non_negative(None, field, 0)
    odd(None, field, 1)
    odd(None, field, -3)
    with pytest.raises(ValueError, match=r"^v must be >= 0, got -1$"):
        non_negative(None, field, -1)
    with pytest.raises(ValueError, match=r"^v must be odd \(a centred neighbourhood\), got 0$"):
        odd(None, field, 0)

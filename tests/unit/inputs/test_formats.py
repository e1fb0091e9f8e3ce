import ast
import pathlib

import attrs
import pytest

import pyimgano.inputs as inputs
from pyimgano.inputs import IMAGE_FORMATS, ImageFormat, parse_image_format

SPEC_NAMES = [
    "bgr_u8_hwc",
    "rgb_u8_hwc",
    "rgb_f32_chw",
    "gray_u8_hw",
    "gray_u16_hw",
    "rgb_u16_hwc",
    "bgr_u16_hwc",
    "rgb_f32_hwc",
    "bgr_f32_hwc",
]


def test_all_formats_of_the_spec_exist_in_order():
    assert [fmt.name for fmt in ImageFormat.all()] == SPEC_NAMES
    assert ImageFormat.all() is IMAGE_FORMATS


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_each_name_parses_to_its_named_constant(name):
    constant = getattr(ImageFormat, name.upper())
    assert parse_image_format(name) is constant
    assert str(constant) == name
    assert constant.name == name
    assert parse_image_format(constant) is constant


def test_fields_describe_the_format():
    fmt = ImageFormat.RGB_F32_CHW
    assert (fmt.color, fmt.dtype, fmt.layout) == ("rgb", "f32", "chw")
    assert ImageFormat.GRAY_U16_HW.frame_ndim == 2
    assert ImageFormat.BGR_U8_HWC.frame_ndim == 3


def test_formats_are_frozen_hashable_values():
    fmt = ImageFormat("bgr", "u8", "hwc")
    assert fmt == ImageFormat.BGR_U8_HWC
    assert hash(fmt) == hash(ImageFormat.BGR_U8_HWC)
    assert len(set(IMAGE_FORMATS)) == len(SPEC_NAMES)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fmt.color = "rgb"


def test_a_combination_outside_the_list_cannot_be_constructed():
    with pytest.raises(ValueError, match="gray_f32_hw.*accepted: bgr_u8_hwc"):
        ImageFormat("gray", "f32", "hw")


def test_parsing_ignores_case_and_surrounding_spaces():
    assert parse_image_format(" BGR_U8_HWC ") is ImageFormat.BGR_U8_HWC


@pytest.mark.parametrize("name", ["auto", "", "bgr", "rgb_u8_chw", "bgr_u8"])
def test_unknown_names_are_rejected_with_the_accepted_list(name):
    with pytest.raises(ValueError) as info:
        parse_image_format(name)
    message = str(info.value)
    assert repr(name) in message
    for accepted in SPEC_NAMES:
        assert accepted in message


@pytest.mark.parametrize("value", [None, 3, b"bgr_u8_hwc", ("bgr", "u8", "hwc")])
def test_non_string_formats_are_a_type_error(value):
    with pytest.raises(TypeError, match="ImageFormat or its name"):
        parse_image_format(value)


def test_the_inputs_package_never_imports_jax_or_torch():
    # DESIGN layering: inputs is host-side numpy/OpenCV only.
    package_dir = pathlib.Path(inputs.__file__).parent
    for module in package_dir.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in {"jax", "flax", "torch", "models_jax"}, (module.name, name)


def test_every_public_name_is_exported():
    for name in inputs.__all__:
        assert hasattr(inputs, name), name
    for name in ["ImageFormat", "parse_image_format", "normalize_numpy_image", "canonicalize_images",
                 "load_image", "ImageLoadError", "prepare_backbone_input", "INTERPOLATIONS", "NORMALIZATIONS"]:
        assert name in inputs.__all__

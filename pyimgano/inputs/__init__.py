"""Image inputs: declared formats, decoding, canonical RGB/u8/HWC frames, backbone batches.

Host-side only (numpy, Pillow-free OpenCV decoding); nothing here imports jax.

    >>> from pyimgano.inputs import ImageFormat, normalize_numpy_image
    >>> rgb = normalize_numpy_image(bgr_frame, input_format=ImageFormat.BGR_U8_HWC)  # doctest: +SKIP

See ``docs/inputs.md`` for the conversion rules.
"""

from pyimgano.inputs.canonical import canonical_batches, canonicalize_images, group_by_size, input_items, is_path
from pyimgano.inputs.containers import SUPPORTED_CONTAINERS
from pyimgano.inputs.decode import ImageLoadError, ImageTooLargeError, load_image
from pyimgano.inputs.limits import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    image_pixel_limit,
    max_file_bytes,
    resolve_max_pixels,
)
from pyimgano.inputs.formats import IMAGE_FORMATS, ImageFormat, parse_image_format
from pyimgano.inputs.normalize import DEFAULT_U16_MAX, normalize_numpy_image
from pyimgano.inputs.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INTERPOLATIONS,
    NORMALIZATIONS,
    normalize_for_backbone,
    prepare_backbone_input,
    resize_frame,
)

__all__ = [
    "ImageFormat",
    "IMAGE_FORMATS",
    "parse_image_format",
    "normalize_numpy_image",
    "DEFAULT_U16_MAX",
    "canonicalize_images",
    "canonical_batches",
    "input_items",
    "is_path",
    "group_by_size",
    "load_image",
    "ImageLoadError",
    "ImageTooLargeError",
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "image_pixel_limit",
    "resolve_max_pixels",
    "max_file_bytes",
    "SUPPORTED_CONTAINERS",
    "prepare_backbone_input",
    "normalize_for_backbone",
    "resize_frame",
    "INTERPOLATIONS",
    "NORMALIZATIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

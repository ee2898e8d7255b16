"""Image preprocessing: encoded bytes or arrays -> float32 ``[H, W, C]`` in [0, 1].

The same function runs in the tf.data map and in a serving graph (core TF ops only).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """Image front-end parameters.

    Attributes:
        height, width: size the model reads; other sizes are resized (bilinear).
        channels: 1 (grayscale) or 3 (RGB); encoded images are decoded to this many.
    """

    height: int = 28
    width: int = 28
    channels: int = 1

    def __post_init__(self):
        if self.height <= 0 or self.width <= 0:
            raise ValueError(
                f"ImageConfig height/width must be > 0; got {self.height}x{self.width}."
            )
        if self.channels not in (1, 3):
            raise ValueError(f"ImageConfig.channels must be 1 or 3; got {self.channels}.")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> ImageConfig:
        return cls(**config)


def _resize(images, config):
    if tuple(images.shape[-3:-1]) == (config.height, config.width):
        return images
    return tf.image.resize(images, (config.height, config.width))


def decode_image(contents: tf.Tensor, config: ImageConfig) -> tf.Tensor:
    """One encoded PNG/JPEG/GIF/BMP image (scalar ``tf.string``) -> float32 ``[H, W, C]``."""
    image = tf.io.decode_image(contents, channels=config.channels, expand_animations=False)
    image = tf.cast(image, tf.float32) / 255.0  # as for uint8 arrays, bit for bit
    image = _resize(image[None], config)[0]
    return tf.ensure_shape(image, config.shape)


def preprocess_images(images: tf.Tensor, config: ImageConfig) -> tf.Tensor:
    """A batch of images -> float32 ``[batch, H, W, C]`` in [0, 1].

    ``images`` is ``tf.string`` encoded images ``[batch]``, uint8 ``[batch, H, W(, C)]``
    (scaled by 1/255) or float (taken to be in [0, 1] already).
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.string:
        return tf.map_fn(
            lambda c: decode_image(c, config),
            images,
            fn_output_signature=tf.TensorSpec(config.shape, tf.float32),
        )
    if images.shape.rank == 3:
        images = images[..., None]
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32) / 255.0
    images = _resize(tf.cast(images, tf.float32), config)
    return tf.ensure_shape(images, [None, *config.shape])

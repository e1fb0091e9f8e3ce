"""Trainable Flax networks of the trained detectors (NHWC, BatchNorm with a ``train`` switch).

- :mod:`~models_jax.nets.layers` -- conv + BatchNorm (+ ReLU) and residual blocks.
- :mod:`~models_jax.nets.reverse_distillation` -- the one-class bottleneck and the decoder.
- :mod:`~models_jax.nets.draem` -- DRAEM's reconstructive and discriminative sub-networks.
- :mod:`~models_jax.nets.autoencoder` -- the convolutional autoencoder of ``vision_ae``.

Every module takes ``train``: BatchNorm normalises with batch statistics and updates
its running ones (apply with ``mutable=["batch_stats"]``) when True, and uses the
running statistics when False. Convolutions are initialised He-normal (fan out), as
torchvision's ResNets and the reference implementations of these detectors.
"""

from models_jax.nets.autoencoder import ConvAutoencoder
from models_jax.nets.draem import DiscriminativeNet, DraemNet, ReconstructiveNet
from models_jax.nets.layers import ConvBN, ResidualBlock
from models_jax.nets.reverse_distillation import OneClassBottleneck, ReverseDecoder, ReverseDistillationNet

__all__ = [
    "ConvAutoencoder",
    "ConvBN",
    "DiscriminativeNet",
    "DraemNet",
    "OneClassBottleneck",
    "ReconstructiveNet",
    "ResidualBlock",
    "ReverseDecoder",
    "ReverseDistillationNet",
]

"""Ray Tune trainables: thin wrappers around `rankae`'s training engine."""

from .autoencoder import train_autoencoder

__all__ = ["train_autoencoder"]

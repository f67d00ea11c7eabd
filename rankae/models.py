"""Encoders, decoders and the autoencoder that holds a bottleneck between them.

Architectures by name:
- `linear`: the synthetic experiment (App. B): one bias-free d x D encoder matrix and one
  D x d decoder matrix, Gaussian init with std 0.1.
- `mnist_conv`: the IRMAE MNIST model (Jing et al., 2020, as the paper uses it): four stride-2
  convs to 256x2x2, Linear(1024, d); decoder Linear(d, 8192) -> 128x8x8, two stride-2
  transposed convs, a 1x1 transposed conv and Tanh. No batch norm; biases everywhere.
- `cifar_conv`: the same model with 3 input and 3 output channels. The paper says only
  "changes to accommodate RGB image channels"; this is the most literal reading (the
  IRMAE repository has no CIFAR-10 model).
- `mlp`: vectors (a user's own standardised features, dataset='user'), via
  `mlp_encoder_decoder`: D -> 256 -> 128 -> d with ReLU and biases, decoder mirrored, no
  output activation (`MLP_HIDDEN`); the input width D comes from the data.
"""

from __future__ import annotations

import torch
from torch import nn

from .bottleneck import ExplicitBottleneck, LinearSubnetwork
from .config import CONV_CHANNELS, RunConfig

LINEAR_INIT_STD = 0.1  # App. B


def linear_encoder_decoder(input_dim: int, latent_dim: int) -> tuple[nn.Module, nn.Module]:
    encoder = nn.Linear(input_dim, latent_dim, bias=False)
    decoder = nn.Linear(latent_dim, input_dim, bias=False)
    for layer in (encoder, decoder):
        nn.init.normal_(layer.weight, std=LINEAR_INIT_STD)
    return encoder, decoder


def conv_encoder_decoder(channels: int, latent_dim: int) -> tuple[nn.Module, nn.Module]:
    encoder = nn.Sequential(
        nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(),  # 16x16
        nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),  # 8x8
        nn.Conv2d(64, 128, 4, 2, 1), nn.ReLU(),  # 4x4
        nn.Conv2d(128, 256, 4, 2, 1), nn.ReLU(),  # 2x2
        nn.Flatten(),
        nn.Linear(1024, latent_dim),
    )  # fmt: skip
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 128 * 8 * 8),
        nn.Unflatten(1, (128, 8, 8)), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),  # 16x16
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),  # 32x32
        nn.ConvTranspose2d(32, channels, 1, 1, 0),
        nn.Tanh(),
    )  # fmt: skip
    return encoder, decoder


class Autoencoder(nn.Module):
    """x -> z = enc(x) -> z_N = bottleneck(z) -> x' = dec(z_N)  (Sec. 2)."""

    def __init__(self, encoder: nn.Module, bottleneck: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.bottleneck, self.decoder = encoder, bottleneck, decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z: the encoder's output, before the bottleneck."""
        return self.encoder(x)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """z_N: the latent codes the decoder sees."""
        return self.bottleneck(self.encoder(x))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(codes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.bottleneck(self.encoder(x)))

    def effective_matrix(self) -> torch.Tensor | None:
        """W_e of the bottleneck, or None for the vanilla autoencoder."""
        method = getattr(self.bottleneck, "effective_matrix", None)
        return method() if method else None


def build_bottleneck(config: RunConfig, generator: torch.Generator | None = None) -> nn.Module:
    if config.bottleneck == "vanilla":
        return nn.Identity()
    if config.bottleneck == "explicit":
        return ExplicitBottleneck(config.latent_dim, config.k)
    return LinearSubnetwork(
        config.latent_dim,
        config.depth,
        init=config.init,
        alpha=config.alpha,
        init_scale=config.init_scale,
        generator=generator,
    )


def build_autoencoder(config: RunConfig, input_dim: int | None = None) -> Autoencoder:
    """Build the model for `config`, seeded by `config.seed`, in `config.dtype`, on the CPU.

    `input_dim` is the input width where the architecture takes it from the data: the
    synthetic D for `linear` (default `config.synth_dim`), the vectors' D for `mlp` (needed).

    Everything is initialised under a forked RNG seeded with `config.seed`, so the same
    config always gives the same weights and the caller's RNG is untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.architecture == "linear":
            encoder, decoder = linear_encoder_decoder(
                input_dim or config.synth_dim, config.latent_dim
            )
        elif config.architecture == "mlp":
            if input_dim is None:
                raise ValueError("architecture='mlp' needs input_dim: the vectors' width D")
            encoder, decoder = mlp_encoder_decoder(input_dim, config.latent_dim)
        else:
            channels = CONV_CHANNELS[config.architecture]
            encoder, decoder = conv_encoder_decoder(channels, config.latent_dim)
        bottleneck = build_bottleneck(config, torch.Generator().manual_seed(config.seed + 1))
        model = Autoencoder(encoder, bottleneck, decoder)
    return model.to(getattr(torch, config.dtype))


# Hidden widths of the MLP autoencoder for vectors, encoder side (the decoder mirrors them):
# two layers that narrow D towards d, like the conv encoders' 32 -> 256 channels, small
# enough to train on a CPU.
MLP_HIDDEN = (256, 128)


def mlp_encoder_decoder(
    input_dim: int, latent_dim: int, hidden: tuple[int, ...] = MLP_HIDDEN
) -> tuple[nn.Module, nn.Module]:
    """Encoder D -> hidden... -> d and mirrored decoder d -> ...hidden -> D for vectors.

    ReLU between layers and biases on every layer, as in the conv models; the bottleneck
    between them (rankae.bottleneck) stays bias-free, so W_e is still the latent map. The
    decoder has no output activation: the inputs are standardised (mean 0, sd 1), not in
    [0, 1]. PyTorch's default nn.Linear init, from the caller's RNG.
    """
    if input_dim < 1 or latent_dim < 1 or any(width < 1 for width in hidden):
        raise ValueError(
            f"input_dim={input_dim!r}, latent_dim={latent_dim!r}, hidden={hidden!r}: "
            "every width must be an integer >= 1"
        )

    def stack(widths: list[int]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    widths = [input_dim, *hidden, latent_dim]
    return stack(widths), stack(widths[::-1])

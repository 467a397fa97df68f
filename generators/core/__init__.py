"""The shared diffusion core: schedules, the denoiser contract, losses, samplers, guidance,
latent diffusion, training and checkpoints. Imports only torch, diffusers and accelerate."""

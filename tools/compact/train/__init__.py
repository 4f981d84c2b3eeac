"""Training: voice command sets from synthesized speech."""

"""Seeded reference models for tests and golden fixtures (torch only)."""
import torch

from .model import Crossformer


def perturbed_model(config, seed=0):
    """A Crossformer with seeded random weights whose biases and norm parameters are moved off their
    initial values (0 and 1), so a LayerNorm or bias mapping error cannot hide behind defaults."""
    torch.manual_seed(seed)
    model = Crossformer(**config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or ".norm" in name or "pre_norm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()

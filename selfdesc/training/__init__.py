"""Training-data engine: batched H-crops pair generation and photometric augmentation, on any device."""

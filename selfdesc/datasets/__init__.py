"""Evaluation datasets: HPatches, homography pair lists and the synthetic benchmark."""
from selfdesc.datasets.base import HomographyPair

__all__ = ["HomographyPair"]

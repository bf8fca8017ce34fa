"""Descriptor matching."""
from selfdesc.matching.nearest_neighbor import match_mnn, match_mnn_batched

__all__ = ["match_mnn", "match_mnn_batched"]

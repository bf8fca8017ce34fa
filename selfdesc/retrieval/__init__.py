"""Global image descriptors for image retrieval: VLAD of RootSIFT (vocabulary learned on the
images themselves), GeM pooling of dense network maps, and a k-NN index over them.

    from selfdesc.retrieval import GlobalIndex, build_index, gem_pool

See ``docs/retrieval.md``.
"""
from __future__ import annotations

from selfdesc.retrieval.gem import gem_pool
from selfdesc.retrieval.index import DEFAULT_CONF, GlobalIndex, build_index

__all__ = ["DEFAULT_CONF", "GlobalIndex", "build_index", "gem_pool"]

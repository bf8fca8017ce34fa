"""selfdesc: self-supervised local image features — learn, extract, match, evaluate."""
from selfdesc.errors import SelfdescError

__version__ = "0.1.0"

__all__ = ["SelfdescError", "__version__", "load", "load_matcher", "match"]


def __getattr__(name: str):
    """``selfdesc.load`` / ``selfdesc.load_matcher`` / ``selfdesc.match`` (see :mod:`selfdesc.api`), imported on first use."""
    if name in ("load", "load_matcher", "match"):
        from selfdesc import api

        return getattr(api, name)
    raise AttributeError(f"module 'selfdesc' has no attribute '{name}'")

"""selfdesc: self-supervised local image features — learn, extract, match, evaluate."""
from selfdesc.errors import SelfdescError

__version__ = "0.1.0"

__all__ = ["SelfdescError", "__version__", "load", "match"]


def __getattr__(name: str):
    """``selfdesc.load`` / ``selfdesc.match`` (see :mod:`selfdesc.api`), imported on first use."""
    if name in ("load", "match"):
        from selfdesc import api

        return getattr(api, name)
    raise AttributeError(f"module 'selfdesc' has no attribute '{name}'")

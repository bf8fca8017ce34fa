"""selfdesc: self-supervised local image features — learn, extract, match, evaluate."""
from selfdesc.errors import SelfdescError

__version__ = "0.1.0"

__all__ = ["SelfdescError", "__version__"]

"""Input/output: image loading (one loader for every entry point)."""
from selfdesc.io.image import LoadedImage, load_image, resize_image, rescale_keypoints, list_images

__all__ = ["LoadedImage", "load_image", "resize_image", "rescale_keypoints", "list_images"]

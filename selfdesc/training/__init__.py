"""The training engine: the trainer loop, checkpoints, logging, validation, presets and the image-folder dataset.

What a method computes per step is built from :mod:`selfdesc.methods.parts`.
"""

"""The ingredients trainable methods are made of, independent of the training engine.

* :mod:`~selfdesc.methods.parts.hcrops`: batched H-crops training pairs (random homographies of
  one image, with their ground-truth correspondences);
* :mod:`~selfdesc.methods.parts.augment`: photometric augmentation of crops;
* :mod:`~selfdesc.methods.parts.mining`: hard-negative mining for descriptor losses;
* :mod:`~selfdesc.methods.parts.neighbours`: a memory of recent crops for global-descriptor mining;
* :mod:`~selfdesc.methods.parts.ema`: exponential-moving-average target networks;
* :mod:`~selfdesc.methods.parts.assignment`: ground-truth match assignments from homographies;
* :mod:`~selfdesc.methods.parts.rng`: random draws that do not depend on the device.
"""

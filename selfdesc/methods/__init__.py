"""Trainable methods that plug into :class:`selfdesc.training.trainer.Trainer`."""

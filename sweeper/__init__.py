"""sweeper: hyperparameter sweeps for semi-supervised deep generative models.

Flow: spec → space → sweep → trainable → train (models, data) → results → report.
"""

__version__ = "0.1.0"

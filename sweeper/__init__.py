"""sweeper: hyperparameter sweeps for semi-supervised deep generative models.

Flow: spec → space → sweep → trainable → train (models, data) → results → report.
"""

__version__ = "0.1.0"


def load(results_dir, trial_id: str, device="cpu"):
    """The trained model of one trial of a sweep, as a torch module (see sweeper.kept.load)."""
    from .kept import load as load_kept

    return load_kept(results_dir, trial_id, device)

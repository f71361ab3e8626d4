"""What names a configuration's rows, from the config Ray Tune hands a trial. No torch, no Ray, no Optuna:
the searchers, the callbacks and the trainable read the same names here.

    a configuration alone          Tune's trial id                  3f2a_00000
    a pack of configurations       that, and the position in it     3f2a_00000-0, 3f2a_00000-1, ...
    from a shared study            the driver and the trial number  host-4711-12
    rerun by resume                the config under RERUN_KEY, named as above
"""
from __future__ import annotations

STUDY_TRIAL = "study_trial"  # the keys a claimed configuration's config carries: its trial's number ...
DRIVER = "driver"  # ... and the driver that claimed it, which is also the name of that trial's attribute
CLAIM_KEYS = (STUDY_TRIAL, DRIVER)
RERUN_KEY = "configuration"  # the config key under which resume reruns a configuration (or a pack)


def config_ids(config: dict, tune_trial_id: str) -> list[str]:
    """What names each configuration's rows: Tune's trial id; in a pack, that and the position in the
    pack; from a shared study, the driver and the study's trial number, unique across drivers."""
    if "pack" in config:
        return [f"{tune_trial_id}-{i}" for i in range(len(config["pack"]))]
    if STUDY_TRIAL in config:
        return [f"{config[DRIVER]}-{config[STUDY_TRIAL]}"]
    return [tune_trial_id]


def trial_config_ids(config: dict, tune_trial_id: str) -> list[str]:
    """config_ids of what a Tune trial trains, a rerun's configuration included."""
    return config_ids(config.get(RERUN_KEY, config), tune_trial_id)

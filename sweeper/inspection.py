"""What kept models learnt (`sweeper inspect`; named so as to shadow no standard module): reconstructions,
class-conditional samples, analogies, active units, and on 2-d data the data, reconstructions and the
classifier's confidence (Jurasiński Fig. 2 and 3, Maaløe Fig. 3 and 5). The one reader of results besides
training that needs torch.

    DIR/inspect/<trial_id>/<figure>.png and .svg, and summary.json (active units, figures)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from . import kept, results
from . import spec as spec_module
from .data import load as load_data
from .report.figures import _pyplot, _save
from .report.table import best_by_validation, configurations

ACTIVE_KL = 0.01  # nats: a latent unit whose mean KL(q || p) over the test set is above this is active
SHOWN = 8  # test images per figure


def chosen_trials(location: str | Path, each: bool = False) -> list[str]:
    """Per model (or, with `each`, per configuration), the seed with the best validation accuracy of the
    configuration selected by validation."""
    trials = results.read(location)
    done = trials[results.finished(trials)]
    picked = configurations(done, "model", "model") if each else best_by_validation(done, "model", "model")
    chosen = []
    for ids in picked["trial_ids"]:
        seeds = done[done["trial_id"].isin(ids)].sort_values(["best_val_acc", "trial_id"], ascending=[False, True])
        chosen.append(seeds["trial_id"].iloc[0])
    return sorted(chosen)


def kl_per_unit(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, 1)) of each unit, averaged over the rows."""
    return (0.5 * (mu.square() + log_var.exp() - 1.0 - log_var)).mean(0)


def active_units(kl: torch.Tensor, threshold: float = ACTIVE_KL) -> int:
    return int((kl > threshold).sum())


def inspect(location: str | Path, trial_ids: list[str] | None = None, out: str | Path | None = None,
            data_dir: str | Path | None = None, each: bool = False) -> dict[str, dict]:
    """The figures that fit each trial's model and data; returns, per trial, what was drawn and found."""
    location = str(location)
    if out is not None:
        out = results.local_out(out, "the figures")
        if out.exists() and not out.is_dir():
            raise results.SweeperError(f"--out {out}: is a file, not a folder; give a folder for the figures (one subfolder a trial)")
        results.not_over_results(out, [location], "give --out a folder of your own, e.g. --out figures")
    spec = spec_module.load_ran(location)
    trial_ids = [results.checked_id(t, "--trial", location) for t in trial_ids] if trial_ids else \
        [results.checked_id(t, "trial_id", f"{location}/trials") for t in chosen_trials(location, each)]
    summary = {}
    for trial_id in trial_ids:
        model = kept.load(location, trial_id)
        if model.about["dataset"] not in spec.datasets:  # a name from the kept file: only the sweep's own data is read
            raise results.SweeperError(f"{location}/models/{trial_id}.json: dataset {model.about['dataset']!r} is not one of "
                                       f"the sweep's ({', '.join(spec.datasets)}); was it written by this sweep?")
        data = load_data(model.about["dataset"], data_dir, spec.data)
        features = math.prod(model.about["input_shape"])  # an MLP's (64,) reads digits' (1, 8, 8) as well
        if (features, model.about["n_classes"]) != (data.n_features, data.n_classes):
            raise results.SweeperError(f"{location}/models/{trial_id}.json: a model of {features} input values and "
                                       f"{model.about['n_classes']} classes, but {data.name} has {data.n_features} and {data.n_classes}; "
                                       "was it written by this sweep?")
        if out and (out / trial_id).is_symlink():  # the figures go into a folder of --out's own, never through a link
            raise results.SweeperError(f"--out {out}: {out / trial_id} is a link; give --out a folder of your own")
        try:
            folder = out / trial_id if out else results.folder_inside(location, f"inspect/{trial_id}")
            summary[trial_id] = draw_figures(model, data, folder)
            with results.atomic(folder / "summary.json") as temporary:  # replaces a link there, never writes through it
                temporary.write_text(json.dumps(summary[trial_id], indent=1) + "\n")
        except OSError as e:
            where = f"--out {out}" if out else f"{location}/inspect"
            raise results.SweeperError(f"{where}: cannot write the figures there ({e.strerror or type(e).__name__}); "
                                       "give --out a folder you can write to") from None
    return summary


@torch.no_grad()
def draw_figures(model, data, folder: Path) -> dict:
    """Every figure that fits `model` on `data`, under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    x = torch.as_tensor(data.x_test)
    y = torch.as_tensor(data.y_test)
    k = data.n_classes
    found = {"trial_id": model.about["trial_id"], "model": model.about["model"], "epoch": model.about["epoch"],
             "test_acc": float((model.classify(x).argmax(-1) == y).float().mean()), "figures": []}
    drawn = found["figures"]
    if hasattr(model, "generate"):
        hot = torch.nn.functional.one_hot(model.classify(x).argmax(-1), k).to(x.dtype)  # y as the classifier reads it
        mu, log_var = model.posterior(x, hot)
        kl = kl_per_unit(mu, log_var)
        found["kl_per_unit"] = [round(float(v), 5) for v in kl]
        found["active_units"] = active_units(kl)
        units = {"z": kl}
        if hasattr(model, "auxiliary_posterior"):
            units["a"] = kl_per_unit(*model.auxiliary_posterior(x))
            found["active_auxiliary_units"] = active_units(units["a"])
        drawn.append(_save(_units(units), folder / "active_units").name)
        found["probe_accuracy"] = probe(model, data)
        images = data.image_shape is not None and len(data.input_shape) == 3
        if images:
            shape = data.input_shape
            rebuilt = model.generate(mu[:SHOWN], hot[:SHOWN])
            drawn.append(_save(_grid([x[:SHOWN], rebuilt], shape, ["test images", "reconstructions"]), folder / "reconstructions").name)
            noise = torch.randn(SHOWN, mu.shape[-1], generator=torch.Generator().manual_seed(0))
            samples = [model.generate(noise, torch.eye(k)[c].expand(SHOWN, k)) for c in range(k)]
            drawn.append(_save(_grid(samples, shape, [f"y = {c}" for c in range(k)]), folder / "samples").name)
            columns = [x[:SHOWN]] + [model.generate(mu[:SHOWN], torch.eye(k)[c].expand(SHOWN, k)) for c in range(k)]
            drawn.append(_save(_grid(columns, shape, ["test"] + [f"y = {c}" for c in range(k)], by_column=True),
                               folder / "analogies").name)
            found["analogy_columns"] = len(columns) - 1
        elif data.n_features == 2:
            drawn.append(_save(_two_d(model, data, mu, hot), folder / "two_d").name)
    elif data.n_features == 2:
        drawn.append(_save(_two_d(model, data, None, None), folder / "two_d").name)
    return found  # a classifier alone (the baseline) on images: no figure, its accuracy only


PROBE_POINTS = 2000  # training points whose z' train the probe


@torch.no_grad()
def probe(model, data) -> float:
    """Jurasiński §3.3: how well a linear classifier reads the label from z' = the mean of q(z | x, y') with
    every label y' in turn (the true label as target). Near chance: z holds no label; high: it does, and
    the label input was not needed to explain x."""
    from sklearn.linear_model import LogisticRegression

    k = data.n_classes

    def features(x, y):
        x = torch.as_tensor(x)
        every = [model.posterior(x, torch.eye(k)[c].expand(len(x), k))[0] for c in range(k)]
        return torch.cat(every).numpy(), torch.as_tensor(y).repeat(k).numpy()

    train = features(data.x_train[:PROBE_POINTS], data.y_train[:PROBE_POINTS])
    test = features(data.x_test, data.y_test)
    fitted = LogisticRegression(max_iter=2000).fit(*train)
    return round(float(fitted.score(*test)), 4)


def _image(row: torch.Tensor, shape) -> torch.Tensor:
    channels, height, width = shape
    picture = row.clamp(0, 1).reshape(channels, height, width).permute(1, 2, 0)
    return picture[..., 0] if channels == 1 else picture


def _grid(rows: list[torch.Tensor], shape, labels: list[str], by_column: bool = False):
    """Each tensor of `rows` (SHOWN images) as a row of pictures, or as a column with by_column."""
    plt = _pyplot()
    n = len(rows)
    figure, axes = plt.subplots(SHOWN if by_column else n, n if by_column else SHOWN, squeeze=False,
                                figsize=(1.1 * (n if by_column else SHOWN), 1.1 * (SHOWN if by_column else n)))
    for i, images in enumerate(rows):
        for j in range(SHOWN):
            ax = axes[j, i] if by_column else axes[i, j]
            ax.imshow(_image(images[j], shape).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        (axes[0, i].set_title if by_column else axes[i, 0].set_ylabel)(labels[i], fontsize=7)
    return figure


def _units(units: dict[str, torch.Tensor]):
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(units), figsize=(5 * len(units), 3.5), squeeze=False)
    for ax, (name, kl) in zip(axes[0], units.items()):
        order = kl.sort(descending=True).values
        ax.bar(range(len(order)), order.numpy())
        ax.axhline(ACTIVE_KL, color="tab:red", linewidth=1, label=f"{ACTIVE_KL} nats")
        ax.set_yscale("log")
        ax.set_title(f"KL per unit of {name}: {active_units(kl)} of {len(kl)} active")
        ax.set_xlabel("unit (sorted)")
        ax.legend(fontsize=8)
    return figure


def _two_d(model, data, mu, hot):
    """Data coloured by class, grey unlabelled, reconstructions, and the classifier's confidence behind."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 5))
    x_train, x = torch.as_tensor(data.x_train), torch.as_tensor(data.x_test)
    low, high = x_train.min(0).values - 0.3, x_train.max(0).values + 0.3
    g0, g1 = torch.meshgrid(torch.linspace(low[0], high[0], 150), torch.linspace(low[1], high[1], 150), indexing="ij")
    confidence = model.classify(torch.stack([g0.flatten(), g1.flatten()], -1).to(x.dtype)).softmax(-1).max(-1).values
    ax.contourf(g0.numpy(), g1.numpy(), confidence.reshape(g0.shape).numpy(), levels=20, cmap="Greys", alpha=0.6)
    ax.scatter(x_train[::10, 0].numpy(), x_train[::10, 1].numpy(), s=2, color="lightgrey", label="unlabelled")
    ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=4, c=data.y_test, cmap="coolwarm", label="test data")
    if mu is not None:
        rebuilt = model.generate(mu, hot).numpy()
        ax.scatter(rebuilt[:, 0], rebuilt[:, 1], s=4, marker="x", c=hot.argmax(-1).numpy(), cmap="coolwarm", label="reconstructions")
    ax.set_title("data, reconstructions and classifier confidence")
    ax.legend(fontsize=7)
    return figure

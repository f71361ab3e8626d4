"""Where a compiled M2 step's time goes on a GPU, and what CUDA graphs would change (issue 31).

    python benchmarks/gpu_profile.py      # on a machine with an NVIDIA GPU, after pip install -e .

The step of benchmarks/gpu.sh (M2 at MNIST shapes, bfloat16, random binary data), built as `sweeper bench`
builds it: a pack of 32 compiled as sweeper compiles it (mode "default"), timed and then profiled over ten steps
(torch.profiler, host and GPU; the tables' "Self CUDA time total" is the GPU's busy time); then packs of 8, 32 and
128 compiled with mode "reduce-overhead" (CUDA graphs), timed alike.
"""
import time

import torch
from torch.profiler import ProfilerActivity, profile

from sweeper import models
from sweeper.bench import SHAPES
from sweeper.models.noise import fold_in, key
from sweeper.train import Stack, schedule


def compiled_step(pack: int, mode: str):
    """One training step of `pack` M2 members, its loss compiled with torch.compile's `mode`."""
    features, hidden, latent = SHAPES["mnist"]
    hyper = {k: h.default for k, h in models.hyperparameters("m2").items()} | {"hidden": hidden, "latent": latent}
    device = torch.device("cuda")
    members = []
    for seed in range(pack):
        torch.manual_seed(seed)
        members.append(models.build("m2", (features,), 10, hyper).to(device))
    stack = Stack(members, [hyper] * pack, bf16=True, compile=True)
    if mode != "default":  # sweeper compiles with the default mode; the same loss (its casts included), another mode
        stack.losses = stack._vmapped_losses(mode)
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(pack, 200, features, generator=generator) < 0.5).float().to(device)
    y = torch.randint(0, 10, (pack, 100), generator=generator).to(device)
    keys = torch.stack([key(seed, device) for seed in range(pack)])
    late = schedule(0, 1, 50_000, 100, 49_900)
    return lambda s: stack.step((x[:, :100], y, x[:, 100:]), late, fold_in(keys, s), False)


def main() -> None:
    for pack, mode in [(32, "default"), (32, "reduce-overhead"), (128, "reduce-overhead"), (8, "reduce-overhead")]:
        try:
            step = compiled_step(pack, mode)
            for s in range(5):  # compile, warm up
                step(s)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for s in range(30):
                parts = step(5 + s)
            parts.sum().item()
            print(f"pack {pack} mode {mode}: {(time.perf_counter() - start) / 30 * 1000:.2f} ms/step", flush=True)
            if mode == "default":
                with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiled:
                    for s in range(10):
                        parts = step(100 + s)
                    parts.sum().item()
                averages = profiled.key_averages()
                print(averages.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=50))
                print(averages.table(sort_by="self_cuda_time_total", row_limit=10, max_name_column_width=50))
        except Exception as error:  # noqa: BLE001 - a mode torch cannot run here is a finding, not the end of the script
            print(f"pack {pack} mode {mode}: failed {type(error).__name__}: {str(error)[:300]}", flush=True)


if __name__ == "__main__":
    main()

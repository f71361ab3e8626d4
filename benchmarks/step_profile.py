"""Where an M2 step's time goes on this machine's CPU: torch.profiler over a few steps of one pack (issue 31).

    OMP_NUM_THREADS=1 python benchmarks/step_profile.py [--shape anchor] [--pack 24] [--float32] [--compile]

`anchor` is the network of search_spaces/anchor-digits.yaml on digits (64-500-50), and 24 members the pack that
`pack: auto` gives each of its two packs on 2 cores; `mnist` is 784-500-50 (`sweeper bench --shape mnist`). The
stack is built as a trial builds it (train.Stack: bfloat16 unless --float32, compiled with --compile) on random
binary batches of 100 labelled and 100 unlabelled points. Prints the step's time and the profiler's table by self
CPU time. Not a test.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from sweeper import allocator, models
from sweeper.bench import SHAPES
from sweeper.models.noise import fold_in, key
from sweeper.train import Stack, schedule

NETWORKS = {"anchor": (64, 500, 50), "mnist": SHAPES["mnist"]}  # (input features, hidden, latent)


def stepper(shape: str, pack: int, bf16: bool, compile: bool):
    """One optimiser step of `pack` M2 members at `shape`, as a function of the step's number."""
    features, hidden, latent = NETWORKS[shape]
    hyper = {k: h.default for k, h in models.hyperparameters("m2").items()} | {"hidden": hidden, "latent": latent}
    members = []
    for seed in range(pack):
        torch.manual_seed(seed)
        members.append(models.build("m2", (features,), 10, hyper))
    stack = Stack(members, [hyper] * pack, bf16=bf16, compile=compile)
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(pack, 200, features, generator=generator) < 0.5).float()
    y = torch.randint(0, 10, (pack, 100), generator=generator)
    keys = torch.stack([key(seed) for seed in range(pack)])
    late = schedule(0, 1, 50_000, 100, 49_900)
    return lambda s: stack.step((x[:, :100], y, x[:, 100:]), late, fold_in(keys, s), False)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(NETWORKS), default="anchor")
    parser.add_argument("--pack", type=int, default=24)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--float32", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)
    allocator.keep_freed_memory()  # as a sweep's trials allocate (docs/performance.md, "Memory a trial keeps")
    step = stepper(args.shape, args.pack, not args.float32, args.compile)
    for s in range(3):  # warm up (and compile)
        step(s)
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        start = time.perf_counter()
        for s in range(args.steps):
            step(10 + s)
        seconds = (time.perf_counter() - start) / args.steps
    table = profiled.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    print(f"{args.shape}, pack {args.pack}, {'float32' if args.float32 else 'bfloat16'}{', compiled' if args.compile else ''}, "
          f"{torch.get_num_threads()} thread(s): {seconds * 1000:.1f} ms a step under the profiler\n{table}", flush=True)
    return table


if __name__ == "__main__":
    main()

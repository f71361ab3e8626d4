"""What this machine's devices can do, where sweeper's choices depend on it."""
from __future__ import annotations

from pathlib import Path

import torch


CPU_INFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # the kernel's names for AVX-512 BF16 and AMX's bfloat16 tiles


def native_bf16(device: str | torch.device, cpu_info: Path = CPU_INFO) -> bool:
    """Whether this device multiplies bfloat16 natively: a GPU that supports it, or a CPU with AVX-512 BF16
    or AMX (read from the kernel's CPU flags; elsewhere bfloat16 is emulated and slower than float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = cpu_info.read_text()
    except OSError:  # not Linux: no flags to read, so no claim
        return False
    return any(flag in flags.split() for flag in BF16_FLAGS)

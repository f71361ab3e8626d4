"""Randomness from explicit integer keys rather than torch's global generator, so a loss is a function of
(parameters, batch, hyperparameters, key) alone: the same key gives the same noise whether a configuration
trains alone or stacked with others under vmap.

A key is an int64 tensor. splitmix64's finaliser turns (key, counter) into 64 random bits; int64 arithmetic
wraps, and the masks make torch's arithmetic shifts logical."""
from __future__ import annotations

import math

import torch

_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64
_M1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
_M2 = -7723592293110705685  # 0x94D049BB133111EB


def _mix(x: torch.Tensor) -> torch.Tensor:
    x = x ^ ((x >> 30) & ((1 << 34) - 1))
    x = x * _M1
    x = x ^ ((x >> 27) & ((1 << 37) - 1))
    x = x * _M2
    return x ^ ((x >> 31) & ((1 << 33) - 1))


def key(seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    return _mix(torch.tensor(seed, dtype=torch.int64, device=device) * _GOLDEN + 1)


def fold_in(key: torch.Tensor, data: int | torch.Tensor) -> torch.Tensor:
    """A new key derived from `key` and `data` (a step counter, a stream name's index)."""
    return _mix(key ^ _mix(torch.as_tensor(data, dtype=torch.int64, device=key.device) * _GOLDEN + 2))


_BUCKET_BITS = 23  # a uniform's resolution: (k + 1/2) / 2^23 is exact in float32, and never 0 or 1
_BUCKETS = 1 << _BUCKET_BITS


def _hash(key: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    # the finaliser spreads a counter's low bits over all 64. No counter is multiplied by a constant:
    # inductor compiles an arange times a constant that wraps into wrong numbers and a corrupted heap
    return _mix(key ^ counters)


def _buckets(key: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """A 23-bit integer for each counter in `index`: counters 2i and 2i+1 share one 64-bit hash, taking
    its top and its next 23 bits, so a draw of n numbers costs n/2 hashes."""
    bits = _hash(key, index >> 1)
    shift = (64 - _BUCKET_BITS) - _BUCKET_BITS * (index & 1)  # the pair's first: bits 41-63; its second: bits 18-40
    return torch.bitwise_right_shift(bits, shift) & (_BUCKETS - 1)


def _all_buckets(key: torch.Tensor, n: int) -> torch.Tensor:
    """_buckets of counters 0 .. n-1, hashing each pair once."""
    bits = _hash(key, torch.arange((n + 1) // 2, dtype=torch.int64, device=key.device))
    both = torch.stack([bits >> (64 - _BUCKET_BITS), bits >> (64 - 2 * _BUCKET_BITS)], dim=-1) & (_BUCKETS - 1)
    return both.reshape(*both.shape[:-2], -1)[..., :n]


def _to_uniform(buckets: torch.Tensor, dtype) -> torch.Tensor:
    return ((buckets.to(torch.float32) + 0.5) * (1.0 / _BUCKETS)).to(dtype)


@torch.library.custom_op("sweeper::erfinv", mutates_args=())
def _erfinv(u: torch.Tensor) -> torch.Tensor:
    """torch.erfinv, opaque to torch.compile. Inductor's CPU code computes erfinv one element at a time,
    about 60 times slower than ATen's vectorised kernel, and to other last bits: compiled noise would
    then differ from eager noise. As a custom op the compiled step calls ATen's kernel."""
    return torch.erfinv(u)


@_erfinv.register_fake
def _(u):
    return torch.empty_like(u)


@_erfinv.register_vmap
def _(info, in_dims, u):
    return _erfinv(u), in_dims[0]


def _to_normal(buckets: torch.Tensor, dtype) -> torch.Tensor:
    # the normal quantile of u, through erfinv (vectorised on the CPU; ndtri is not). Eagerly, straight to
    # ATen: the custom op's own dispatch costs about 0.15 ms a call under vmap
    u = 2.0 * _to_uniform(buckets, torch.float32) - 1.0
    return (math.sqrt(2.0) * (_erfinv(u) if torch.compiler.is_compiling() else torch.erfinv(u))).to(dtype)


def uniform(key: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """Uniform noise in (0, 1) of `shape`, a pure function of `key`."""
    return _to_uniform(_all_buckets(key, math.prod(shape)), dtype).reshape(shape)


def normal(key: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise of `shape`, a pure function of `key`."""
    return _to_normal(_all_buckets(key, math.prod(shape)), dtype).reshape(shape)


def normal_at(key: torch.Tensor, index: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """normal(key, shape).flatten()[index], drawing only those: a few elements of a large draw."""
    return _to_normal(_buckets(key, index), dtype)

"""Model forward throughput at 256x256, and its share of the machine's GEMM FLOP/s.

Run: ``python benchmarks/bench_forward.py [--model DIR] [--batch auto] [--rounds 5]``.
Prints galaxies/s of the forward pass and decoding (``PicassoUNet.predict``) with
the automatic batch size and with ``--compare`` batch sizes, the model's FLOPs per
galaxy (counted by `torch.utils.flop_counter`), the achieved FLOP/s and the
fraction of a measured float32 matrix-multiply FLOP/s on the same device. Each
figure is the best of ``--rounds`` interleaved rounds, so that other work on the
machine biases neither side.
"""

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from picasso_astro._inference import auto_batch_size, resolve_device, resolve_precision
from picasso_astro.hub import load_model


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def gemm_seconds(device, n=2048, repeats=10):
    """Seconds for ``repeats`` float32 ``n x n`` matrix products."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return time.perf_counter() - start


def forward_seconds(network, x, batch, dtype):
    """Seconds to run ``network.predict`` over ``x`` in batches of ``batch``."""
    _sync(x.device)
    start = time.perf_counter()
    for i in range(0, x.shape[0], batch):
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            network.predict(x[i : i + batch])
    _sync(x.device)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="model directory (default: bundled)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", default="auto", help="'auto' or an integer")
    parser.add_argument(
        "--compare", default="8", help="other batch sizes to time, comma-separated"
    )
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--galaxies", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    device = resolve_device(args.device)
    dtype = resolve_precision(args.precision, device)
    model = load_model(args.model)
    network = model.network.to(device, memory_format=torch.channels_last).eval()
    shape = (args.size, args.size)
    batch = (
        auto_batch_size(network, shape, device)
        if args.batch == "auto"
        else int(args.batch)
    )
    variants = {f"batch {batch} ({args.batch})": batch}
    for other in filter(None, args.compare.split(",")):
        variants.setdefault(f"batch {int(other)}", int(other))
    x = torch.randn(args.galaxies, model.config.in_channels, *shape, device=device)
    x = x.contiguous(memory_format=torch.channels_last)

    best = dict.fromkeys(variants, float("inf"))
    gemm = float("inf")
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            network(x[:1])
        flops_per_galaxy = counter.get_total_flops()
        for size in variants.values():
            forward_seconds(network, x[:size], size, dtype)
        gemm_seconds(device, repeats=1)
        for _ in range(args.rounds):
            for name, size in variants.items():
                elapsed = forward_seconds(network, x, size, dtype)
                best[name] = min(best[name], elapsed)
            gemm = min(gemm, gemm_seconds(device))
    peak = 2 * 2048**3 * 10 / gemm

    print(f"device {device}, {torch.get_num_threads()} threads, model {model.name}")
    print(f"input {args.size}x{args.size}, precision {dtype}, {args.galaxies} galaxies")
    print(f"model FLOPs per galaxy: {flops_per_galaxy / 1e9:.2f} GFLOP")
    print(f"float32 GEMM: {peak / 1e9:.1f} GFLOP/s")
    for name, elapsed in best.items():
        galaxies_per_s = args.galaxies / elapsed
        achieved = galaxies_per_s * flops_per_galaxy
        print(
            f"{name}: {galaxies_per_s:.2f} galaxies/s, {achieved / 1e9:.1f} GFLOP/s, "
            f"{achieved / peak:.1%} of GEMM"
        )


if __name__ == "__main__":
    main()

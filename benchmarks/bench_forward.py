"""Model forward throughput at 256x256, and its share of the machine's GEMM FLOP/s.

Run: ``python benchmarks/bench_forward.py [--model DIR] [--batch 8] [--repeats 5]``.
Prints galaxies/s, the model's FLOPs per galaxy (counted by
`torch.utils.flop_counter`), the achieved FLOP/s and the fraction of a measured
float32 matrix-multiply FLOP/s on the same device.
"""

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from picasso_astro.hub import load_model
from picasso_astro.predict import resolve_device


def gemm_flops(device, n=2048, repeats=10):
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="model directory (default: bundled)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    device = resolve_device(args.device)
    model = load_model(args.model)
    network = model.network.to(device, memory_format=torch.channels_last).eval()
    x = torch.randn(args.batch, model.config.in_channels, args.size, args.size)
    x = x.to(device, memory_format=torch.channels_last)

    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            network(x[:1])
        flops_per_galaxy = counter.get_total_flops()
        network.predict(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.repeats):
            network.predict(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start

    galaxies_per_s = args.batch * args.repeats / elapsed
    achieved = galaxies_per_s * flops_per_galaxy
    peak = gemm_flops(device)
    print(f"device {device}, {torch.get_num_threads()} threads, model {model.name}")
    print(f"input {args.size}x{args.size}, batch {args.batch}")
    print(f"forward + decode: {galaxies_per_s:.2f} galaxies/s")
    print(f"model FLOPs per galaxy: {flops_per_galaxy / 1e9:.2f} GFLOP")
    print(
        f"achieved {achieved / 1e9:.1f} GFLOP/s; float32 GEMM {peak / 1e9:.1f} GFLOP/s"
    )
    print(f"fraction of GEMM FLOP/s: {achieved / peak:.1%}")


if __name__ == "__main__":
    main()

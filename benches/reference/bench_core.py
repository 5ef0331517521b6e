"""PyTorch-eager twin of `selfsup bench core` (crates/cli/src/bench_core.rs):
the same losses at the same sizes (forward + backward) and the same optimizer
steps on ResNet-18's parameters, printed as `name<TAB>median milliseconds`.

    .venv-reference/bin/python benches/reference/bench_core.py --threads 2
"""
import argparse
import time

import torch
import torch.nn.functional as F
import torchvision

from ssl_reference import LarsReference, barlow_twins, dino, mae, moco_infonce, moco_v3, negative_cosine, nt_xent_two_views, vicreg


def median_ms(repeats, f):
    for _ in range(3):
        f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def loss_case(name, inputs, loss):
    def once():
        # Zero the gradient buffers, as the Rust side does (tch's zero_grad),
        # so both sides do the same work.
        for x in inputs:
            if x.grad is not None:
                x.grad.zero_()
        loss(*inputs).backward()

    print(f"{name}\t{median_ms(20, once):.4f}", flush=True)


def leaf(*shape):
    return torch.randn(*shape).requires_grad_(True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(parser.parse_args().threads)
    torch.manual_seed(0)
    loss_case("nt_xent b256x2 d128", [leaf(512, 128)], lambda z: nt_xent_two_views(z, 0.2))
    loss_case("nt_xent b1024x2 d128", [leaf(2048, 128)], lambda z: nt_xent_two_views(z, 0.2))
    queue = F.normalize(torch.randn(16384, 128), dim=1)
    loss_case("moco_infonce b256 d128 q16384", [leaf(256, 128), leaf(256, 128)], lambda q, k: moco_infonce(q, k, queue, 0.2))
    loss_case("moco_v3 b1024 d256", [leaf(1024, 256), leaf(1024, 256)], lambda q, k: moco_v3(q, k) + moco_v3(k, q))
    loss_case("negative_cosine b4096 d256", [leaf(4096, 256), leaf(4096, 256)], negative_cosine)
    loss_case("barlow_twins b256 d2048", [leaf(256, 2048), leaf(256, 2048)], barlow_twins)
    loss_case("vicreg b256 d2048", [leaf(256, 2048), leaf(256, 2048)], vicreg)
    center = torch.zeros(1, 4096)
    loss_case("dino b64x6 k4096", [leaf(384, 4096), leaf(128, 4096)], lambda s, t: dino(s, t, center, n_crops=6))
    mask = (torch.rand(256, 64) < 0.75).float()
    loss_case("mae b256 l64 p48", [leaf(256, 64, 48), leaf(256, 64, 48)], lambda p, t: mae(p, t.detach(), mask))

    def optimizer_case(name, make):
        params = list(torchvision.models.resnet18().parameters())
        for p in params:
            p.grad = torch.randn_like(p)
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        opt = make([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}])
        print(f"{name}\t{median_ms(20, opt.step):.4f}", flush=True)

    # torch.optim's default implementation on CPU (foreach=None picks the for-loop).
    optimizer_case("sgd step resnet18", lambda g: torch.optim.SGD(g, lr=1e-3, momentum=0.9))
    optimizer_case("adamw step resnet18", lambda g: torch.optim.AdamW(g, lr=1e-3))
    optimizer_case("lars step resnet18", lambda g: LarsReference(g, lr=1e-3))


if __name__ == "__main__":
    main()

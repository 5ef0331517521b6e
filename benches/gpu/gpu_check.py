"""`cargo xtask gpu-check`: one prepared script (a few minutes) that tells
what selfsup's CUDA build does on this machine's GPU, as a Markdown table.

1. `selfsup gpu-check`: CUDA and cuDNN found, a bf16 autocast matmul on the
   GPU, a one-GPU NCCL process group (all_reduce, all_gather and its
   gradient), each tried for real.
2. SimCLR, ResNet-18 with the CIFAR stem (the `cifar10` recipe, batch 256):
   selfsup end to end on random CIFAR-10-format images (its data pipeline
   included; its data-wait share printed), against the PyTorch reference's
   model step on GPU-resident tensors (the same network, loss and LARS; no
   data pipeline, so an upper bound for the reference).
3. GPT (the `shakespeare` recipe: 6 x 384, context 256, batch 64) on Moby
   Dick: selfsup's tokens/s against the reference model's (quality_text.py)
   on random windows.

The same number of optimizer steps on both sides, timed from the first
(start-up included on both). It needs PyTorch with CUDA (and torchvision);
without Rust it runs a carried binary: `python3 benches/gpu/gpu_check.py
--selfsup ./selfsup` finds libtorch in the installed torch package.

Usage: gpu_check.py --selfsup BINARY [--lib DIR] [--steps N]
"""

import argparse
import gzip
import os
import random
import subprocess
import sys
import tempfile
import time
import tomllib

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "benches", "reference"))


def selfsup(args, binary, lib, capture=True):
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = lib + ":" + env.get("LD_LIBRARY_PATH", "")
    done = subprocess.run([binary, *args], env=env, cwd=ROOT, capture_output=capture, text=True)
    return done.returncode, (done.stdout or "") + (done.stderr or "")


def summary_of(runs):
    [run] = [d for d in os.listdir(runs) if os.path.isdir(os.path.join(runs, d))]
    with open(os.path.join(runs, run, "summary.toml"), "rb") as f:
        return tomllib.load(f)


def write_cifar(folder, train, test):
    """CIFAR-10 binary files of random images: a label byte, then 3072 pixels."""
    os.makedirs(folder)
    rng = random.Random(0)

    def records(n):
        return b"".join(bytes([rng.randrange(10)]) + rng.randbytes(3072) for _ in range(n))

    for i in range(1, 6):
        with open(os.path.join(folder, f"data_batch_{i}.bin"), "wb") as f:
            f.write(records(train // 5))
    with open(os.path.join(folder, "test_batch.bin"), "wb") as f:
        f.write(records(test))


def timed_steps(step, steps):
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def reference_simclr(config, steps):
    from ssl_reference import LarsReference, nt_xent_two_views
    from vision_models import Encoder, backbone, mlp

    m, batch = config["method"], config["trainer"]["batch_size"]
    net = backbone(m["backbone"])
    model = Encoder(net, mlp([net.dim, m["proj_hidden"], m["proj_dim"]])).cuda()
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    optim = LarsReference([{"params": decay}, {"params": rest, "weight_decay": 0.0}],
                          lr=config["optim"]["lr"], weight_decay=config["optim"]["weight_decay"])
    views = [torch.randn(batch, 3, 32, 32, device="cuda") for _ in range(2)]

    def step():
        _, z = model(views)
        loss = nt_xent_two_views(z, m["temperature"])
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()

    return steps / timed_steps(step, steps)


def reference_gpt(config, vocab, steps):
    from quality_text import Gpt

    m, batch = config["method"]["model"], config["trainer"]["batch_size"]
    model = Gpt(vocab, m).cuda()
    optim = torch.optim.AdamW(model.parameters(), lr=config["optim"]["lr"], betas=(0.9, 0.99))
    ids = torch.randint(0, vocab, (batch, m["context"] + 1), device="cuda")

    def step():
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()

    return steps * batch * m["context"] / timed_steps(step, steps)


def recipe(name):
    with open(os.path.join(ROOT, "configs", name), "rb") as f:
        return tomllib.load(f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--selfsup", required=True)
    parser.add_argument("--lib", default=os.path.join(os.path.dirname(torch.__file__), "lib"))
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    binary, lib, steps = os.path.abspath(args.selfsup), args.lib, args.steps
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")
    print("\n| check | result |\n|---|---|")
    code, out = selfsup(["gpu-check"], binary, lib)
    print("\n".join(line for line in out.splitlines() if line.startswith("|")) or out.strip())
    if code != 0:
        sys.exit("selfsup gpu-check failed: no throughput to measure")

    scratch = tempfile.mkdtemp(prefix="selfsup-gpu-check-")
    cifar = os.path.join(scratch, "cifar-10-batches-bin")
    write_cifar(cifar, train=25_600, test=1_000)
    vision_runs = os.path.join(scratch, "vision-runs")
    code, out = selfsup(["train", "vision-simclr", "--recipe", "cifar10", "--runs", vision_runs,
                         "--set", f"data.path={cifar}", "--set", f"trainer.max_steps={steps}",
                         "--set", f"trainer.log_every={steps}"], binary, lib)
    if code != 0:
        sys.exit(f"selfsup SimCLR failed:\n{out[-3000:]}")
    ours = summary_of(vision_runs)
    ours_steps = ours["steps"] / ours["train_seconds"]
    theirs = reference_simclr(recipe("vision/simclr-cifar10.toml"), steps)
    wait = ours.get("data_wait_share")
    wait = f", data wait {100 * wait:.1f} %" if isinstance(wait, float) else ""
    print(f"| SimCLR ResNet-18 CIFAR-10, batch 256, steps/s | selfsup {ours_steps:.2f}{wait}; "
          f"PyTorch model step {theirs:.2f}; ratio {ours_steps / theirs:.2f} |")

    text = os.path.join(scratch, "moby-dick.txt")
    with gzip.open(os.path.join(ROOT, "datasets", "text", "moby-dick.txt.gz"), "rb") as src, \
            open(text, "wb") as dst:
        dst.write(src.read())
    with open(text, encoding="utf-8") as f:
        vocab = len(set(f.read()))
    text_runs = os.path.join(scratch, "text-runs")
    code, out = selfsup(["train", "text-gpt", "--recipe", "shakespeare", "--runs", text_runs,
                         "--set", f"data.path={text}", "--set", f"trainer.max_steps={steps}",
                         "--set", f"trainer.log_every={steps}",
                         "--set", f"trainer.checkpoint_every={steps}"], binary, lib)
    if code != 0:
        sys.exit(f"selfsup GPT failed:\n{out[-3000:]}")
    ours = summary_of(text_runs)["tokens_per_second"]
    theirs = reference_gpt(recipe("text/gpt-shakespeare.toml"), vocab, steps)
    print(f"| GPT 6x384, context 256, batch 64, tokens/s | selfsup {ours:,.0f}; "
          f"PyTorch {theirs:,.0f}; ratio {ours / theirs:.2f} |")


if __name__ == "__main__":
    main()

"""Writes the PyTorch reference values that crates/core's tests compare against.

Run from the repository root with the reference environment:
    .venv-reference/bin/python benches/reference/core_fixtures.py
It writes crates/core/tests/fixtures/{losses,optimizers}.safetensors (small;
committed). The formulas below follow the papers' official code (SimCLR, MoCo
v2/v3, BYOL/SimSiam, Barlow Twins, VICReg, DINO, MAE) and torch.optim; they are
written independently of the Rust implementation they check.
"""
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ssl_reference import LarsReference, barlow_twins, dino, distributed_sinkhorn, mae, moco_infonce, moco_v3, negative_cosine, nt_xent_multi, nt_xent_two_views, swav, token_ce, vicreg

torch.manual_seed(0)
OUT = "crates/core/tests/fixtures"
fixtures = {}


def record(name, inputs, loss_fn, grad_of):
    """Stores inputs, the loss (float64) and gradients of the named inputs."""
    leaves = {k: v.clone().double().requires_grad_(k in grad_of) if v.is_floating_point() else v for k, v in inputs.items()}
    loss = loss_fn(**leaves)
    loss.backward()
    for k, v in inputs.items():
        fixtures[f"{name}.input.{k}"] = v.contiguous()
    fixtures[f"{name}.loss"] = loss.detach().reshape(1)
    for k in grad_of:
        fixtures[f"{name}.grad.{k}"] = leaves[k].grad.float().contiguous()


B, D = 8, 16
randn = lambda *s: torch.randn(*s)
record("nt_xent_2", {"z": randn(2 * B, D)}, nt_xent_two_views, ["z"])
record("nt_xent_3", {"z": randn(3 * B, D)}, lambda z: nt_xent_multi(z, 3, 0.5), ["z"])
record("nt_xent_neg", {"z": randn(2 * B, D), "negatives": randn(5, D)}, lambda z, negatives: nt_xent_multi(z, 2, 0.1, negatives), ["z", "negatives"])
record("moco_infonce", {"q": randn(B, D), "k": randn(B, D), "queue": F.normalize(randn(32, D), dim=1)}, moco_infonce, ["q", "k"])
record("moco_v3", {"q": randn(B, D), "k": randn(B, D)}, moco_v3, ["q", "k"])
record("negative_cosine", {"p": randn(B, D), "z": randn(B, D)}, negative_cosine, ["p"])
record("barlow_twins", {"z1": randn(B, D), "z2": randn(B, D)}, barlow_twins, ["z1", "z2"])
record("vicreg", {"z1": randn(B, D) * 0.5, "z2": randn(B, D) * 0.5}, lambda z1, z2: vicreg(z1, z2), ["z1", "z2"])
record("dino", {"student": randn(4 * B, D), "teacher": randn(2 * B, D), "center": randn(1, D) * 0.1}, dino, ["student"])
mask = (torch.rand(B, 12) < 0.75).float()
record("mae", {"pred": randn(B, 12, 6), "target": randn(B, 12, 6), "mask": mask}, mae, ["pred"])
record("rotation", {"logits": randn(4 * B, 4), "labels": torch.arange(4).repeat(B)}, lambda logits, labels: F.cross_entropy(logits, labels), ["logits"])
labels = torch.randint(0, 11, (2, 7))
labels[torch.rand(2, 7) > 0.3] = -100
labels[0, 0] = 3
record("masked_lm", {"logits": randn(2, 7, 11), "labels": labels}, token_ce, ["logits"])
record("next_token", {"logits": randn(2, 7, 11), "labels": torch.randint(0, 11, (2, 7))}, token_ce, ["logits"])
record("swav", {"scores": randn(3 * B, 6)}, swav, ["scores"])
fixtures["swav.codes"] = distributed_sinkhorn(fixtures["swav.input.scores"][:B].double()).float().contiguous()
save_file(fixtures, f"{OUT}/losses.safetensors")


# Optimizers: 20 steps on a small problem with a weight matrix, a bias and a
# 1-D norm weight; lr changes every step to exercise the schedule input.
x = randn(32, 6)
y = randn(32, 3)
init = {"w": randn(3, 6) * 0.3, "b": randn(3) * 0.1, "g": 1 + randn(3) * 0.1}
optim_fixtures = {"x": x, "y": y, **{f"init.{k}": v for k, v in init.items()}}
lrs = [0.05 * (1 + 0.5 * torch.cos(torch.tensor(i * 0.3)).item()) for i in range(20)]
optim_fixtures["lrs"] = torch.tensor(lrs, dtype=torch.float64)


def run(name, make):
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = make([{"params": [params["w"]], "weight_decay": 0.1}, {"params": [params["b"], params["g"]], "weight_decay": 0.0}])
    for lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        out = F.layer_norm(x @ params["w"].T + params["b"], (3,), weight=params["g"])
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
    for k, v in params.items():
        optim_fixtures[f"{name}.{k}"] = v.detach().clone()


run("sgd", lambda groups: torch.optim.SGD(groups, lr=0.0, momentum=0.9, foreach=False))
run("sgd_nesterov", lambda groups: torch.optim.SGD(groups, lr=0.0, momentum=0.9, nesterov=True, foreach=False))
run("adamw", lambda groups: torch.optim.AdamW(groups, lr=0.0, betas=(0.9, 0.95), eps=1e-8, foreach=False))
run("lars", lambda groups: LarsReference(groups, lr=0.0, momentum=0.9, trust_coefficient=0.001))
save_file(optim_fixtures, f"{OUT}/optimizers.safetensors")
print("wrote", len(fixtures), "loss tensors and", len(optim_fixtures), "optimizer tensors")

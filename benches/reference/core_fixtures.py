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


def nt_xent_two_views(z, temperature=0.2):
    z = F.normalize(z, dim=1)
    n = z.shape[0] // 2
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    labels = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, labels)


def nt_xent_multi(z, n_views, temperature, negatives=None):
    # Each (anchor, positive) pair: -log softmax over all but the anchor.
    z = F.normalize(z, dim=1)
    rows = z.shape[0]
    batch = rows // n_views
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(rows, dtype=torch.bool), float("-inf"))
    if negatives is not None:
        logits = torch.cat([logits, z @ F.normalize(negatives, dim=1).T / temperature], 1)
    log_prob = logits.log_softmax(1)
    terms = []
    for i in range(rows):
        for j in range(rows):
            if i != j and i % batch == j % batch:
                terms.append(-log_prob[i, j])
    return torch.stack(terms).mean()


def moco_infonce(q, k, queue, temperature=0.2):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
    l_neg = torch.einsum("nc,kc->nk", q, queue)
    logits = torch.cat([l_pos, l_neg], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))


def moco_v3(q, k, temperature=0.2):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = torch.einsum("nc,mc->nm", q, k) / temperature
    return F.cross_entropy(logits, torch.arange(q.shape[0])) * (2 * temperature)


def negative_cosine(p, z):
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


def off_diagonal(x):
    n = x.shape[0]
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def barlow_twins(z1, z2, lambd=0.0051):
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False).double()
    c = bn(z1).T @ bn(z2) / z1.shape[0]
    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    off_diag = off_diagonal(c).pow_(2).sum()
    return on_diag + lambd * off_diag


def vicreg(x, y):
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    n, d = x.shape
    cov_x = (x.T @ x) / (n - 1)
    cov_y = (y.T @ y) / (n - 1)
    cov_loss = off_diagonal(cov_x).pow_(2).sum() / d + off_diagonal(cov_y).pow_(2).sum() / d
    return 25.0 * repr_loss + 25.0 * std_loss + 1.0 * cov_loss


def dino(student, teacher, center, n_crops=4, student_temp=0.1, teacher_temp=0.04):
    student_out = (student / student_temp).chunk(n_crops)
    teacher_out = F.softmax((teacher - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, n_terms = 0, 0
    for iq, q in enumerate(teacher_out):
        for v in range(len(student_out)):
            if v == iq:
                continue
            total += torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean()
            n_terms += 1
    return total / n_terms


def mae(pred, target, mask):
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    target = (target - mean) / (var + 1.0e-6) ** 0.5
    loss = ((pred - target) ** 2).mean(dim=-1)
    return (loss * mask).sum() / mask.sum()


def token_ce(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


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
save_file(fixtures, f"{OUT}/losses.safetensors")


# Optimizers: 20 steps on a small problem with a weight matrix, a bias and a
# 1-D norm weight; lr changes every step to exercise the schedule input.
class LarsReference(torch.optim.Optimizer):
    """LARS as in the official MoCo v3 code (bias/norm excluded)."""

    def __init__(self, params, lr=0, weight_decay=0, momentum=0.9, trust_coefficient=0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, trust_coefficient=trust_coefficient))

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                dp = p.grad
                if dp is None:
                    continue
                if p.ndim > 1:
                    dp = dp.add(p, alpha=g["weight_decay"])
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(param_norm > 0.0, torch.where(update_norm > 0, (g["trust_coefficient"] * param_norm / update_norm), one), one)
                    dp = dp.mul(q)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])


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

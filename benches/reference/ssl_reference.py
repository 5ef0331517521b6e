"""Reference formulas of the SSL losses and of LARS, in plain PyTorch, following
the papers' official code (SimCLR, MoCo v2/v3, BYOL/SimSiam, Barlow Twins,
VICReg, DINO, MAE) and written independently of the Rust implementation that
`core_fixtures.py` and `bench_core.py` check and time it against.
"""
import torch
import torch.nn.functional as F


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
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False).to(z1.dtype)
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


@torch.no_grad()
def distributed_sinkhorn(out, epsilon=0.05, iterations=3):
    # SwAV's official code on one process.
    q = torch.exp(out / epsilon).t()
    b, k = q.shape[1], q.shape[0]
    q /= torch.sum(q)
    for _ in range(iterations):
        q /= torch.sum(q, dim=1, keepdim=True)
        q /= k
        q /= torch.sum(q, dim=0, keepdim=True)
        q /= b
    q *= b
    return q.t()


def swav(scores, n_crops=3, n_global=2, temperature=0.1):
    # SwAV's swapped prediction, as in its official training loop.
    batch = scores.shape[0] // n_crops
    loss = 0
    for i in range(n_global):
        q = distributed_sinkhorn(scores[batch * i: batch * (i + 1)].detach())
        subloss = 0
        for v in [c for c in range(n_crops) if c != i]:
            x = scores[batch * v: batch * (v + 1)] / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (n_crops - 1)
    return loss / n_global


def mae(pred, target, mask):
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    target = (target - mean) / (var + 1.0e-6) ** 0.5
    loss = ((pred - target) ** 2).mean(dim=-1)
    return (loss * mask).sum() / mask.sum()


def token_ce(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


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

"""Wave-2 methods of the PyTorch reference, written from the papers and their
official code (not from selfsup's Rust): BYOL, SimSiam, Barlow Twins, VICReg,
SwAV, DINO and the denoising autoencoder. Same interface as
vision_methods.py: `features(x)`, `loss(views, progress)`, and the optional
`before_optimizer_step(progress)` / `after_step(step, total)` hooks."""

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssl_reference import distributed_sinkhorn
from vision_models import Encoder, backbone, ema, each_view, features_of_views, init_linear, mlp, momentum_cosine


def byol_loss(p, z):
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


class Byol(nn.Module):
    def __init__(self, m):
        super().__init__()
        net = backbone(m["backbone"])
        self.online = Encoder(net, mlp([net.dim, m["proj_hidden"], m["proj_dim"]]))
        self.predictor = mlp([m["proj_dim"], m["pred_hidden"], m["proj_dim"]])
        self.target = copy.deepcopy(self.online)
        self.target.requires_grad_(False)
        self.m = m

    def features(self, x):
        return self.online.backbone(x)

    def loss(self, views, progress):
        n = len(views[0])
        features, z = self.online.each(views[:2])
        p = each_view(self.predictor, z, n)
        with torch.no_grad():
            t = self.target.each(views[:2])[1]
        return byol_loss(p[:n], t[n:]) + byol_loss(p[n:], t[:n]), features[:n]

    @torch.no_grad()
    def after_step(self, step, total):
        ema(self.target, self.online, momentum_cosine(step, total, self.m["base_momentum"]))


class SimSiam(nn.Module):
    def __init__(self, m):
        super().__init__()
        net = backbone(m["backbone"])
        layers = m.get("proj_layers", 3)
        dims = [net.dim] + [m["proj_hidden"]] * (layers - 1) + [m["proj_dim"]]
        self.encoder = Encoder(net, mlp(dims, last_norm=True))
        self.predictor = mlp([m["proj_dim"], m["pred_hidden"], m["proj_dim"]])

    def features(self, x):
        return self.encoder.backbone(x)

    def loss(self, views, progress):
        n = len(views[0])
        features, z = self.encoder.each(views[:2])
        p = each_view(self.predictor, z, n)
        d = lambda a, b: -F.cosine_similarity(a, b.detach(), dim=-1).mean()
        return (d(p[:n], z[n:]) + d(p[n:], z[:n])) / 2, features[:n]


def off_diagonal(c):
    n = c.shape[0]
    return c.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


class Barlow(nn.Module):
    def __init__(self, m):
        super().__init__()
        net = backbone(m["backbone"])
        dims = [net.dim, m["proj_hidden"], m["proj_hidden"], m["proj_dim"]]
        self.encoder = Encoder(net, mlp(dims))
        self.bn = nn.BatchNorm1d(m["proj_dim"], affine=False)
        self.m = m

    def features(self, x):
        return self.encoder.backbone(x)

    def loss(self, views, progress):
        n = len(views[0])
        features, z = self.encoder.each(views[:2])
        c = self.bn(z[:n]).T @ self.bn(z[n:]) / n
        on = (torch.diagonal(c) - 1).pow(2).sum()
        off = off_diagonal(c).pow(2).sum()
        return (on + self.m.get("lambda", 0.0051) * off) * self.m.get("scale_loss", 1.0), features[:n]


class VicReg(nn.Module):
    def __init__(self, m):
        super().__init__()
        net = backbone(m["backbone"])
        dims = [net.dim, m["proj_hidden"], m["proj_hidden"], m["proj_dim"]]
        self.encoder = Encoder(net, mlp(dims))
        self.m = m

    def features(self, x):
        return self.encoder.backbone(x)

    def loss(self, views, progress):
        n = len(views[0])
        features, z = self.encoder.each(views[:2])
        x, y = z[:n], z[n:]
        repr_loss = F.mse_loss(x, y)
        x, y = x - x.mean(0), y - y.mean(0)
        std_x, std_y = torch.sqrt(x.var(0) + 1e-4), torch.sqrt(y.var(0) + 1e-4)
        std_loss = (F.relu(1 - std_x).mean() + F.relu(1 - std_y).mean()) / 2
        cov_x, cov_y = x.T @ x / (n - 1), y.T @ y / (n - 1)
        dim = x.shape[1]
        cov_loss = off_diagonal(cov_x).pow(2).sum() / dim + off_diagonal(cov_y).pow(2).sum() / dim
        m = self.m
        total = m.get("invariance", 25.0) * repr_loss + m.get("variance", 25.0) * std_loss
        return total + m.get("covariance", 1.0) * cov_loss, features[:n]


class Swav(nn.Module):
    def __init__(self, m):
        super().__init__()
        net = backbone(m["backbone"])
        self.encoder = Encoder(net, mlp([net.dim, m["proj_hidden"], m["proj_dim"]]))
        self.prototypes = init_linear(nn.Linear(m["proj_dim"], m["prototypes"], bias=False))
        self.normalize_prototypes()
        size = m.get("queue_size", 0)
        self.register_buffer("queue", torch.zeros(2, size, m["proj_dim"]))
        self.filled, self.pending, self.m = 0, None, m

    @torch.no_grad()
    def normalize_prototypes(self):
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def features(self, x):
        return self.encoder.backbone(x)

    def loss(self, views, progress):
        n, m = len(views[0]), self.m
        features, projections = self.encoder(views)
        z = F.normalize(projections, dim=1)
        scores = self.prototypes(z)
        loss = 0
        for i in range(2):
            with torch.no_grad():
                out = scores[n * i: n * (i + 1)].detach()
                if m.get("queue_size", 0) and self.filled >= m["queue_size"]:
                    out = torch.cat([self.prototypes(self.queue[i]), out])
                q = distributed_sinkhorn(out, m.get("epsilon", 0.05), m.get("sinkhorn_iterations", 3))[-n:]
            subloss = 0
            for v in [c for c in range(len(views)) if c != i]:
                x = scores[n * v: n * (v + 1)] / m["temperature"]
                subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
            loss += subloss / (len(views) - 1)
        self.pending = z[: 2 * n].detach()
        return loss / 2, features[:n]

    def before_optimizer_step(self, progress):
        # selfsup zeroes the gradient (its optimizers then still apply weight
        # decay and momentum); the official code sets it to None. Zeroed here too.
        if progress.epoch < self.m.get("freeze_prototypes_epochs", 1) and self.prototypes.weight.grad is not None:
            self.prototypes.weight.grad.zero_()

    @torch.no_grad()
    def after_step(self, step, total):
        self.normalize_prototypes()
        size = self.m.get("queue_size", 0)
        steps_per_epoch = self.steps_per_epoch
        if size and (step - 1) // steps_per_epoch >= self.m.get("queue_start_epoch", 0):
            n = len(self.pending) // 2
            self.queue[:, n:] = self.queue[:, :-n].clone()
            self.queue[:, :n] = self.pending.view(2, n, -1)
            self.filled = min(self.filled + n, size)


class DinoHead(nn.Module):
    def __init__(self, dim, hidden, bottleneck, out_dim, norm_last_layer):
        super().__init__()
        layers = [nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                  nn.Linear(hidden, bottleneck)]
        for layer in layers:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.mlp = nn.Sequential(*layers)
        self.last_v = nn.Parameter(torch.randn(out_dim, bottleneck) * 0.02)
        self.last_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not norm_last_layer)

    def forward(self, x):
        x = F.normalize(self.mlp(x), dim=-1)
        return x @ (F.normalize(self.last_v, dim=1) * self.last_g).T


class DinoNet(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.backbone = backbone(m["backbone"])
        self.head = DinoHead(self.backbone.dim, m["head_hidden"], m["bottleneck"], m["out_dim"],
                             m.get("norm_last_layer", True))

    def forward(self, views):
        features = features_of_views(self.backbone, views)
        return features, self.head(features)


class Dino(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.student = DinoNet(m)
        self.teacher = copy.deepcopy(self.student)
        self.teacher.requires_grad_(False)
        self.register_buffer("center", torch.zeros(1, m["out_dim"]))
        self.m, self.epoch = m, 0

    def features(self, x):
        return self.student.backbone(x)

    def teacher_temperature(self):
        m = self.m
        warmup, start, end = m["teacher_warmup_epochs"], m["teacher_temperature"], m["teacher_temperature_final"]
        return end if self.epoch >= warmup else start + (end - start) * self.epoch / warmup

    def loss(self, views, progress):
        n, m = len(views[0]), self.m
        features, student = self.student(views)
        with torch.no_grad():
            teacher = self.teacher(views[:2])[1]
        s = (student / m["student_temperature"]).chunk(len(views))
        t = F.softmax((teacher - self.center) / self.teacher_temperature(), dim=-1).chunk(2)
        total, terms = 0, 0
        for iq, q in enumerate(t):
            for v in range(len(s)):
                if v != iq:
                    total += torch.sum(-q * F.log_softmax(s[v], dim=-1), dim=-1).mean()
                    terms += 1
        with torch.no_grad():
            momentum = m.get("center_momentum", 0.9)
            self.center.mul_(momentum).add_(teacher.mean(0, keepdim=True) * (1 - momentum))
        return total / terms, features[:n]

    def before_optimizer_step(self, progress):
        if progress.epoch < self.m.get("freeze_last_layer_epochs", 1):
            for p in (self.student.head.last_v, self.student.head.last_g):
                if p.grad is not None:
                    p.grad.zero_()  # as selfsup (the official code: None)

    @torch.no_grad()
    def after_step(self, step, total):
        ema(self.teacher, self.student, momentum_cosine(step, total, self.m["base_momentum"]))
        self.epoch = step // self.steps_per_epoch


class Dae(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.backbone = backbone(m["backbone"])
        channels = m["backbone"].get("in_channels", 3)
        pixels = channels * m["image_size"] ** 2
        self.decoder = nn.Sequential(init_linear(nn.Linear(self.backbone.dim, m["decoder_hidden"])), nn.ReLU(),
                                     init_linear(nn.Linear(m["decoder_hidden"], pixels)))
        self.m = m

    def features(self, x):
        return self.backbone(x)

    def loss(self, views, progress):
        x = views[0]
        if self.m["noise"] == "mask":
            b, _, h, w = x.shape
            corrupted = x * (torch.rand(b, 1, h, w) >= self.m.get("mask_ratio", 0.25)).float()
        else:
            corrupted = x + torch.randn_like(x) * self.m.get("sigma", 0.5)
        code = self.backbone(corrupted)
        return F.mse_loss(self.decoder(code), x.flatten(1)), code

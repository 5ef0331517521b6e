"""Wave-1 methods of the PyTorch reference: SimCLR, MoCo v2+, MoCo v3,
rotation prediction, MAE. Each has `features(x)`, `loss(views, progress)`
returning (loss, features of the first view or None) and optionally
`after_step(step, total)` and `before_optimizer_step(progress)`."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssl_reference import moco_infonce, moco_v3, nt_xent_multi
from vision_models import (Block, Encoder, backbone, ema, init_linear, mlp, momentum_cosine,
                           sincos_2d, with_cls_row, xavier_linear)


class SimClr(nn.Module):
    def __init__(self, m):
        super().__init__()
        net = backbone(m["backbone"])
        self.encoder = Encoder(net, mlp([net.dim, m["proj_hidden"], m["proj_dim"]]))
        self.m = m

    def features(self, x):
        return self.encoder.backbone(x)

    def loss(self, views, progress):
        features, z = self.encoder(views)
        return nt_xent_multi(z, len(views), self.m["temperature"]), features[: len(views[0])]


class Moco(nn.Module):
    def __init__(self, m):
        super().__init__()
        net = backbone(m["backbone"])
        self.query = Encoder(net, mlp([net.dim, m["proj_hidden"], m["proj_dim"]], norm=False))
        key_net = backbone(m["backbone"])
        self.key = Encoder(key_net, mlp([net.dim, m["proj_hidden"], m["proj_dim"]], norm=False))
        self.key.load_state_dict(self.query.state_dict())
        self.key.requires_grad_(False)
        queue = torch.randn(m["queue_size"], m["proj_dim"])
        self.register_buffer("queue", F.normalize(queue, dim=1))
        self.pointer, self.pending, self.m = 0, [], m

    def features(self, x):
        return self.query.backbone(x)

    def loss(self, views, progress):
        n = len(views[0])
        features, q = self.query(views[:2])
        with torch.no_grad():
            k = self.key(views[:2])[1]
        t = self.m["temperature"]
        loss = (moco_infonce(q[:n], k[n:], self.queue, t) + moco_infonce(q[n:], k[:n], self.queue, t)) / 2
        self.pending.append(k.detach())
        return loss, features[:n]

    @torch.no_grad()
    def after_step(self, step, total):
        for keys in self.pending:
            keys = F.normalize(keys, dim=1)
            size = self.queue.shape[0]
            for row in keys:
                self.queue[self.pointer] = row
                self.pointer = (self.pointer + 1) % size
        self.pending = []
        ema(self.key, self.query, momentum_cosine(step, total, self.m["base_momentum"]))


class MocoV3(nn.Module):
    def __init__(self, m):
        super().__init__()
        net = backbone(m["backbone"])
        dims = [net.dim, m["proj_hidden"], m["proj_dim"]]
        self.query = Encoder(net, mlp(dims, last_norm=True))
        self.predictor = mlp([m["proj_dim"], m["pred_hidden"], m["proj_dim"]])
        self.key = Encoder(backbone(m["backbone"]), mlp(dims, last_norm=True))
        self.key.load_state_dict(self.query.state_dict())
        self.key.requires_grad_(False)
        self.m = m

    def features(self, x):
        return self.query.backbone(x)

    def loss(self, views, progress):
        n = len(views[0])
        features, z = self.query(views[:2])
        q = self.predictor(z)
        with torch.no_grad():
            k = self.key(views[:2])[1]
        t = self.m["temperature"]
        return moco_v3(q[:n], k[n:], t) + moco_v3(q[n:], k[:n], t), features[:n]

    @torch.no_grad()
    def after_step(self, step, total):
        ema(self.key, self.query, momentum_cosine(step, total, self.m["base_momentum"]))


class RotNet(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.backbone = backbone(m["backbone"])
        self.head = init_linear(nn.Linear(self.backbone.dim, 4))

    def features(self, x):
        return self.backbone(x)

    def loss(self, views, progress):
        x = views[0]
        rotated = torch.cat([torch.rot90(x, k, (2, 3)) for k in range(4)])
        labels = torch.arange(4).repeat_interleave(len(x))
        features = self.backbone(rotated)
        return F.cross_entropy(self.head(features), labels), features[: len(x)]


class Mae(nn.Module):
    def __init__(self, m):
        super().__init__()
        e, d = m["encoder"], m["decoder"]
        self.e, self.m = e, m
        p, dim = e["patch_size"], e["dim"]
        self.grid = e["image_size"] // p
        self.patch_embed = nn.Conv2d(e["in_channels"], dim, p, stride=p)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(dim, -1))
        nn.init.zeros_(self.patch_embed.bias)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.register_buffer("pos", with_cls_row(sincos_2d(dim, self.grid)))
        self.blocks = nn.ModuleList(Block(dim, e["heads"], e["mlp_ratio"]) for _ in range(e["depth"]))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_embed = xavier_linear(dim, d["dim"])
        self.mask_token = nn.Parameter(torch.randn(1, 1, d["dim"]) * 0.02)
        self.register_buffer("decoder_pos", with_cls_row(sincos_2d(d["dim"], self.grid)))
        self.decoder_blocks = nn.ModuleList(Block(d["dim"], d["heads"], 4.0) for _ in range(d["depth"]))
        self.decoder_norm = nn.LayerNorm(d["dim"], eps=1e-6)
        self.decoder_pred = xavier_linear(d["dim"], p * p * e["in_channels"])

    def embed(self, x):
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos[:, 1:]

    def encode(self, tokens):
        cls = (self.cls_token + self.pos[:, :1]).expand(len(tokens), -1, -1)
        x = torch.cat([cls, tokens], 1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def features(self, x):
        return self.encode(self.embed(x))[:, 1:].mean(1)

    def patchify(self, x):
        b, c = x.shape[:2]
        p, g = self.e["patch_size"], self.grid
        return x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, p * p * c)

    def loss(self, views, progress):
        x = views[0]
        tokens = self.embed(x)
        b, n, dim = tokens.shape
        keep = int(n * (1 - self.m["mask_ratio"]))
        ids_shuffle = torch.rand(b, n).argsort(1)
        ids_restore = ids_shuffle.argsort(1)
        visible = tokens.gather(1, ids_shuffle[:, :keep, None].expand(-1, -1, dim))
        mask = torch.cat([torch.zeros(b, keep), torch.ones(b, n - keep)], 1).gather(1, ids_restore)
        latent = self.decoder_embed(self.encode(visible))
        masks = self.mask_token.expand(b, n - keep, -1)
        shuffled = torch.cat([latent[:, 1:], masks], 1)
        unshuffled = shuffled.gather(1, ids_restore[:, :, None].expand(-1, -1, latent.shape[2]))
        y = torch.cat([latent[:, :1], unshuffled], 1) + self.decoder_pos
        for block in self.decoder_blocks:
            y = block(y)
        pred = self.decoder_pred(self.decoder_norm(y))[:, 1:]
        target = self.patchify(x)
        if self.m["norm_pix_loss"]:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(-1)
        return (loss * mask).sum() / mask.sum(), None



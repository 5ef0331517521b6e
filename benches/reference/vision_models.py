"""Networks and helpers of the PyTorch reference (quality_vision.py), written
to mirror selfsup's choices: torchvision's ResNets and Kaiming init for
convolutions, PyTorch's default (= tch's) linear init, timm's ViT block
layout with fixed 2-D sin-cos positions, EMA over parameters and buffers."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F



def init_linear(linear):
    nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
    if linear.bias is not None:
        bound = 1 / math.sqrt(linear.weight.shape[1])
        nn.init.uniform_(linear.bias, -bound, bound)
    return linear


def init_conv(conv):
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


class SmallCnn(nn.Module):
    def __init__(self, in_channels=3, widths=(32, 64, 128, 256)):
        super().__init__()
        self.stages = nn.ModuleList()
        for width in widths:
            layers = []
            for _ in range(2):
                layers += [init_conv(nn.Conv2d(in_channels, width, 3, padding=1, bias=False)),
                           nn.BatchNorm2d(width), nn.ReLU()]
                in_channels = width
            self.stages.append(nn.Sequential(*layers))
        self.dim = widths[-1]

    def forward(self, x):
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = stage(x)
        return x.mean(dim=(2, 3))


def resnet(config):
    import torchvision
    depth = config["depth"]
    net = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34,
           50: torchvision.models.resnet50}[depth]()
    if config["stem"] == "cifar":
        net.conv1 = init_conv(nn.Conv2d(config.get("in_channels", 3), 64, 3, 1, 1, bias=False))
        net.maxpool = nn.Identity()
    net.dim = net.fc.in_features
    net.fc = nn.Identity()
    return net


def backbone(config):
    kind = config["kind"]
    if kind == "small_cnn":
        return SmallCnn(config.get("in_channels", 3), tuple(config.get("widths", (32, 64, 128, 256))))
    if kind == "resnet":
        return resnet(config)
    if kind == "vit":
        return Vit(config)
    raise SystemExit(f"the reference has no backbone `{kind}`")


def features_of_views(net, views):
    """One batch per run of equally sized views, as selfsup's features_of_views."""
    out, start = [], 0
    while start < len(views):
        end = start
        while end < len(views) and views[end].shape == views[start].shape:
            end += 1
        out.append(net(torch.cat(views[start:end])))
        start = end
    return torch.cat(out)


def mlp(dims, norm=True, last_norm=False):
    """Linear(no bias) → BN → ReLU … → Linear [→ BN(affine=False)], as selfsup's Mlp;
    without `norm`, every linear has a bias and there is no BN (MoCo v2)."""
    layers = []
    for a, b in zip(dims[:-2], dims[1:-1]):
        layers.append(init_linear(nn.Linear(a, b, bias=not norm)))
        if norm:
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.ReLU())
    layers.append(init_linear(nn.Linear(dims[-2], dims[-1], bias=not last_norm)))
    if last_norm:
        layers.append(nn.BatchNorm1d(dims[-1], affine=False))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, backbone, projector):
        super().__init__()
        self.backbone, self.projector = backbone, projector

    def forward(self, views):
        features = features_of_views(self.backbone, views)
        return features, self.projector(features)

    def each(self, views):
        """Each view in a pass of its own (batch norm per view), as the
        official BYOL, SimSiam, Barlow Twins and VICReg code calls its
        network once per view."""
        outs = [self([v]) for v in views]
        return torch.cat([f for f, _ in outs]), torch.cat([z for _, z in outs])


def each_view(module, x, n):
    """`module` on each block of `n` rows on its own (a predictor's batch norm per view)."""
    return torch.cat([module(part) for part in x.split(n)])


def momentum_cosine(step, total, base):
    progress = min(step / max(total, 1), 1.0)
    return 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2


@torch.no_grad()
def ema(teacher, student, momentum):
    # Parameters and buffers (batch-norm statistics), as selfsup's Ema pairs
    # every variable of the store.
    for t, s in zip(teacher.state_dict().values(), student.state_dict().values()):
        if t.dtype.is_floating_point:
            t.lerp_(s, 1 - momentum)


def xavier_linear(a, b):
    linear = nn.Linear(a, b)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


def sincos_2d(dim, grid):
    """[grid * grid, dim]: column then row, each [sin, cos] (MAE's layout)."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2))
        angles = pos[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], 1)
    coords = torch.arange(grid, dtype=torch.float64)
    rows, cols = coords.repeat_interleave(grid), coords.repeat(grid)
    return torch.cat([one_d(dim // 2, cols), one_d(dim // 2, rows)], 1).float()


def with_cls_row(positions):
    return torch.cat([torch.zeros(1, positions.shape[1]), positions]).unsqueeze(0)


class Block(nn.Module):
    """Pre-LayerNorm block, timm's layout, attention through SDPA."""

    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.qkv, self.proj = xavier_linear(dim, 3 * dim), xavier_linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.fc1, self.fc2 = xavier_linear(dim, hidden), xavier_linear(hidden, dim)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))



def interpolate_positions(pos, grid, rows, cols):
    """[1, 1 + grid*grid, dim] positions for a rows x cols grid: the patch
    part resized bicubically (align corners off), as DINO's code does."""
    if (rows, cols) == (grid, grid):
        return pos
    dim = pos.shape[2]
    patches = pos[:, 1:].reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(rows, cols), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], patches.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)], 1)


class Vit(nn.Module):
    """selfsup's VisionTransformer: patch embedding, cls token, fixed sin-cos
    positions (interpolated for other sizes), blocks, final LayerNorm;
    features are the cls token or the mean of the patch tokens."""

    def __init__(self, c):
        super().__init__()
        p, dim = c["patch_size"], c["dim"]
        self.patch, self.grid, self.pool = p, c["image_size"] // p, c.get("pool", "mean")
        self.patch_embed = nn.Conv2d(c.get("in_channels", 3), dim, p, stride=p)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(dim, -1))
        nn.init.zeros_(self.patch_embed.bias)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.register_buffer("pos", with_cls_row(sincos_2d(dim, self.grid)))
        self.blocks = nn.ModuleList(Block(dim, c["heads"], c["mlp_ratio"]) for _ in range(c["depth"]))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.dim = dim

    def forward(self, x):
        patches = self.patch_embed(x)
        rows, cols = patches.shape[2], patches.shape[3]
        pos = interpolate_positions(self.pos, self.grid, rows, cols)
        tokens = patches.flatten(2).transpose(1, 2) + pos[:, 1:]
        cls = (self.cls_token + pos[:, :1]).expand(len(x), -1, -1)
        y = torch.cat([cls, tokens], 1)
        for block in self.blocks:
            y = block(y)
        y = self.norm(y)
        return y[:, 0] if self.pool == "cls" else y[:, 1:].mean(1)

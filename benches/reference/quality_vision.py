"""PyTorch reference for `cargo xtask bench quality <task>`.

Trains the same model with the same recipe as selfsup (it reads the same TOML
config) in plain PyTorch + torchvision, then scores the encoder with the same
weighted k-NN (cosine, k and temperature from the config) on the evaluation
split, next to the encoder at its random initialisation. Prints one JSON line.

Mirrors of selfsup's choices, so that the two sides differ only in their code:
- initialisation: convolutions Kaiming-normal (fan_out, ReLU) as torchvision's
  ResNets; linears Kaiming-uniform (fan_in, ReLU gain) with PyTorch's default
  bias init, which is tch's default;
- no weight decay on biases and norm parameters (every 1-D parameter);
- LARS as the MoCo v3 code (1-D parameters skip decay and adaptation);
- learning rate: linear warmup then half-cosine, set every step;
- MoCo: one queue fed with both views' keys after each step; momentum on a
  cosine from the base to 1, updated after each step;
- augmentations: torchvision's transforms on PIL images, in the config's order
  (RandomResizedCrop, ColorJitter with probability, RandomGrayscale, flip).

Usage: quality_vision.py --config CONFIG --data DIR --threads N [--max-steps S]
where DIR holds `<split>/<class>/*.jpg` (the CIFAR-10 JPEG archive, unpacked).
"""

import argparse
import json
import math
import os
import time
import tomllib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from ssl_reference import LarsReference, moco_infonce, moco_v3, nt_xent_multi


# ---------------------------------------------------------------- data


def read_image_folder(root):
    """uint8 [N, H, W, 3] and int64 labels, classes in sorted order."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            with Image.open(os.path.join(folder, file)) as im:
                images.append(np.asarray(im.convert("RGB")))
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.int64), len(classes)


def view_transform(view, mean, std):
    ops = [T.RandomResizedCrop(view["size"], scale=tuple(view.get("scale", [0.08, 1.0])),
                               ratio=tuple(view.get("ratio", [3 / 4, 4 / 3])))]
    jitter = view.get("jitter")
    if jitter:
        cj = T.ColorJitter(jitter["brightness"], jitter["contrast"], jitter["saturation"], jitter["hue"])
        ops.append(T.RandomApply([cj], p=jitter["p"]))
    if view.get("grayscale_p", 0.0) > 0:
        ops.append(T.RandomGrayscale(p=view["grayscale_p"]))
    if view.get("flip_p", 0.5) > 0:
        ops.append(T.RandomHorizontalFlip(p=view.get("flip_p", 0.5)))
    ops += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(ops)


class Views(Dataset):
    def __init__(self, images, labels, transforms, plain):
        self.images, self.labels, self.transforms, self.plain = images, labels, transforms, plain

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = Image.fromarray(self.images[i])
        if not self.transforms:
            return [self.plain(image)], self.labels[i]
        return [t(image) for t in self.transforms], self.labels[i]


# ---------------------------------------------------------------- models


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
    raise SystemExit(f"the reference has no backbone `{kind}`")


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
        features = self.backbone(torch.cat(views))
        return features, self.projector(features)


def momentum_cosine(step, total, base):
    progress = min(step / max(total, 1), 1.0)
    return 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2


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


METHODS = {"simclr": SimClr, "moco": Moco, "mocov3": MocoV3, "rotnet": RotNet, "mae": Mae}


# ---------------------------------------------------------------- training


def warmup_cosine(step, total, warmup, base, final):
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= total or total <= warmup:
        return final
    progress = (step - warmup) / (total - warmup)
    return final + (base - final) * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer(model, o):
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": o.get("weight_decay", 0.05)},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    kind = o.get("optimizer", "adamw")
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=0, momentum=o.get("momentum", 0.9), nesterov=o.get("nesterov", False))
    if kind == "lars":
        return LarsReference(groups, lr=0, momentum=o.get("momentum", 0.9),
                             trust_coefficient=o.get("trust_coefficient", 0.001))
    return torch.optim.AdamW(groups, lr=0, betas=(o.get("beta1", 0.9), o.get("beta2", 0.95)), eps=1e-8)


@torch.no_grad()
def extract(model, images, mean, std, batch):
    model.eval()
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(images[start:start + batch]).permute(0, 3, 1, 2).float() / 255
        out.append(model.features((x - mean) / std))
    model.train()
    return torch.cat(out)


@torch.no_grad()
def knn_top1(train_f, train_y, test_f, test_y, classes, k, t):
    train_f, test_f = F.normalize(train_f, dim=1), F.normalize(test_f, dim=1)
    k = min(k, len(train_f))
    correct = 0
    for start in range(0, len(test_f), 256):
        sim = test_f[start:start + 256] @ train_f.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(sim), classes).scatter_add_(1, train_y[top_idx], (top_sim / t).exp())
        correct += (votes.argmax(1) == test_y[start:start + 256]).sum().item()
    return correct / len(test_f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--seed", type=int, help="default: the config's trainer.seed")
    args = parser.parse_args()
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    torch.set_num_threads(args.threads)
    torch.manual_seed(config["trainer"].get("seed", 0) if args.seed is None else args.seed)
    data, m, o, tr, ev = (config[k] for k in ("data", "method", "optim", "trainer", "eval"))
    mean, std = data["mean"], data["std"]
    train_x, train_y, classes = read_image_folder(os.path.join(args.data, data["split"]))
    test_x, test_y, _ = read_image_folder(os.path.join(args.data, data["eval_split"]))
    train_y, test_y = torch.from_numpy(train_y), torch.from_numpy(test_y)

    model = METHODS[m["name"]](m)
    knn = lambda: knn_top1(extract(model, train_x, mean, std, ev["batch_size"]), train_y,
                           extract(model, test_x, mean, std, ev["batch_size"]), test_y, classes,
                           ev["knn_k"], ev["knn_temperature"])
    random_init = knn()

    views = []
    for view in data.get("views", []):
        views += [view_transform(view, mean, std)] * view.get("count", 1)
    plain = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
    loader = DataLoader(Views(train_x, train_y.numpy(), views, plain), batch_size=tr["batch_size"],
                        shuffle=True, drop_last=True, num_workers=args.threads, persistent_workers=True,
                        prefetch_factor=4)
    steps_per_epoch = len(loader)
    total = steps_per_epoch * tr["epochs"]
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = round(o.get("warmup_epochs", 1.0) * steps_per_epoch)
    opt = optimizer(model, o)
    model.train()
    step, losses, started = 0, [], time.time()
    while step < total:
        for batch_views, _ in loader:
            lr = warmup_cosine(step, total, warmup, o["lr"], o.get("min_lr", 0.0))
            for g in opt.param_groups:
                g["lr"] = lr
            loss, _ = model.loss(batch_views, step / total)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if hasattr(model, "after_step"):
                model.after_step(step, total)
            losses.append(loss.item())
            if step % 50 == 0:
                print(f"step {step}/{total} loss {loss.item():.4f} lr {lr:.3g}", flush=True)
            if step >= total:
                break
    seconds = time.time() - started
    trained = knn()
    print(json.dumps({
        "steps": total, "train_seconds": seconds, "images_per_second": total * tr["batch_size"] / seconds,
        "first_loss": losses[0], "final_loss": losses[-1], "knn_top1": trained, "knn_top1_random_init": random_init,
    }))


if __name__ == "__main__":
    main()

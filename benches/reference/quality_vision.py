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
import collections
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

from ssl_reference import LarsReference
from vision_methods import Mae, Moco, MocoV3, RotNet, SimClr
from vision_methods_wave2 import Barlow, Byol, Dae, Dino, SimSiam, Swav, VicReg


# ---------------------------------------------------------------- data


def read_image_folder(root, mode="RGB"):
    """uint8 [N, H, W, 3] (or [N, H, W] for mode "L") and int64 labels, classes in sorted order."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            with Image.open(os.path.join(folder, file)) as im:
                images.append(np.asarray(im.convert(mode)))
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
    blur = view.get("blur")
    if blur:
        ops.append(T.RandomApply([T.GaussianBlur(blur["kernel"], tuple(blur["sigma"]))], p=blur["p"]))
    if view.get("solarize_p", 0.0) > 0:
        ops.append(T.RandomSolarize(128, p=view["solarize_p"]))
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


METHODS = {"simclr": SimClr, "moco": Moco, "mocov3": MocoV3, "rotnet": RotNet, "mae": Mae,
           "byol": Byol, "simsiam": SimSiam, "barlowtwins": Barlow, "vicreg": VicReg, "swav": Swav,
           "dino": Dino, "dae": Dae}


# ---------------------------------------------------------------- training


Progress = collections.namedtuple("Progress", "step total epoch steps_per_epoch")


def warmup_cosine(step, total, warmup, base, final):
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= total or total <= warmup:
        return final
    progress = (step - warmup) / (total - warmup)
    return final + (base - final) * 0.5 * (1 + math.cos(math.pi * progress))


def lr_scale(name, scales):
    """The multiplier of the longest `optim.lr_scales` module path over `name`."""
    paths = [path for path in scales if name == path or name.startswith(path + ".")]
    return scales[max(paths, key=len)] if paths else 1.0


def optimizer(model, o):
    scales = o.get("lr_scales", {})
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    for path in scales:
        if not any(name == path or name.startswith(path + ".") for name, _ in trainable):
            raise SystemExit(f"optim.lr_scales.{path}: names no trainable parameter of the reference model")
    split = {}
    for name, p in trainable:
        split.setdefault((p.ndim > 1, lr_scale(name, scales)), []).append(p)
    groups = [{"params": params, "weight_decay": o.get("weight_decay", 0.05) if decays else 0.0,
               "decays": decays, "lr_scale": scale}
              for (decays, scale), params in split.items()]
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
        x = torch.from_numpy(images[start:start + batch])
        x = (x.unsqueeze(-1) if x.dim() == 3 else x).permute(0, 3, 1, 2).float() / 255
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
    network = m.get("backbone", m.get("encoder", {}))  # MAE names its ViT "encoder"
    mode = "L" if network.get("in_channels", 3) == 1 else "RGB"
    train_x, train_y, classes = read_image_folder(os.path.join(args.data, data["split"]), mode)
    test_x, test_y, _ = read_image_folder(os.path.join(args.data, data["eval_split"]), mode)
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
    model.steps_per_epoch = steps_per_epoch
    total = steps_per_epoch * tr["epochs"]
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = o.get("warmup_steps", round(o.get("warmup_epochs", 1.0) * steps_per_epoch))
    opt = optimizer(model, o)
    model.train()
    step, losses, started = 0, [], time.time()
    while step < total:
        for batch_views, _ in loader:
            lr = warmup_cosine(step, total, warmup, o["lr"], o.get("min_lr", 0.0))
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"]
            if "weight_decay_end" in o:
                decay = warmup_cosine(step, total, 0, o.get("weight_decay", 0.05), o["weight_decay_end"])
                for g in opt.param_groups:
                    if g["decays"]:
                        g["weight_decay"] = decay
            progress = Progress(step, total, step // steps_per_epoch, steps_per_epoch)
            loss, _ = model.loss(batch_views, progress)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if hasattr(model, "before_optimizer_step"):
                model.before_optimizer_step(progress)
            if "grad_clip" in tr:
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], tr["grad_clip"])
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

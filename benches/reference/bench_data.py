"""torchvision twin of `selfsup bench data` (crates/cli/src/bench_data.rs):
decode an ImageFolder of JPEGs with PIL (throughput), hold the decoded images
in memory, and time two-view SimCLR CIFAR batches through a DataLoader with
`--workers` worker processes: RandomResizedCrop(32, scale=(0.08, 1)),
ColorJitter(0.4, 0.4, 0.2, 0.1) with p 0.8, RandomGrayscale(0.2),
RandomHorizontalFlip, ToTensor, Normalize. Prints `name<TAB>value` lines.

    .venv-reference/bin/python benches/reference/bench_data.py DIR --workers 2
"""
import argparse
import os
import time

import torch
from PIL import Image
from torchvision import transforms

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def load(root):
    paths = []
    for label, cls in enumerate(sorted(os.listdir(root))):
        for name in sorted(os.listdir(os.path.join(root, cls))):
            paths.append((os.path.join(root, cls, name), label))
    start = time.perf_counter()
    images = []
    for path, label in paths:
        with Image.open(path) as im:
            images.append((im.convert("RGB"), label))
    return images, len(paths) / (time.perf_counter() - start)


class TwoViews(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images
        self.transform = transforms.Compose([
            transforms.RandomResizedCrop(32, scale=(0.08, 1.0)),
            transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            transforms.RandomGrayscale(p=0.2),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image, label = self.images[i]
        return self.transform(image), self.transform(image), label


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images, decode_rate = load(args.root)
    print(f"jpeg decode images/s\t{decode_rate:.1f}", flush=True)
    loader = torch.utils.data.DataLoader(TwoViews(images), batch_size=256, shuffle=True, num_workers=args.workers, drop_last=True, persistent_workers=True)
    it = iter(loader)
    for _ in range(3):  # warm-up: workers started, first batches out
        next(it)
    start = time.perf_counter()
    for _ in range(args.batches):
        next(it)
    print(f"two-view simclr images/s\t{args.batches * 256 / (time.perf_counter() - start):.1f}", flush=True)


if __name__ == "__main__":
    main()

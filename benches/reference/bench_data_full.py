"""torchvision twin of `bench_data_full` (crates/vision/examples): SimCLR's
ImageNet two-view pipeline on an ImageFolder of full-size JPEGs, read from
disk per sample as torchvision's ImageFolder does: decode (PIL),
RandomResizedCrop(224), flip, ColorJitter(0.8, 0.8, 0.8, 0.2) p 0.8,
RandomGrayscale(0.2), GaussianBlur(23, (0.1, 2.0)) p 0.5, ToTensor,
Normalize; a DataLoader with `--workers` processes, batches of 256. Prints
a `name<TAB>value` line (images/s).

    .venv-reference/bin/python benches/reference/bench_data_full.py DIR --workers 2
"""
import argparse
import time

import torch
from torchvision import datasets, transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class TwoViews:
    def __init__(self):
        self.transform = transforms.Compose([
            transforms.RandomResizedCrop(224, scale=(0.08, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.RandomApply([transforms.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
            transforms.RandomGrayscale(p=0.2),
            transforms.RandomApply([transforms.GaussianBlur(23, sigma=(0.1, 2.0))], p=0.5),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ])

    def __call__(self, image):
        return self.transform(image), self.transform(image)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = datasets.ImageFolder(args.root, transform=TwoViews())
    loader = torch.utils.data.DataLoader(data, batch_size=256, shuffle=True, num_workers=args.workers, drop_last=True, persistent_workers=True)
    it = iter(loader)
    next(it)  # warm-up: workers started, first batch out
    start = time.perf_counter()
    for _ in range(args.batches):
        next(it)
    rate = args.batches * 256 / (time.perf_counter() - start)
    print(f"full-size two-view simclr images/s\t{rate:.1f}", flush=True)


if __name__ == "__main__":
    main()

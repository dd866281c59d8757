"""Torch datasets over scanned samples, built on the inference preprocessing."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset

from inference.preprocess import PreprocessConfig, load_image, normalize, resize
from model_training.augment import AugmentConfig, augment, random_background
from model_training.data import Sample

DEFAULT_AUGMENT = AugmentConfig()


class MemeDataset(Dataset):
    """Evaluation mode runs the production preprocessing unchanged; training adds augmentation."""

    def __init__(
        self,
        samples: list[Sample],
        labels: list[str],
        cfg: PreprocessConfig,
        *,
        train: bool = False,
        aug: AugmentConfig = DEFAULT_AUGMENT,
        seed: int = 0,
    ) -> None:
        self.samples = samples
        self.index = {label: i for i, label in enumerate(labels)}
        self.cfg = cfg
        self.train = train
        self.aug = aug
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        s = self.samples[i]
        if self.train:
            rng = random.Random(hash((self.seed, self.epoch, i)))
            img = load_image(
                s.path, background=random_background(rng), max_pixels=self.cfg.max_pixels
            )
            img = augment(img, rng, self.aug)
        else:
            img = load_image(s.path, background=self.cfg.background, max_pixels=self.cfg.max_pixels)
        arr = normalize(resize(img, self.cfg), self.cfg)
        return torch.from_numpy(arr), self.index[s.label]


def batch_arrays(samples: list[Sample], cfg: PreprocessConfig) -> np.ndarray:
    return np.stack(
        [
            normalize(resize(load_image(s.path, background=cfg.background), cfg), cfg)
            for s in samples
        ]
    )

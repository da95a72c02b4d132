"""A small synthetic training set with a simple, learnable truth."""

import numpy as np

PROPERTY_NAMES = ("stellar_mass", "sfr", "stellar_age")


def tiny_model_config():
    """A small model configuration for the synthetic properties."""
    from picasso_astro.config import ModelConfig
    from picasso_astro.properties import PROPERTIES

    return ModelConfig(
        properties={
            n: {"bin_edges": list(PROPERTIES[n].bin_edges)} for n in PROPERTY_NAMES
        },
        width=4,
        depth=2,
        groups=2,
        name="tiny",
    )


class SyntheticGalaxies:
    """Gaussian blobs whose truth follows from their flux and colour.

    ``stellar_mass = 4 + 2 * log10(1 + 10 r)`` on pixels where the clean r flux
    exceeds 0.05 nmgy (floor 3 elsewhere); ``sfr`` follows the g - r flux ratio;
    ``stellar_age`` is undefined (truth_valid False) outside the galaxy.
    """

    property_names = PROPERTY_NAMES

    def __init__(self, n=16, size=32, seed=0):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:size, 0:size]
        self.items = []
        for _ in range(n):
            cx, cy = rng.uniform(size * 0.3, size * 0.7, 2)
            radius = rng.uniform(2.5, 6.0)
            amp = 10 ** rng.uniform(-0.5, 1.0)
            blue = rng.uniform(0.2, 1.5)
            profile = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))
            colours = np.array([0.5 * blue, blue, 1.0, 1.1, 1.2])[:, None, None]
            clean = (amp * colours * profile).astype(np.float32)
            noise = np.full(5, 0.02, np.float32)
            images = clean + noise[:, None, None] * rng.standard_normal(clean.shape)
            r = clean[2]
            valid = r > 0.05
            mass = np.where(valid, 4 + 2 * np.log10(1 + 10 * r), 3.0)
            sfr = np.where(valid, -5 + 2.5 * np.log10(clean[1] / r) + mass - 6, -7.0)
            age = np.where(valid, 9.0 + 0.5 / blue * 0.5, 8.0)
            truth = np.stack([mass, np.clip(sfr, -7, 1), age]).astype(np.float32)
            truth_valid = np.stack([valid, valid, valid])
            mask = np.zeros((size, size), bool)
            mask[rng.integers(size), :] = True  # a bad row
            self.items.append(
                {
                    "images": images.astype(np.float32),
                    "mask": mask,
                    "truth": truth,
                    "truth_valid": truth_valid,
                    "noise": noise,
                    "clean_images": clean,
                }
            )

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return {k: v.copy() for k, v in self.items[index].items()}

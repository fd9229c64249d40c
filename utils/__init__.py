"""Shared helpers for the deep-learning-for-vision course kit.

Importing :mod:`utils` has no side effects: nothing is seeded, downloaded or
configured until you call a function. The modules, one job each:

- :mod:`utils.quick`     -- quick mode (the ``COURSE_QUICK`` switch);
- :mod:`utils.data`      -- one loader for mnist / fashion_mnist / cifar10 / digits;
- :mod:`utils.sources`   -- the tfds, Keras-cache and download sources behind it;
- :mod:`utils.images`    -- adapting image size/channels; scikit-image samples;
- :mod:`utils.idx`       -- reading and verifying IDX files (the MNIST format);
- :mod:`utils.cache`     -- the on-disk array cache, written atomically;
- :mod:`utils.pipeline`  -- ``tf.data`` input pipelines and augmentation layers;
- :mod:`utils.runtime`   -- the setup call: seeds, accelerator, strategy, precision;
- :mod:`utils.training`  -- the one training path around ``model.fit``;
- :mod:`utils.plotting`  -- figures (image grids, curves, filters, confusion matrix);
- :mod:`utils.checks`    -- assertion helpers with messages a student can act on;
- :mod:`utils.notebooks` -- executing notebooks (tests, refreshing stored outputs).
"""

__all__ = [
    "cache",
    "checks",
    "data",
    "idx",
    "images",
    "notebooks",
    "pipeline",
    "plotting",
    "quick",
    "runtime",
    "sources",
    "training",
]

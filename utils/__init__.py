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
- :mod:`utils.inspection` -- looking inside a trained network (layer outputs, gradients,
  receptive-field geometry, image transformations);
- :mod:`utils.archtable` -- parameters and multiply-adds of a network from a layer table;
- :mod:`utils.labs`      -- the lab machinery: the lab format, building the student labs,
  the self-checks, executing notebooks and the autograder (see its docstring);
- :mod:`utils.selfcheck` -- a compatibility alias of :mod:`utils.labs.selfcheck` for lab
  notebooks saved before the move.
"""

__all__ = [
    "archtable",
    "cache",
    "checks",
    "data",
    "idx",
    "images",
    "inspection",
    "labs",
    "pipeline",
    "plotting",
    "quick",
    "runtime",
    "selfcheck",
    "sources",
    "training",
]

"""Images per second: the kit's training path against plain ``model.fit`` on NumPy arrays.

Run:  python -m benchmarks.train_speed [--rounds 5] [--batch-size 128] [--train-size N]

Both sides train the same LeNet-sized network, from the same initial weights,
on Fashion-MNIST, in one process. The two sides take turns for ``--rounds``
rounds; in each round each side trains two epochs and only the second is timed
(the first absorbs graph tracing and XLA compilation). Each figure is the
median over its timed epochs. Taking turns matters on a shared machine, whose
speed drifts. The kit side is whatever
``runtime.setup()`` picks on this machine (on a GPU: mixed precision and XLA),
with the ``uint8`` ``tf.data`` pipeline and 16 steps per compiled call.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
from keras import layers

from utils import data, runtime, training


def lenet_sized(input_shape=(28, 28, 1), num_classes=10) -> keras.Model:
    """A LeNet-sized CNN (2 conv + pool stages, 2 dense layers): ``(B, 28, 28, 1) -> (B, 10)``."""
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 5, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation="relu", name="fc1")(x)
    x = layers.Dense(84, activation="relu", name="fc2")(x)
    # float32 output keeps the softmax stable under mixed precision.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32",
                           name="predictions")(x)
    return keras.Model(inputs, outputs, name="lenet_sized")


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds; in each, each side trains 2 epochs and 1 is timed")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=None, help="default: all 60,000")
    parser.add_argument("--data-on-device", action="store_true",
                        help="kit side keeps the images in accelerator memory (training.fit)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    rt = runtime.setup(seed=0)
    ds = data.load("fashion_mnist", dtype="uint8", quick_mode=False, train_size=args.train_size)
    steps = len(ds.x_train) // args.batch_size
    images = steps * args.batch_size  # both sides see whole batches only
    x_uint8, labels = ds.x_train[:images], ds.y_train[:images]
    x_float = x_uint8.astype(np.float32) / 255.0

    with rt.scope():
        kit = lenet_sized()
    initial = kit.get_weights()
    # Plain Keras: float32 NumPy arrays straight into model.fit, default compile settings.
    plain = lenet_sized()
    plain.set_weights(initial)
    plain.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

    plain_timer, kit_timer = EpochTimer(), EpochTimer()

    # Each call trains 2 epochs and only the second is timed, so tracing and compilation
    # (which a new call may repeat) are never counted. The sides take turns, call by
    # call, so that a slow stretch of a shared machine hits both alike.
    def plain_round():
        plain.fit(x_float, labels, batch_size=args.batch_size, epochs=2, shuffle=True,
                  callbacks=[plain_timer], verbose=0)

    def kit_round(first):
        training.fit(kit, x_uint8, labels, epochs=2, batch_size=args.batch_size, runtime=rt,
                     compile=first, data_on_device=args.data_on_device,
                     callbacks=[kit_timer], verbose=0)

    for round_index in range(args.rounds):
        plain_round()
        kit_round(first=round_index == 0)
    plain_rates = images / np.array(plain_timer.seconds[1::2])
    kit_rates = images / np.array(kit_timer.seconds[1::2])
    plain_ips, kit_ips = float(np.median(plain_rates)), float(np.median(kit_rates))
    per_round = kit_rates / plain_rates

    device = ", ".join(rt.gpus) if rt.gpus else "CPU only"
    where = "in device memory" if args.data_on_device else "from the host pipeline"
    print(f"\nDevice: {device}; {images:,} images per epoch, batch {args.batch_size}, "
          f"{args.rounds} rounds, one timed epoch per side each; kit data {where}; medians:")
    print(f"plain model.fit on NumPy arrays: {plain_ips:10,.0f} images/s")
    print(f"kit training.fit:                {kit_ips:10,.0f} images/s")
    print(f"ratio (kit / plain):             {kit_ips / plain_ips:10.2f}")
    print(f"per-round ratios:                {' '.join(f'{r:.2f}' for r in per_round)}")
    return {"plain": plain_ips, "kit": kit_ips, "ratio": kit_ips / plain_ips}


if __name__ == "__main__":
    main()

"""Images per second: the kit's training path against plain ``model.fit`` on NumPy arrays.

Run:  python -m benchmarks.train_speed [--epochs 3] [--batch-size 128] [--train-size N]

Both sides train the same LeNet-sized network, from the same initial weights,
on Fashion-MNIST, in one process. The first epoch of each side is a warm-up
(graph tracing, XLA compilation) and is not timed; the figure is the mean
throughput of the remaining epochs. The kit side is whatever
``runtime.setup()`` picks on this machine (on a GPU: mixed precision, XLA,
uint8 batches moved to the device and augmentation-free pipelines).
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

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def images_per_second(timer: EpochTimer, images_per_epoch: int) -> float:
    timed = timer.seconds[1:]  # epoch 1 includes tracing and compilation
    return images_per_epoch / float(np.mean(timed))


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per side, first untimed")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=None, help="default: all 60,000")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first one is not timed)")

    rt = runtime.setup(seed=0)
    ds = data.load("fashion_mnist", dtype="uint8", quick_mode=False, train_size=args.train_size)
    steps = len(ds.x_train) // args.batch_size
    images = steps * args.batch_size  # both sides see whole batches only

    with rt.scope():
        initial = lenet_sized().get_weights()

    # Plain Keras: float32 NumPy arrays straight into model.fit, default compile settings.
    keras.mixed_precision.set_global_policy("float32")
    plain = lenet_sized()
    plain.set_weights(initial)
    plain.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x_float = ds.x_train[: images].astype(np.float32) / 255.0
    plain_timer = EpochTimer()
    plain.fit(x_float, ds.y_train[: images], batch_size=args.batch_size, epochs=args.epochs,
              shuffle=True, callbacks=[plain_timer], verbose=2)

    # The kit: runtime-chosen precision/XLA/strategy, uint8 tf.data pipeline, one shared path.
    rt = runtime.setup(seed=0, verbose=False)

    def build():
        model = lenet_sized()
        model.set_weights(initial)
        return model

    kit_timer = EpochTimer()
    training.fit(build, ds.x_train[: images], ds.y_train[: images], epochs=args.epochs,
                 batch_size=args.batch_size, runtime=rt, callbacks=[kit_timer], verbose=2)

    plain_ips = images_per_second(plain_timer, images)
    kit_ips = images_per_second(kit_timer, images)
    device = ", ".join(rt.gpus) if rt.gpus else "CPU only"
    print(f"\nDevice: {device}; {images:,} images per epoch, batch {args.batch_size}, "
          f"{args.epochs - 1} timed epoch(s) per side")
    print(f"plain model.fit on NumPy arrays: {plain_ips:10,.0f} images/s")
    print(f"kit training.fit:                {kit_ips:10,.0f} images/s")
    print(f"ratio (kit / plain):             {kit_ips / plain_ips:10.2f}")
    return {"plain": plain_ips, "kit": kit_ips, "ratio": kit_ips / plain_ips}


if __name__ == "__main__":
    main()

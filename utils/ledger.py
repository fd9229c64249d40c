"""The compute ledger: what every :func:`utils.training.fit` call of this process trained.

Each entry holds the model's name, its multiply-adds per image, the training images, the
epochs, the training FLOP (``FLOP_PER_MULT_ADD * mult_adds * images * epochs``) and the
seconds. :func:`compute_report` prints the total a notebook trained at its size, and
``benchmarks.compute`` reads the ledger of a dry run.
"""

from __future__ import annotations

from utils import archtable

# Training FLOP per multiply-add and image: 2 for the forward pass (a multiply and an add),
# about twice that for the backward pass (gradients for the inputs and for the weights).
FLOP_PER_MULT_ADD = 6
REPORT_MODELS = 4  # models named in compute_report's line, the costliest first
_LEDGER: list[dict] = []


def record(history, model, images: int, epochs: int, seconds: float):
    """Set ``history.seconds`` and ``history.images`` and append the call's ledger entry.

    Called by :func:`utils.training.fit` once per call; returns ``history``."""
    try:
        mult_adds = archtable.model_mult_adds(model)
    except Exception as error:  # an unknown layer type must not stop the training itself
        print(f"Compute ledger: multiply-adds of {model.name} not counted ({error})")
        mult_adds = None
    flop = None if mult_adds is None else FLOP_PER_MULT_ADD * mult_adds * images * epochs
    _LEDGER.append({"model": model.name, "mult_adds": mult_adds, "images": images,
                    "epochs": epochs, "flop": flop, "seconds": seconds})
    history.seconds, history.images = seconds, images * epochs
    return history


def ledger() -> list[dict]:
    """A copy of the ledger: one dict per :func:`fit` call since the last reset, in order.

    Keys: ``model`` (name), ``mult_adds`` (per image; None if a layer could not be counted),
    ``images`` (``len(x)``), ``epochs``, ``flop`` (``6 * mult_adds * images * epochs``, or
    None) and ``seconds`` (the training's wall-clock time; 0 in a dry run).
    """
    return [dict(entry) for entry in _LEDGER]


def reset_ledger() -> None:
    """Forget every entry: the next :func:`ledger` is empty."""
    _LEDGER.clear()


def compute_report() -> str:
    """Print and return one line on the training compute of this process so far.

    ``Compute at this size: 3 models trained, 0.0021 PFLOP (lenet5 0.0019, ...)``: the
    number of ``fit`` calls, their total in PFLOP (10**15 floating-point operations) and
    the costliest models (calls of the same name summed).
    """
    entries, totals = ledger(), {}
    for entry in entries:
        if entry["flop"] is not None:
            totals[entry["model"]] = totals.get(entry["model"], 0) + entry["flop"] / 1e15
    costliest = sorted(totals.items(), key=lambda item: -item[1])
    named = [f"{name} {pflop:.2g}" for name, pflop in costliest[:REPORT_MODELS]]
    named += [f"{len(costliest) - REPORT_MODELS} more"] if len(costliest) > REPORT_MODELS else []
    unknown = sorted({entry["model"] for entry in entries if entry["flop"] is None})
    if not entries:
        line = "Compute at this size: no model trained."
    else:
        line = (f"Compute at this size: {len(entries)} model{'s' if len(entries) != 1 else ''} "
                f"trained, {sum(totals.values()):.2g} PFLOP")
        line += f" ({', '.join(named)})" if named else ""
        line += f"; not counted (a layer of unknown cost): {', '.join(unknown)}" if unknown else ""
    print(line)
    return line

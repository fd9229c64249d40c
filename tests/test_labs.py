"""Every lab in solutions/: full marks for the solution, zero for the generated lab, and
partial credit, on exactly the expected exercises, for deliberately buggy submissions.

To add a lab, add at least two bugs for it to BUGS: (name, text in the solution, its
replacement, the exercises that must fail).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from utils.labs import build, grade, sandbox
from utils.labs import format as labformat

BUGS = {
    "lab0_perceptron": [
        (
            "perceptron_update_sign",
            "w = w + learning_rate * error * x",
            "w = w - learning_rate * error * x",
            {"ex2"},
        ),
        (
            "softmax_without_max_shift",
            "shifted = logits - logits.max(axis=1, keepdims=True)",
            "shifted = logits",
            {"ex3"},
        ),
        (
            "one_sided_scale",
            "grad[index] = (above - below) / (2 * eps)",
            "grad[index] = (above - below) / eps",
            {"ex4"},
        ),
        (
            "logits_changed_in_place",
            "shifted = logits - logits.max(axis=1, keepdims=True)",
            "logits -= logits.max(axis=1, keepdims=True)\n    shifted = logits",
            {"ex3"},
        ),
        (
            "bias_update_sign",
            "b -= learning_rate * grad.sum(axis=0)",
            "b += learning_rate * grad.sum(axis=0)",
            {"ex5"},
        ),
        (
            "same_order_every_epoch",
            "order = generator.permutation(len(X))",
            "order = np.random.default_rng(seed).permutation(len(X))",
            {"ex5"},
        ),
    ],
    "lab1_lenet": [
        (
            "output_size_true_division",
            "return (size + 2 * padding - kernel) // stride + 1",
            "return (size + 2 * padding - kernel) / stride + 1",
            {"ex1"},
        ),
        (
            "same_padding_ignores_stride",
            "return -(-size // stride)",
            "return size",
            {"ex1"},
        ),
        (
            "c3_kernel_3x3",
            'x = layers.Conv2D(16, 5, activation=activation, name="c3")(x)',
            'x = layers.Conv2D(16, 3, activation=activation, name="c3")(x)',
            {"ex2"},
        ),
        (
            "output_not_float32",  # only the hidden mixed-precision test sees it
            'activation="softmax", dtype="float32", name="output")(x)',
            'activation="softmax", name="output")(x)',
            {"ex2"},
        ),
        (
            "num_classes_ignored",  # only the hidden test with 5 classes sees it
            'outputs = layers.Dense(num_classes, activation="softmax"',
            'outputs = layers.Dense(10, activation="softmax"',
            {"ex2"},
        ),
        (
            "c3_table_wraps_backwards",
            "table[[(j + offset) % 6 for offset in range(3)], j] = True",
            "table[[(j - offset) % 6 for offset in range(3)], j] = True",
            {"ex3"},
        ),
        (
            "least_confident_mistakes_first",
            'order = np.argsort(-confidence[wrong], kind="stable")',
            'order = np.argsort(confidence[wrong], kind="stable")',
            {"ex4"},
        ),
        (
            "right_answers_counted_as_mistakes",
            "wrong = np.flatnonzero(predicted != labels)",
            "wrong = np.arange(len(labels))",
            {"ex4"},
        ),
    ],  # BUGS lab1_lenet
    "lab2_alexnet": [
        (
            "conv_params_without_bias",
            "params = filters * (kernel_size * kernel_size * channels // groups + 1)",
            "params = filters * kernel_size * kernel_size * channels // groups",
            {"ex1"},
        ),
        (
            "lrn_alpha_divided_by_n",  # Caffe's and PyTorch's convention, not the paper's
            "return inputs / ops.power(self.k + self.alpha * window_sum, self.beta)",
            "return inputs / ops.power(self.k + self.alpha / self.n * window_sum, self.beta)",
            {"ex2"},
        ),
        (
            "alexnet_conv2_without_groups",
            'x = layers.Conv2D(256, 5, padding="same", groups=2, '
            'activation="relu", name="conv2")(x)',
            'x = layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)',
            {"ex3"},
        ),
        (
            "non_overlapping_pooling",  # same shapes and counts: only a hidden test sees it
            'x = layers.MaxPooling2D(pool_size=3, strides=2, name="pool1")(x)',
            'x = layers.MaxPooling2D(pool_size=2, strides=2, name="pool1")(x)',
            {"ex3"},
        ),
        (
            "colour_shift_with_square_root_eigenvalues",  # only a hidden test sees it
            "shifts = ops.matmul(alphas * self.eigenvalues, ops.transpose(self.eigenvectors))",
            "shifts = ops.matmul(alphas * np.sqrt(self.eigenvalues), "
            "ops.transpose(self.eigenvectors))",
            {"ex4"},
        ),
        (
            "hidden_layers_always_relu",  # only a hidden test sees it
            "x = layers.Dense(round(units * width), activation=activation,",
            'x = layers.Dense(round(units * width), activation="relu",',
            {"ex5"},
        ),
        (
            "small_output_in_half_precision",  # seen only when built under mixed_float16
            'dtype="float32", name="fc8")(x)\n    return keras.Model(inputs, outputs, name=name)',
            'name="fc8")(x)\n    return keras.Model(inputs, outputs, name=name)',
            {"ex5"},
        ),
        (
            "moving_statistics_never_updated",  # only the training test sees it: the outputs of
            # a fresh model and its parameters are right, but inference uses the initial
            # moving mean 0 and variance 1 for ever
            'layers.BatchNormalization(momentum=0.9, name=f"{conv_name}_bn")',
            'layers.BatchNormalization(momentum=1.0, name=f"{conv_name}_bn")',
            {"ex5"},
        ),
    ],  # BUGS lab2_alexnet
    "lab3_vgg": [  # BUGS lab3_vgg
        (
            "conv1_read_as_3x3",
            'kernel = int(kind.removeprefix("conv"))',
            "kernel = 3",
            {"ex1"},
        ),
        (
            "valid_padding",
            'x = layers.Conv2D(filters, kernel, padding="same", use_bias=not batch_norm,',
            'x = layers.Conv2D(filters, kernel, padding="valid", use_bias=not batch_norm,',
            {"ex1", "ex5"},
        ),
        (
            "param_count_without_biases",
            "total += kernel * kernel * channels * filters + filters",
            "total += kernel * kernel * channels * filters",
            {"ex2"},
        ),
        (
            "stride_applied_too_early",
            "        field += (kernel - 1) * jump\n        jump *= stride",
            "        jump *= stride\n        field += (kernel - 1) * jump",
            {"ex3"},
        ),
        (
            "gradient_of_the_whole_output",
            "unit = output[0, output.shape[1] // 2, output.shape[2] // 2, 0]",
            "unit = tf.reduce_sum(output)",
            {"ex4"},
        ),
        (
            "rows_and_columns_swapped",
            "return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)",
            "return int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)",
            {"ex4"},
        ),
        (
            "softmax_output_not_float32",
            'outputs = layers.Dense(num_classes, activation="softmax", name="predictions", '
            'dtype="float32")(x)',
            'outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)',
            {"ex5"},
        ),
        (
            "no_augmentation",
            "x = pipeline.augmentation(input_shape=input_shape)(inputs) if augment else inputs",
            "x = inputs",
            {"ex5"},
        ),
    ],
    "lab4_inception": [  # BUGS lab4_inception
        (
            "branches_concatenated_out_of_order",
            "([branch1, branch3, branch5, pooled])",
            "([pooled, branch1, branch3, branch5])",
            {"ex1"},
        ),
        (
            "batch_norm_not_passed_to_the_1x1_branch",
            'branch1 = conv_unit(x, f1, 1, f"{name}_1x1", batch_norm=batch_norm)',
            'branch1 = conv_unit(x, f1, 1, f"{name}_1x1")',
            {"ex1", "ex5"},
        ),
        (
            "cost_without_biases",
            "params = sum(k * k * c_in * c_out + c_out for k, c_in, c_out in convolutions)",
            "params = sum(k * k * c_in * c_out for k, c_in, c_out in convolutions)",
            {"ex2"},
        ),
        (
            "auxiliary_max_pooling",
            'x = layers.AveragePooling2D(pool_size=5, strides=3, name=f"{name}_pool")(x)',
            'x = layers.MaxPooling2D(pool_size=5, strides=3, name=f"{name}_pool")(x)',
            {"ex3"},
        ),
        (
            "first_auxiliary_head_after_4c",
            'if aux and module in ("4a", "4d"):',
            'if aux and module in ("4c", "4d"):',
            {"ex4"},
        ),
        (
            "pooling_before_the_first_stage_too",
            "if index:\n            x = layers.MaxPooling2D(",
            "if True:\n            x = layers.MaxPooling2D(",
            {"ex5"},
        ),
    ],
    "lab5_resnet": [
        (
            "relu_before_the_addition",
            'y = conv_bn(y, filters, 3, name=layer_name(name, "2"))\n    if shortcut is not None:',
            'y = conv_bn(y, filters, 3, name=layer_name(name, "2"))\n'
            '    y = layers.Activation("relu")(y)\n    if shortcut is not None:',
            {"ex1"},
        ),
        (
            "bottleneck_without_4x_expansion",
            "4 * filters",
            "2 * filters",
            {"ex2", "ex3"},
        ),
        (
            "first_stage_also_strides",
            "stride = 2 if i == 0 and stage > 0 else 1",
            "stride = 2 if i == 0 else 1",
            {"ex3"},
        ),
        (
            "projection_shortcuts_in_the_cifar_nets",
            'shortcut="zero_pad" if residual else None',
            'shortcut="projection" if residual else None',
            {"ex4"},
        ),
        (
            "gradients_in_inference_mode",
            "probabilities = model(x, training=True)",
            "probabilities = model(x, training=False)",
            {"ex5"},
        ),
        (
            "squared_norm",
            "np.linalg.norm(np.asarray(gradient))",
            "np.sum(np.square(gradient))",
            {"ex5"},
        ),
    ],  # BUGS lab5_resnet
    "lab6_looking_inside": [  # BUGS lab6_looking_inside
        (
            "padding_counted_after_the_stride",  # the same answer unless a padded layer strides
            "        offset -= padding * jump\n        jump *= stride",
            "        jump *= stride\n        offset -= padding * jump",
            {"ex1"},
        ),
        (
            "field_grows_without_the_jump",
            "size += (kernel - 1) * jump",
            "size += kernel - 1",
            {"ex1"},
        ),
        (
            "images_ranked_by_their_mean_response",
            "response = flat.max(axis=1)",
            "response = flat.mean(axis=1)",
            {"ex2"},
        ),
        (
            "strongest_position_read_column_major",
            "np.unravel_index(np.argmax(flat[index]), maps.shape[1:])",
            'np.unravel_index(np.argmax(flat[index]), maps.shape[1:], order="F")',
            {"ex2"},
        ),
        (
            "occluded_with_zeros_instead_of_fill",
            "j * stride : j * stride + size] = fill",
            "j * stride : j * stride + size] = 0.0",
            {"ex3"},
        ),
        (
            "fgsm_descends_the_loss",
            "np.clip(x.numpy() + epsilon * np.sign(gradient), 0.0, 1.0)",
            "np.clip(x.numpy() - epsilon * np.sign(gradient), 0.0, 1.0)",
            {"ex4"},
        ),
        (
            "images_that_stopped_keep_moving",
            "step = tf.where(running[:, None, None, None], step_size * tf.sign(gradient), 0.0)",
            "step = step_size * tf.sign(gradient)",
            {"ex5"},
        ),
        (
            "no_stop_at_the_confidence",
            "running = (chosen.numpy() < confidence) & (steps < max_steps)",
            "running = steps < max_steps",
            {"ex5"},
        ),
    ],
    "lab7_features": [  # BUGS lab7_features
        (
            "lp_pooling_without_the_root",
            "return scale * ops.power(ops.sum(ops.power(ratios, self.p), axis=3), 1.0 / self.p)",
            "return scale * ops.sum(ops.power(ratios, self.p), axis=3)",
            {"ex1"},
        ),
        (
            "lp_pooling_overflows_at_large_p",  # only the hidden large-p test sees it
            "scale = ops.where(largest > 0, largest, ops.ones_like(largest))",
            "scale = ops.ones_like(largest)",
            {"ex1"},
        ),
        (
            "lp_pooling_ignores_the_stride",
            'strides=self.strides, padding="valid"',
            'strides=self.pool_size, padding="valid"',
            {"ex1"},
        ),
        (
            "divisive_normalisation_without_the_threshold",
            "return inputs / ops.maximum(ops.sqrt(energy), self.threshold)",
            "return inputs / ops.sqrt(energy)",
            {"ex2"},
        ),
        (
            "divisive_normalisation_per_channel",  # right on one channel, fails on several
            "energy = ops.sum(ops.square(inputs), axis=-1, keepdims=True)",
            "energy = ops.square(inputs)",
            {"ex2"},
        ),
        (
            "lcn_deviation_of_the_raw_input",
            "ops.square(centred)",
            "ops.square(inputs)",
            {"ex3"},
        ),
        (
            "lcn_without_the_floor",
            "ops.maximum(ops.maximum(deviation, floor), self.epsilon)",
            "ops.maximum(deviation, self.epsilon)",
            {"ex3"},
        ),
        (
            "search_scored_on_the_fitting_data",
            "x[fitting], y[fitting], x[validation], y[validation]",
            "x[fitting], y[fitting], x[fitting], y[fitting]",
            {"ex4"},
        ),
        (
            "search_splits_anew_every_trial",
            "        config = sample_config(generator)\n",
            "        order = generator.permutation(len(x))\n"
            "        validation, fitting = order[:count], order[count:]\n"
            "        config = sample_config(generator)\n",
            {"ex4"},
        ),
        (
            "search_keeps_the_worst",
            "best = int(np.argmax(scores))",
            "best = int(np.argmin(scores))",
            {"ex4"},
        ),
        (
            "features_max_twice",
            "maps = np.concatenate([maps.mean(axis=(1, 2)), maps.max(axis=(1, 2))], axis=1)",
            "maps = np.concatenate([maps.max(axis=(1, 2)), maps.max(axis=(1, 2))], axis=1)",
            {"ex5"},
        ),
        (
            "features_left_in_float16",  # only the hidden mixed-precision test sees it
            "maps = np.asarray(maps, dtype=np.float32)",
            "maps = np.asarray(maps)",
            {"ex5"},
        ),
        (
            "features_of_the_layers_mixed_up",
            "zip(layer_names, outputs, strict=True)",
            "zip(reversed(layer_names), outputs, strict=True)",
            {"ex5"},
        ),
        (
            "batch_normalisation_left_to_train",
            "                layer.trainable = False\n",
            "                pass\n",
            {"ex6"},
        ),
        (
            "every_variable_slowed",  # batch normalisation's statistics too
            "slow = [variable.path for variable in trunk.trainable_variables]",
            "slow = [variable.path for variable in trunk.variables]",
            {"ex6"},
        ),
        (
            "scratch_slowed_too",
            "    slow = []\n    if transfer:\n",
            "    slow = [variable.path for variable in trunk.trainable_variables]\n"
            "    if transfer:\n",
            {"ex6"},
        ),
    ],
}
LABS = [path.stem for path in labformat.solution_paths()]


def _buggy(lab, old, new):
    nb = build.completed_version(lab)
    cells = [cell for cell in nb.cells if old in cell.source]
    assert len(cells) == 1, f"{old!r} should be in exactly one cell of {lab.id}"
    cells[0].source = cells[0].source.replace(old, new)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grades one lab's submissions in one batch, the first time that lab is asked for
    (so `pytest -k lab1_lenet` grades only Lab 1): graded(lab_id)[name] is a report."""
    done = {}

    def reports(lab_id):
        if lab_id not in done:
            folder = tmp_path_factory.mktemp(f"{lab_id}_submissions")
            out = tmp_path_factory.mktemp(f"{lab_id}_grades")
            lab = labformat.find(lab_id)
            nbformat.write(lab.notebook, str(folder / "solution.ipynb"))
            nbformat.write(build.student_version(lab), str(folder / "generated.ipynb"))
            for name, old, new, _ in BUGS.get(lab_id, []):
                nbformat.write(_buggy(lab, old, new), str(folder / f"{name}.ipynb"))
            args = [str(folder), "--out", str(out), "--quiet", "--jobs", "2"]
            if sandbox.bwrap_problem():  # these tests are about the grades, not the sandbox,
                args.append("--no-sandbox")  # whose own tests skip where bwrap cannot run
            assert grade.main(args) == grade.EXIT_GRADED
            summary = json.loads((out / "summary.json").read_text())
            done[lab_id] = {Path(r["file"]).stem: r for r in summary}
        return done[lab_id]

    return reports


def test_there_is_at_least_one_lab():
    assert "lab0_perceptron" in LABS


@pytest.mark.parametrize("lab_id", LABS)
def test_every_lab_has_at_least_two_buggy_submissions(lab_id):
    assert len(BUGS.get(lab_id, [])) >= 2, f"add buggy submissions for {lab_id} to BUGS"


@pytest.mark.parametrize("lab_id", LABS)
def test_the_solution_earns_full_marks(graded, lab_id):
    report = graded(lab_id)["solution"]
    assert report["errors"] == [] and report["total"] == report["max_total"] > 0, report
    assert report["warnings"] == [], report["warnings"]


@pytest.mark.parametrize("lab_id", LABS)
def test_the_generated_lab_earns_zero_without_errors(graded, lab_id):
    report = graded(lab_id)["generated"]
    assert report["errors"] == [] and report["total"] == 0, report
    statuses = {t["status"] for ex in report["exercises"] for t in ex["tests"]}
    assert statuses == {"not attempted"}, statuses


@pytest.mark.parametrize(
    "lab_id, name, failing",
    [(lab_id, name, failing) for lab_id, bugs in BUGS.items() for name, _, _, failing in bugs],
)
def test_a_buggy_submission_fails_exactly_the_expected_exercises(graded, lab_id, name, failing):
    report = graded(lab_id)[name]
    found = {ex["id"] for ex in report["exercises"] if ex["points"] < ex["max_points"]}
    assert found == failing, report
    assert 0 < report["total"] < report["max_total"]

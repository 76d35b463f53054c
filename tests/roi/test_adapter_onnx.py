"""The onnx adapter on tiny ONNX graphs built here with the `onnx` helper API, run through onnxruntime."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from medtrinity.errors import UserError  # noqa: E402
from medtrinity.roi.experts import get_expert  # noqa: E402
from fixtures.build import build_command  # noqa: E402


def conv_model(path, weights, bias, activation=None, size=None):
    """A 1x1 Conv (out x in channels) with an optional Sigmoid, saved to `path`."""
    weights = np.asarray(weights, np.float32)
    out_ch, in_ch = weights.shape
    dims = [1, in_ch, size[0], size[1]] if size else [1, in_ch, "height", "width"]
    out_dims = [1, out_ch, size[0], size[1]] if size else [1, out_ch, "height", "width"]
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["conv"], kernel_shape=[1, 1])]
    if activation:
        nodes.append(helper.make_node(activation, ["conv"], ["scores"]))
    else:
        nodes.append(helper.make_node("Identity", ["conv"], ["scores"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, out_dims)],
        initializer=[
            numpy_helper.from_array(weights.reshape(out_ch, in_ch, 1, 1), "w"),
            numpy_helper.from_array(np.asarray(bias, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def squares():
    """Gray 0.2 field with a 0.6 square (rows 10-29) and a 0.9 square (rows 40-59), in cols 20-39."""
    image = np.full((72, 64), 51, np.uint8)
    image[10:30, 20:40] = 153
    image[40:60, 20:40] = 230
    return image


def test_sigmoid_mask_is_the_pixels_brighter_than_half(tmp_path):
    # sigmoid(10 * mean(rgb) - 5) > 0.5  <=>  brightness > 0.5
    path = conv_model(tmp_path / "bright.onnx", [[10 / 3, 10 / 3, 10 / 3]], [-5.0], "Sigmoid")
    expert = get_expert("onnx", model=str(path), output="probabilities", class_names=["bright"], version="t1")
    (region,) = expert.locate(squares(), "Other", None, [])
    truth = squares() > 128
    assert np.array_equal(region.mask, truth)
    assert region.label == "bright" and region.source == "expert:onnx@t1"
    assert region.bbox == (20.0, 10.0, 40.0, 60.0)


def test_normalisation_moves_the_threshold(tmp_path):
    # with mean 0.25: sigmoid(10 * (x - 0.25) - 5) > 0.5 <=> x > 0.75: only the 0.9 square
    path = conv_model(tmp_path / "bright.onnx", [[10 / 3, 10 / 3, 10 / 3]], [-5.0], "Sigmoid")
    expert = get_expert("onnx", model=str(path), output="probabilities", mean=0.25)
    (region,) = expert.locate(squares(), "Other", None, ["lesion"])
    assert np.array_equal(region.mask, squares() > 200)
    assert region.label == "lesion"  # a one-channel model's object takes the record's label


def test_logits_per_class_with_softmax_and_a_background_class(tmp_path):
    # class 0 (background) logit 0; class 1 logit 10*x - 5: wins where x > 0.5; one-channel gray input
    path = conv_model(tmp_path / "two.onnx", [[0.0], [10.0]], [0.0, -5.0])
    expert = get_expert("onnx", model=str(path), channels="gray", class_names=["background", "lesion"])
    (region,) = expert.locate(squares(), "Other", None, [])
    assert region.label == "lesion" and np.array_equal(region.mask, squares() > 128)
    assert region.source.startswith("expert:onnx@two-")  # unnamed version: file stem + hash
    assert 0.5 < region.score <= 1.0


def test_channel_order_bgr_and_a_fixed_input_size(tmp_path):
    image = np.zeros((64, 96, 3), np.uint8)
    image[8:24, 8:40] = (255, 0, 0)  # red
    image[32:56, 48:88] = (0, 0, 255)  # blue
    # the model looks at its channel 0 only; with bgr that is blue. Fixed 32x48 input: resized both ways.
    path = conv_model(tmp_path / "c0.onnx", [[10.0, 0.0, 0.0]], [-5.0], "Sigmoid", size=(32, 48))
    (region,) = get_expert("onnx", model=str(path), channels="bgr", output="probabilities").locate(
        image, "Other", None, []
    )
    blue = np.zeros((64, 96), bool)
    blue[32:56, 48:88] = True
    assert 2 * (region.mask & blue).sum() / (region.mask.sum() + blue.sum()) > 0.95
    assert not region.mask[8:24, 8:40].any()


def test_missing_model_file_is_a_user_error_and_nothing_is_fetched(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        get_expert("onnx", model=str(tmp_path / "absent.onnx"))
    path = conv_model(tmp_path / "bright.onnx", [[1.0, 1.0, 1.0]], [0.0])
    with pytest.raises(UserError, match="asked for input 'pixels'"):
        get_expert("onnx", model=str(path), input_name="pixels")


def test_a_build_gives_the_expert_its_options_from_the_command_line(tmp_path):
    """`--expert onnx --expert-option …`: the weights load before the folder is made, and every record's
    expert region comes from the model with the options given (gray input, probabilities, the class name)."""
    import subprocess

    import pyarrow.parquet as pq
    from PIL import Image

    path = conv_model(tmp_path / "bright.onnx", [[1.0]], [0.0])  # probability = pixel / 255
    (tmp_path / "data" / "TISSUE").mkdir(parents=True)
    Image.fromarray(squares()).save(tmp_path / "data" / "TISSUE" / "a.png")
    recipe = tmp_path / "tiles.yaml"
    recipe.write_text("name: tiles\nlayout: class-folder\nmodality: Microscopy\noptions: {images: '*/*.png'}\n")
    result = subprocess.run(
        build_command(
            f"{recipe}:{tmp_path / 'data'}",
            tmp_path / "out",
            "--expert",
            "onnx",
            "--expert-option",
            f"checkpoint={path}",
            "--expert-option",
            "channels=gray",
            "--expert-option",
            "output=probabilities",
            "--expert-option",
            "class_names=[bright]",
            "--expert-option",
            "version=t2",
        ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    (row,) = pq.read_table(tmp_path / "out" / "data" / "part-00000.parquet").to_pylist()
    assert [(roi["label"], roi["source"], roi["bbox"]) for roi in row["rois"]] == [
        ("bright", "expert:onnx@t2", [20, 10, 40, 30]),
        ("bright", "expert:onnx@t2", [20, 40, 40, 60]),
    ]

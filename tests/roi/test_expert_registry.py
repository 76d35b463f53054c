"""The expert registry, the per-modality default choice and the contract every built-in expert keeps."""

import subprocess
import sys

import numpy as np
import pytest

from medtrinity import records
from medtrinity.errors import StageError, UserError
from medtrinity.roi.experts import Expert, default_expert_for, expert_names, get_expert, register_expert

BUILTINS = [
    "cells",
    "chest-xray-lungs",
    "ct-body",
    "focal-region",
    "foreground",
    "fundus-disc",
    "mri-head",
    "skin-lesion",
    "tissue",
]
ADAPTERS = ["cellpose", "onnx", "sam"]  # need the user's local weights: listed, not run on the contract image


def test_builtin_names_are_listed():
    assert set(BUILTINS) | set(ADAPTERS) <= set(expert_names())
    assert expert_names() == sorted(expert_names())


def test_unknown_expert_is_a_user_error_listing_known_names():
    with pytest.raises(UserError) as error:
        get_expert("lung-magic")
    assert "'lung-magic'" in str(error.value)
    for name in BUILTINS:
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("modality", "organ", "expected"),
    [
        ("X-Ray", "chest", "chest-xray-lungs"),
        ("X-Ray", "Lung", "chest-xray-lungs"),
        ("X-Ray", "hand", "foreground"),
        ("X-Ray", None, "foreground"),
        ("Dermoscopy", None, "skin-lesion"),
        ("Fundus", "eye", "fundus-disc"),
        ("Histopathology", "colon", "tissue"),
        ("Microscopy", None, "tissue"),
        ("CT", "abdomen", "ct-body"),
        ("MRI", "brain", "mri-head"),
        ("MRI", "Head", "mri-head"),
        ("MRI", "knee", "foreground"),
        ("Ultrasound", "breast", "focal-region"),
        ("Endoscopy", "colon", "focal-region"),
        ("OCT", None, "foreground"),
        ("PET", None, "foreground"),
        ("Other", None, "foreground"),
    ],
)
def test_default_expert_per_modality(modality, organ, expected):
    assert default_expert_for(modality, organ) == expected


def test_overrides_win_and_organ_specific_keys_win_over_modality_keys():
    overrides = {"mri": "foreground", "X-Ray/hand": "chest-xray-lungs"}
    assert default_expert_for("MRI", "brain", overrides) == "foreground"
    assert default_expert_for("X-Ray", "hand", overrides) == "chest-xray-lungs"
    assert default_expert_for("X-Ray", "chest", overrides) == "chest-xray-lungs"
    assert default_expert_for("CT", None, overrides) == "ct-body"


def test_override_naming_an_unknown_expert_is_a_user_error():
    with pytest.raises(UserError, match="'sam-large'"):
        default_expert_for("CT", None, {"CT": "sam-large"})


def test_register_expert_adds_a_new_expert_and_refuses_a_taken_name():
    @register_expert
    class Everything:
        name = "test-everything"
        version = "0.1"

        def locate(self, pixels, modality, organ, labels):
            mask = np.ones(pixels.shape[:2], dtype=bool)
            return [records.Region(label="everything", source=f"expert:{self.name}@{self.version}", mask=mask)]

    assert "test-everything" in expert_names()
    assert get_expert("test-everything").locate(np.zeros((4, 4), np.uint8), "CT", None, [])[0].label == "everything"
    assert default_expert_for("CT", None, {"CT": "test-everything"}) == "test-everything"

    class Impostor:
        name = "foreground"
        version = "9"

    get_expert("foreground")  # make sure the built-in is registered first
    with pytest.raises(ValueError, match="already taken"):
        register_expert(Impostor)
    with pytest.raises(TypeError):
        register_expert(type("Nameless", (), {}))


def blob_image(rgb: bool) -> np.ndarray:
    rows, cols = np.mgrid[:96, :128]
    image = np.where((rows - 48) ** 2 / 30**2 + (cols - 64) ** 2 / 40**2 <= 1, 180, 30).astype(np.uint8)
    return np.stack([image, (image * 0.8).astype(np.uint8), image], axis=2) if rgb else image


# A bright ellipse on a dark field is no chest film (no two lung fields) and no skin photograph, so those two
# experts find nothing on it; their contract is checked on their own images (test_expert_chest_xray.py,
# test_expert_skin_lesion.py).
REGIONS_ON_BLOB = {name: 0 if name in ("chest-xray-lungs", "skin-lesion") else 1 for name in BUILTINS}


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("rgb", [False, True])
def test_every_builtin_keeps_the_contract(name, rgb):
    expert = get_expert(name)
    assert isinstance(expert, Expert)
    image = blob_image(rgb)
    regions = expert.locate(image, "Other", None, ["finding"])
    assert len(regions) == REGIONS_ON_BLOB[name]
    for region in regions:
        assert region.source == f"expert:{name}@{expert.version}"
        assert region.mask.dtype == bool and region.mask.shape == (96, 128) and region.mask.any()
        assert 0.0 <= region.score <= 1.0
        assert region.label
        x0, y0, x1, y1 = region.bbox
        rows, cols = np.nonzero(region.mask)
        assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


@pytest.mark.parametrize("name", BUILTINS)
def test_a_blank_image_gives_no_region(name):
    assert get_expert(name).locate(np.full((64, 64), 120, np.uint8), "Other", None, []) == []


@pytest.mark.parametrize(
    "bad", [np.zeros((32, 32), np.float32), np.zeros((32, 32, 4), np.uint8), np.zeros((4, 4), np.uint8)]
)
def test_a_wrong_image_is_a_stage_error(bad):
    with pytest.raises(StageError, match="foreground needs a uint8"):
        get_expert("foreground").locate(bad, "Other", None, [])


def test_large_images_are_analysed_at_working_scale_and_returned_full_size():
    image = np.kron(blob_image(False), np.ones((12, 12), np.uint8))  # 1152 x 1536
    (region,) = get_expert("foreground").locate(image, "Other", None, [])
    assert region.mask.shape == image.shape
    truth = image > 100
    assert 2 * (region.mask & truth).sum() / (region.mask.sum() + truth.sum()) > 0.97


def test_importing_the_experts_package_stays_light():
    code = "import sys, medtrinity.roi.experts; print(sorted(m for m in ('skimage', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("choice", "modality", "organ", "expected"),
    [
        (None, "CT", None, None),
        ("none", "CT", None, None),
        ("auto", "X-Ray", "chest", "chest-xray-lungs"),
        ("AUTO", "Microscopy", None, "tissue"),
        ("cells", "Microscopy", None, "cells"),
        ({"ct/head": "foreground", "CT": "ct-body", "MRI": "none"}, "CT", "Head", "foreground"),
        ({"ct/head": "foreground", "CT": "ct-body", "MRI": "none"}, "CT", "chest", "ct-body"),
        ({"ct/head": "foreground", "CT": "ct-body", "MRI": "none"}, "MRI", "brain", None),
        ({"ct/head": "foreground", "CT": "ct-body", "MRI": "none"}, "Fundus", None, "fundus-disc"),  # unlisted
        ({"X-Ray": "auto"}, "X-Ray", "chest", "chest-xray-lungs"),
    ],
)
def test_resolve_expert_choice(choice, modality, organ, expected):
    from medtrinity.roi.experts import resolve_expert_choice

    assert resolve_expert_choice(choice, modality, organ) == expected


def test_resolve_expert_choice_refuses_unknown_names_even_inside_a_mapping():
    from medtrinity.roi.experts import resolve_expert_choice

    with pytest.raises(UserError, match="'lung-magic'"):
        resolve_expert_choice("lung-magic", "CT", None)
    with pytest.raises(UserError, match="'lung-magic'"):
        resolve_expert_choice({"CT": "lung-magic"}, "CT", None)
    with pytest.raises(UserError):
        resolve_expert_choice(3, "CT", None)


def test_merge_fill_keeps_ground_truth_and_add_appends_what_is_new():
    from medtrinity.roi.experts import merge_expert_regions

    def box_region(label, box, source):
        return records.Region(label=label, source=source, bbox=box)

    truth = [box_region("lesion", (10, 10, 30, 30), "annotation")]
    same = box_region("lesion", (10, 10, 30, 31), "expert:x@1")  # IoU 400/420: the same lesion again
    other = box_region("lung", (0, 0, 50, 50), "expert:x@1")
    assert merge_expert_regions(truth, [same, other]) == truth
    assert merge_expert_regions([], [same, other]) == [same, other]
    assert merge_expert_regions(truth, [same, other], "add") == truth + [other]
    with pytest.raises(UserError, match="expert_mode"):
        merge_expert_regions(truth, [], "replace")


def test_the_lung_field_expert_is_chosen_for_frontal_chest_views_only():
    from medtrinity.roi.experts.base import resolve_expert_choice

    assert resolve_expert_choice("auto", "X-Ray", "chest", "PA") == "chest-xray-lungs"
    assert resolve_expert_choice("auto", "X-Ray", "chest", None) == "chest-xray-lungs"
    assert resolve_expert_choice("auto", "X-Ray", "chest", "LATERAL") == "foreground"
    assert resolve_expert_choice("auto", "X-Ray", "chest", "LL") == "foreground"


# ---------------------------------------------------------------- declared options and weights
def test_each_expert_declares_its_options_and_a_misspelled_one_is_refused_with_a_suggestion():
    from medtrinity.roi.experts.base import ExpertOptions, check_expert_options, expert_class

    for name in BUILTINS + ADAPTERS:
        options = getattr(expert_class(name), "Options", ExpertOptions)
        assert issubclass(options, ExpertOptions) and options.model_config["extra"] == "forbid", name
    with pytest.raises(UserError) as error:
        check_expert_options("sam", {"chekpoint": "/models/sam.pth"}, "--expert-option")
    assert str(error.value) == "--expert-option: unknown option 'chekpoint' — did you mean 'checkpoint'?"
    with pytest.raises(UserError) as error:
        get_expert("onnx", checkpoint="/m.onnx", channels="rgba")
    assert str(error.value) == "expert onnx: channels must be 'rgb', 'bgr' or 'gray' (got 'rgba')"
    with pytest.raises(UserError) as error:
        get_expert("tissue", size=3)
    assert str(error.value) == "expert tissue: unknown option 'size'; expert tissue takes no options"
    # `model:`, the former name of the weights option, still means the checkpoint
    assert check_expert_options("cellpose", {"model": "/m/cpsam", "diameter": 30}) == {
        "checkpoint": "/m/cpsam",
        "diameter": 30.0,
    }


WEIGHTS_LINE = (
    "expert sam needs its weights: --expert-option checkpoint=PATH, or experts: {sam: {checkpoint: PATH}} "
    "in the build config"
)


def test_an_expert_without_its_weights_is_refused_in_one_line():
    from medtrinity.roi.experts.base import check_build_experts, require_weights
    from medtrinity.sources.base import Recipe

    with pytest.raises(UserError) as error:
        get_expert("sam")
    assert str(error.value) == WEIGHTS_LINE
    with pytest.raises(UserError) as error:
        require_weights("sam", {"prompt": "image"})
    assert str(error.value) == WEIGHTS_LINE
    require_weights("foreground", {})  # a classical expert needs none

    recipe = Recipe(name="r", layout="image-mask", expert="auto")
    assert check_build_experts(None, {}, [recipe]) == []  # auto picks weight-free built-ins
    with pytest.raises(UserError) as error:
        check_build_experts("sam", {}, [recipe])
    assert str(error.value) == WEIGHTS_LINE
    with pytest.raises(UserError) as error:
        check_build_experts({"CT": "onnx"}, {}, [recipe])
    assert str(error.value).startswith("expert onnx needs its weights: --expert-option checkpoint=PATH")
    uses = check_build_experts("sam", {"sam": {"checkpoint": "/m/sam.pth"}}, [recipe, recipe])
    assert uses == [("sam", {"checkpoint": "/m/sam.pth"})]  # loaded once for both sources
    with pytest.raises(UserError) as error:
        check_build_experts(None, {"sma": {"checkpoint": "/m/sam.pth"}}, [recipe])
    assert str(error.value) == "experts: unknown expert 'sma' — did you mean 'sam'?"
    with pytest.raises(UserError) as error:
        check_build_experts(None, {"sam": {"checkpiont": "/m/sam.pth"}}, [recipe])
    assert str(error.value) == "experts.sam: unknown option 'checkpiont' — did you mean 'checkpoint'?"


def test_a_recipes_expert_options_meet_the_build_configs():
    from medtrinity.roi.experts.base import check_build_experts, options_for
    from medtrinity.sources.base import Recipe

    recipe = Recipe(
        name="r", layout="image-mask", expert="sam", expert_options={"checkpoint": "/a.pth", "prompt": "image"}
    )
    assert options_for("sam", recipe.expert_options_by_name(), {"sam": {"checkpoint": "/b.pth"}}) == {
        "checkpoint": "/b.pth",
        "prompt": "image",
    }
    assert check_build_experts(None, {}, [recipe]) == [("sam", {"checkpoint": "/a.pth", "prompt": "image"})]
    # the config's --expert replaces the recipe's choice: the recipe's sam options do not go to onnx
    with pytest.raises(UserError, match="^expert onnx needs its weights"):
        check_build_experts("onnx", {}, [recipe])

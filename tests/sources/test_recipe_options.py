"""Every layout declares its options: a misspelled key in a recipe is refused at once, in this project's
words, with a suggestion — never silently ignored, never in pydantic's wording."""

from __future__ import annotations

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import Recipe, get_layout, layout_names, load_recipe, named_recipes, open_source
from medtrinity.sources.layout_util import LayoutOptions

PYDANTIC_WORDING = (
    "Extra inputs are not permitted",
    "Value error",
    "Input should be",
    "validation error",
    "Field required",
    "type=",
)


def _recipe(tmp_path, body: str, name: str = "my.yaml"):
    path = tmp_path / name
    path.write_text(body)
    return path


def _refusal(path) -> str:
    with pytest.raises(UserError) as err:
        load_recipe(str(path))
    message = str(err.value)
    assert not any(words in message for words in PYDANTIC_WORDING), message
    return message


IMAGE_MASK = "name: mine\nlayout: image-mask\noptions:\n  images: 'images/*.png'\n  masks: 'masks/{stem}.png'\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("  treshold: 200\n", "unknown option 'treshold' — did you mean 'threshold'?"),
        ("  mising_mask: normal\n", "unknown option 'mising_mask' — did you mean 'missing_mask'?"),
        ("  empty_masks: unlocalised\n", "unknown option 'empty_masks' — did you mean 'empty_mask'?"),
    ],
)
def test_a_misspelled_option_is_refused_with_a_suggestion(tmp_path, extra, expected):
    path = _recipe(tmp_path, IMAGE_MASK + extra)
    assert _refusal(path) == f"recipe {path}: {expected}"


def test_a_named_layouts_options_are_checked_too(tmp_path):
    path = _recipe(tmp_path, "name: kv\nlayout: kvasir-seg\noptions: {treshold: 200}\n")
    assert _refusal(path) == f"recipe {path}: unknown option 'treshold' — did you mean 'threshold'?"
    path = _recipe(tmp_path, "name: b\nlayout: busi\noptions:\n  classes: {benign: {lable: cyst}}\n")
    assert _refusal(path) == f"recipe {path}: options.classes.benign: unknown key 'lable' — did you mean 'label'?"
    path = _recipe(tmp_path, "name: s\nlayout: slake\noptions: {split: train}\n")
    assert _refusal(path) == f"recipe {path}: unknown option 'split'; layout slake takes no options"


def test_wrong_values_are_one_line_in_plain_words(tmp_path):
    cases = {
        "  threshold: high\n": "options.threshold must be a whole number (got 'high')",
        "  missing_mask: skip\n": "options.missing_mask must be 'quarantine' or 'normal' (got 'skip')",
        "  empty_mask: drop\n": "options.empty_mask must be 'quarantine' or 'unlocalised' (got 'drop')",
        "  exclude: '*_mask*'\n": "options.exclude must be a list (got '*_mask*')",
    }
    for extra, expected in cases.items():
        assert _refusal(_recipe(tmp_path, IMAGE_MASK + extra)).endswith(f": {expected}")
    bad_pattern = IMAGE_MASK.replace("masks/{stem}.png", "masks/{id}.png")
    assert _refusal(_recipe(tmp_path, bad_pattern)).endswith(
        ": options.masks: 'masks/{id}.png' uses an unknown placeholder 'id'; use {stem}, {name} or {parent}"
    )
    no_masks = "name: mine\nlayout: image-mask\noptions: {images: 'images/*.png'}\n"
    assert _refusal(_recipe(tmp_path, no_masks)).endswith(
        ': options.masks is required (e.g. masks: "masks/{stem}.png")'
    )
    volumes = "name: k\nlayout: kits23\noptions: {per_label: some}\n"
    assert _refusal(_recipe(tmp_path, volumes)).endswith(
        ": options.per_label must be a whole number or 'all' (got 'some')"
    )


def test_recipe_keys_and_layout_names_get_suggestions(tmp_path):
    path = _recipe(tmp_path, "name: b\nlayout: image-mask\nmodalty: CT\n")
    assert _refusal(path) == f"recipe {path}: unknown key 'modalty' — did you mean 'modality'?"
    path = _recipe(tmp_path, "name: b\nlayout: kvasir_seg\n")
    assert _refusal(path) == f"recipe {path}: unknown layout 'kvasir_seg' — did you mean 'kvasir-seg'?"
    path = _recipe(tmp_path, "name: b\nlayout: image-mask\nexpert_mode: always\n" + IMAGE_MASK.split("\n", 2)[2])
    assert _refusal(path) == f"recipe {path}: expert_mode must be 'fill' or 'add' (got 'always')"


def test_a_recipe_built_in_code_is_checked_when_its_folder_is_opened(tmp_path):
    recipe = Recipe(name="x", layout="yolo", options={"name": ["a"]})
    with pytest.raises(UserError) as err:
        open_source(recipe, tmp_path)
    assert str(err.value) == "recipe x: unknown option 'name' — did you mean 'names'?"
    with pytest.raises(
        UserError, match=r"^recipe x: unknown option 'anything'; layout rsna-pneumonia takes no options$"
    ):
        open_source(Recipe(name="x", layout="rsna-pneumonia", options={"anything": 1}), tmp_path)


def test_every_layout_declares_its_options_and_every_named_recipe_passes_them():
    for name in layout_names():
        options = getattr(get_layout(name), "Options", LayoutOptions)
        assert issubclass(options, LayoutOptions) and options.model_config["extra"] == "forbid", name
    for name in named_recipes():
        recipe = load_recipe(name)
        assert getattr(get_layout(recipe.layout), "Options", LayoutOptions).model_validate(recipe.options) is not None


def test_expert_options_in_a_recipe_belong_to_its_one_named_expert(tmp_path):
    body = IMAGE_MASK.replace("options:", "expert: sam\nexpert_options: {chekpoint: /m.pth}\noptions:")
    path = _recipe(tmp_path, body)
    assert _refusal(path) == f"recipe {path}: expert_options: unknown option 'chekpoint' — did you mean 'checkpoint'?"
    path = _recipe(
        tmp_path, IMAGE_MASK.replace("options:", "expert: auto\nexpert_options: {checkpoint: /m.pth}\noptions:")
    )
    assert _refusal(path).startswith(f"recipe {path}: expert_options are the options of one named expert")
    path = _recipe(tmp_path, IMAGE_MASK.replace("options:", "expert: tissue\nexpert_options: {size: 3}\noptions:"))
    assert _refusal(path) == f"recipe {path}: expert_options: unknown option 'size'; expert tissue takes no options"
    ok = load_recipe(str(_recipe(tmp_path, body.replace("chekpoint", "checkpoint"))))
    assert ok.expert_options_by_name() == {"sam": {"checkpoint": "/m.pth"}}

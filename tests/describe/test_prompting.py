"""The multigranular prompt shows the record's facts; answers are read back tolerantly, or refused with a reason."""

from __future__ import annotations

import json

import pytest

from medtrinity.describe.base import Reply
from medtrinity.describe.prompting import (
    PROMPT_VERSION,
    describer_label,
    description_or_error,
    parse_answer,
    previous_answer_json,
    render_prompt,
    render_repair_prompt,
)
from medtrinity.errors import StageError
from medtrinity.records import ROI, Attributes, Check, Description, Origin, Passage, Position, Sample

FIELDS = {
    "modality": "CT",
    "structures": "liver",
    "roi": "one lesion",
    "texture": "dark",
    "local_global": "compresses the portal vein",
    "description": "A CT image of the liver with one lesion.",
}


def sample(**kw) -> Sample:
    rois = [
        ROI(
            bbox=[10, 20, 30, 44],
            label="tumor",
            source="annotation",
            position=Position("right-center", "upper-middle"),
            area_ratio=4.2,
        ),
        ROI(bbox=[2, 2, 6, 6], label="cyst", source="annotation", position=Position("left", "top"), area_ratio=0.3),
    ]
    base = dict(
        id="x",
        source="s",
        origin=Origin(file="a.png"),
        modality="CT",
        organ="liver",
        disease="liver tumor",
        width=64,
        height=48,
        coarse_caption="CT image of the liver showing a liver tumor.",
        rois=rois,
        knowledge=[Passage("mt-liver-002", "Liver lesions", "Hypodense   lesions\nare common.", 3.1)],
    )
    return Sample(**{**base, **kw})


def test_the_prompt_goes_global_local_relation_then_integrates_and_shows_every_fact():
    text = render_prompt(sample(patient_left_on_image="right"))
    order = [text.index(step) for step in ("Level 1", "Level 2", "Level 3", "integrate the three levels")]
    assert order == sorted(order)
    assert (
        '- ROI 1: "tumor", box [10, 20, 30, 44] (x0, y0, x1, y1), position "upper-middle right-center", '
        "covering 4.2% of the image, on the patient's left." in text
    )
    assert (
        '- ROI 2: "cyst", box [2, 2, 6, 6] (x0, y0, x1, y1), position "top left", covering 0.3% of the image, '
        "on the patient's right." in text
    )
    assert "Regions of interest (2 in all):" in text
    assert "- Coarse caption: CT image of the liver showing a liver tumor." in text
    assert "- [mt-liver-002] Liver lesions: Hypodense lesions are common." in text
    assert "- Image size: 64 x 48 pixels" in text
    assert "the patient's left is on the image's right side" in text
    for field in FIELDS:
        assert f'"{field}"' in text
    assert "outlined" not in text


def test_unknown_orientation_asks_for_image_sides_and_overlay_names_the_colours():
    text = render_prompt(sample(), overlay=True)
    assert "the patient's left/right on this image is unknown" in text
    assert "on the patient's" not in text
    assert "each outlined on the image in the colour given" in text
    assert "covering 4.2% of the image, outlined in red." in text and "outlined in green." in text


def test_no_roi_and_no_passages_render_without_empty_sections():
    text = render_prompt(sample(rois=[], knowledge=[], disease=None))
    assert "Regions of interest (0 in all):\n- none were localised." in text
    assert "Background knowledge" not in text and "Recorded finding" not in text


def test_repair_prompt_names_each_failed_check():
    text = render_repair_prompt(
        [
            Check("side", False, "text puts it on the image's right but tumor is at top left"),
            Check("area", False, "text says 40% but tumor is at top left (4.2%)"),
        ]
    )
    assert "- side: text puts it on the image's right but tumor is at top left\n- area: text says 40%" in text


def test_describer_label_records_backend_model_and_prompt_versions():
    assert describer_label("openai", "gpt-4o") == f"openai:gpt-4o prompt={PROMPT_VERSION}"
    assert describer_label("openai", "gpt-4o", repaired=True) == "openai:gpt-4o prompt=multigranular-v1+repair-v1"


def test_the_previous_answer_is_the_sample_description_as_the_six_field_json():
    described = sample(
        attributes=Attributes(
            modality="CT",
            structures="liver",
            roi="one lesion",
            texture="dark",
            local_global="compresses the portal vein",
        ),
        description="A CT image of the liver with one lesion.",
    )
    assert previous_answer_json(described) == json.dumps(FIELDS)  # the fields in the prompt's order


def test_a_reply_becomes_a_labelled_description_or_the_reason_it_cannot():
    described = description_or_error(Reply(json.dumps(FIELDS), "stop"), "openai:m prompt=x")
    assert isinstance(described, Description) and described.describer == "openai:m prompt=x"
    assert described.text == "A CT image of the liver with one lesion." and described.attributes.texture == "dark"
    refused = description_or_error(Reply("no JSON here", "stop"), "openai:m")
    assert isinstance(refused, StageError) and str(refused) == "answer is not JSON: 'no JSON here'"


@pytest.mark.parametrize(
    "wrap",
    [
        lambda j: j,
        lambda j: f"```json\n{j}\n```",
        lambda j: f"Sure! Here is the annotation:\n```\n{j}\n```\nLet me know.",
        lambda j: f"The answer is {j} as requested.",
    ],
)
def test_answers_are_found_in_fences_and_prose(wrap):
    answer = parse_answer(wrap(json.dumps(FIELDS)))
    assert answer.attributes == Attributes(
        modality="CT", structures="liver", roi="one lesion", texture="dark", local_global="compresses the portal vein"
    )
    assert answer.text == "A CT image of the liver with one lesion."
    assert answer.to_description("openai:m").describer == "openai:m"


def test_field_names_and_shapes_are_normalised():
    text = json.dumps(
        {
            "Modality": "MRI",
            "Local-Global Relationship": ["a", "b"],
            "ROI": {"location": "left"},
            "Description": "  An   MRI.  ",
        }
    )
    answer = parse_answer(text)
    assert answer.attributes == Attributes(modality="MRI", roi="location: left", local_global="a b")
    assert answer.text == "An MRI."


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("", "stop", "answer is empty: the model returned no text"),
        ("   \n", None, "answer is empty: the model returned no text"),
        (
            '{"modality": "CT", "descr',
            "length",
            'answer is truncated: the model hit its token limit after \'{"modality": "CT", "descr\'',
        ),
        ("I cannot help with that.", "stop", "answer is not JSON: 'I cannot help with that.'"),
        ('{"modality": "CT"}', "stop", 'answer is not JSON with a description: \'{"modality": "CT"}\''),
        ('{"modality": "CT", "description": ', "stop", 'answer is not JSON: \'{"modality": "CT", "description":\''),
    ],
)
def test_unusable_answers_raise_a_stage_error_with_the_reason(text, finish, reason):
    with pytest.raises(StageError) as caught:
        parse_answer(text, finish)
    assert str(caught.value) == reason

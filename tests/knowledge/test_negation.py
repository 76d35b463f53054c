"""drop_negated: what a passage rules out is not indexed as its topic."""

from __future__ import annotations

import pytest

from medtrinity.knowledge.index import KnowledgeIndex, passage_tokens
from medtrinity.knowledge.negation import drop_negated


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No focal opacity, pleural effusion or pneumothorax is seen.", " ."),
        (
            "Normal kidneys show no mass, cyst, stone or hydronephrosis. The sinus is echogenic.",
            "Normal kidneys show  . The sinus is echogenic.",
        ),
        # the scope ends at a clause boundary: punctuation or a word that starts a new clause
        ("There is no enhancement, but a thick rim enhances.", "There is  , but a thick rim enhances."),
        ("The mediastinum is not widened; the heart is enlarged.", "The mediastinum is  ; the heart is enlarged."),
        ("a pigment network is absent without exception", "a pigment network is absent  "),
        # ... and after SCOPE_WORDS words, so a long sentence keeps its end
        (
            "There are no nodules, consolidation, ground-glass opacity, pleural fluid or enlarged lymph nodes.",
            "There are   lymph nodes.",
        ),
        # not negations: "non-" names a thing, and these phrases only look negative
        ("Non-ossifying fibroma is a non-enhancing lesion.", "Non-ossifying fibroma is a non-enhancing lesion."),
        ("opacities with or without consolidation", "opacities with or without consolidation"),
        ("whether or not it enhances", "whether or not it enhances"),
        ("not only large but also spiculated", "not only large but also spiculated"),
        ("Nothing notable; a nodule is seen.", "Nothing notable; a nodule is seen."),
        ("", ""),
    ],
)
def test_drop_negated(text, expected):
    assert drop_negated(text) == expected


def test_a_passage_is_indexed_without_what_it_rules_out():
    assert passage_tokens("Normal chest X-ray", "Clear lungs. No pneumothorax or effusion is seen.") == [
        "normal",
        "chest",
        "xray",
        "normal",
        "chest",
        "xray",
        "clear",
        "lung",
    ]
    # the title is indexed as written: it names the topic
    assert passage_tokens("No pneumothorax", "No pneumothorax is seen.") == ["pneumothorax", "pneumothorax"]


def test_a_normal_passage_no_longer_answers_for_the_finding_it_rules_out():
    index = KnowledgeIndex.build(
        [
            {
                "id": "normal",
                "title": "Normal chest X-ray",
                "text": "Clear lungs on a chest X-ray. No pneumothorax is seen.",
            },
            {"id": "ptx", "title": "Pneumothorax", "text": "Air in the pleural space with a visible pleural line."},
        ]
    )
    assert [p.id for p in index.search("pneumothorax", k=3)] == ["ptx"]


def test_the_quick_check_never_skips_a_negation_the_pattern_would_find():
    import json
    from importlib import resources

    from medtrinity.knowledge.negation import _NEGATED

    core = resources.files("medtrinity.knowledge") / "kb" / "core.jsonl"
    texts = [json.loads(line)["text"] for line in core.read_text(encoding="utf-8").splitlines()]
    texts += [
        "NO\tpneumothorax",
        "no\npneumothorax",
        "Without/with contrast",
        "absence\n of  calcification",
        "FREE OF fluid",
        "no,",
        "pianos",
        "minor donor",
    ]
    assert [drop_negated(text) for text in texts] == [_NEGATED.sub(" ", text) for text in texts]
    assert sum(drop_negated(text) != text for text in texts) == 37  # 32 core passages and 5 of the cases above

"""`medtrinity eval answer --gt GT --base-url URL --model M --out PRED`: a served model answers the test set.

Each question goes to the server with its image, as LLaVA-Med's `model_vqa` asks it: the question text alone
(the GT's "<image>" marker removed), no system prompt, greedy decoding. Requests go through the describer's
client (`chat_client`): preflight, concurrency, retries and, with `--cache`, a request cache, so a rerun asks
nothing twice. The predictions are written in the GT's order as LLaVA-Med's answer file
(`{question_id, prompt, text, answer_id, model_id}`), which `eval vqa` reads under every protocol; a request
that failed after its retries is written with empty text and counted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medtrinity.errors import StageError, UserError
from medtrinity.evaluate.vqa_files import Question, load_gt
from medtrinity.records import Origin, Sample

PROMPT_VERSION = "vqa-answer-v1"
PROBE_QUESTION = "What imaging modality is shown?"


def _messages(question: str, image_url: str) -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": image_url}}, {"type": "text", "text": question}],
        }
    ]


def _image_sample(question: Question) -> Sample:
    from medtrinity.sources.imaging import read_image

    try:
        pixels = read_image(question.image).pixels
    except (StageError, OSError, ValueError) as err:
        raise UserError(f"question {question.id}: cannot read its image {question.image} ({err})") from None
    return Sample(
        id=str(question.id),
        source="vqa",
        origin=Origin(file=str(question.image)),
        modality="Other",
        width=pixels.shape[1],
        height=pixels.shape[0],
        pixels=pixels,
    )


def answer_questions(
    gt: str, out: str | Path, images: str | None, cache: str | None, max_tokens: int, client_options: dict
) -> str:
    from medtrinity.describe.image_payload import image_payload
    from medtrinity.evaluate.chat_client import ChatClient, ChatRequest

    _, questions = load_gt(gt, images)
    missing = [q for q in questions if not q.image or not Path(q.image).is_file()]
    if missing:
        raise UserError(
            f"{len(missing)} questions have no image file (first: question {missing[0].id}, "
            f"{missing[0].image}); give --images FOLDER for a LLaVA-Med GT"
        )
    out = Path(out)
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")

    def probe(sample: Sample) -> list[dict]:  # the preflight reads a system message, then the user's parts
        return [
            {"role": "system", "content": "Answer the question about the image."},
            *_messages(PROBE_QUESTION, image_payload(sample, client.max_image_side).data_url),
        ]

    client = ChatClient(probe, cache_dir=cache, max_tokens=max_tokens, **client_options)
    client.preflight()
    requests = []
    for question in questions:
        sample = _image_sample(question)
        requests.append(
            ChatRequest(
                _messages(question.question, image_payload(sample, client.max_image_side).data_url), PROMPT_VERSION
            )
        )
    replies = client.ask(requests)
    failed = 0
    with out.open("w", encoding="utf-8") as f:
        for question, reply in zip(questions, replies, strict=True):
            text = "" if isinstance(reply, BaseException) else reply.content.strip()
            failed += isinstance(reply, BaseException)
            answer_id = hashlib.sha1(f"{client.model}\0{question.id}\0{text}".encode()).hexdigest()[:22]
            f.write(
                json.dumps(
                    {
                        "question_id": question.id,
                        "prompt": question.question,
                        "text": text,
                        "answer_id": answer_id,
                        "model_id": client.model,
                        "metadata": {},
                    }
                )
                + "\n"
            )
    usage = client.usage
    return (
        f"{len(questions)} questions answered by {client.model} into {out} ({usage.requests} requests, "
        f"{usage.cache_hits} from the cache, {usage.retries} retries"
        + (f"; {failed} failed after every retry and are written with empty text" if failed else "")
        + ")"
    )

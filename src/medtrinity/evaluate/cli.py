"""`medtrinity eval alignment|vqa|answer|leakage`: the evaluation commands.

`add_eval_command(subparsers)` adds them to the main parser; `run_eval(args)` runs one. See docs/EVALUATION.md.
"""

from __future__ import annotations

import argparse
import json
import sys

from medtrinity.errors import UserError


def _add_model_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "--base-url",
        dest="base_url",
        required=required,
        help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (default: api.openai.com)",
    )
    p.add_argument("--model", required=required, help="the model the server serves")
    p.add_argument(
        "--api-key-env",
        dest="api_key_env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key (default OPENAI_API_KEY; never logged)",
    )
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--max-attempts", dest="max_attempts", type=int, default=5, help="attempts per request (default 5)")
    p.add_argument(
        "--request-timeout",
        dest="request_timeout",
        type=float,
        default=600.0,
        help="seconds per request before it is retried (default 600)",
    )
    p.add_argument(
        "--max-image-side",
        dest="max_image_side",
        type=int,
        default=1024,
        metavar="N",
        help="longest side of the image sent (default 1024; 0 = full size)",
    )


def add_eval_command(sub: argparse._SubParsersAction) -> None:
    from medtrinity.evaluate.vqa import PROTOCOLS

    p = sub.add_parser(
        "eval",
        help="judge a build: alignment with human annotations, VQA scores, leakage",
        description="Evaluate a build or a model: `eval alignment DIR`, `eval vqa --gt GT --pred "
        "PRED`, `eval answer --gt GT …`, `eval leakage DIR --against PATH`. "
        "See docs/EVALUATION.md.",
    )
    kinds = p.add_subparsers(dest="evaluation", metavar="EVALUATION", parser_class=type(p))
    kinds.required = True

    a = kinds.add_parser(
        "alignment",
        help="score descriptions against the sources' human annotations (0-10)",
        description="Score each description on the paper's five attributes (0-2 each) against "
        "the record's human annotation: its masks/boxes, labels and reference text.",
    )
    a.add_argument("dir", metavar="DIR", help="a build's output folder")
    a.add_argument(
        "--judge",
        choices=("rules", "llm"),
        default="rules",
        help="rules: compare what the text states with the annotation, no model (default); llm: the "
        "paper's judge prompt through an OpenAI-compatible server",
    )
    a.add_argument("--sample", type=int, metavar="N", help="score N records drawn at random (default: all)")
    a.add_argument("--seed", type=int, default=0, help="seed of the draw and of the bootstrap (default 0)")
    a.add_argument("--out", metavar="REPORT", help="report folder (default DIR/eval/alignment-<judge>)")
    _add_model_options(a, required=False)

    v = kinds.add_parser(
        "vqa",
        help="score VQA predictions as LLaVA-Med / MedTrinity score them",
        description="Score predictions ({question_id, text} JSON Lines) against a VQA test set.",
    )
    v.add_argument(
        "--gt",
        required=True,
        metavar="GT",
        help="LLaVA-Med test JSON, SLAKE's test.json or folder, VQA-RAD's JSON or folder, or slake:PATH / vqa-rad:PATH",
    )
    v.add_argument("--pred", required=True, metavar="PRED", help="predictions, JSON Lines {question_id, text}")
    v.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="llava-med",
        help="llava-med: LLaVA-Med v1.0.0 run_eval.py (default); medtrinity: run_eval_nocandi.py; "
        "exact: normalised exact match",
    )
    v.add_argument("--json", action="store_true", help="print one JSON object")

    q = kinds.add_parser(
        "answer",
        help="ask a served model the test questions; write predictions",
        description="Ask an OpenAI-compatible server each test question with its image and write "
        "the predictions file `eval vqa` reads.",
    )
    q.add_argument("--gt", required=True, metavar="GT", help="as for `eval vqa`")
    q.add_argument("--out", required=True, metavar="PRED", help="predictions file to write (JSON Lines)")
    q.add_argument(
        "--images",
        metavar="FOLDER",
        help="LLaVA-Med GT: the folder its image names are in (default: the GT file's folder)",
    )
    q.add_argument("--cache", metavar="FOLDER", help="request cache folder: a rerun asks nothing twice")
    q.add_argument("--max-tokens", dest="max_tokens", type=int, default=128, help="answer length limit (default 128)")
    _add_model_options(q, required=True)

    k = kinds.add_parser(
        "leakage",
        help="near-duplicate images across splits, sources and benchmarks",
        description="Find near-duplicate images (perceptual hashes) between a build and benchmark "
        "test images, and inside the build across splits and sources.",
    )
    k.add_argument("dir", metavar="DIR", help="a build's output folder")
    k.add_argument(
        "--against",
        nargs="*",
        default=[],
        metavar="PATH",
        help="a folder of images, a build, or RECIPE:PATH (its test split), repeatable",
    )
    k.add_argument(
        "--max-distance",
        dest="max_distance",
        type=int,
        metavar="D",
        help="largest Hamming distance (of 64 bits, pHash and dHash alike) of a pair (default 10)",
    )
    k.add_argument("--out", metavar="REPORT", help="report folder (default DIR/eval/leakage)")


def run_eval(args: argparse.Namespace) -> int:
    return {"alignment": _alignment, "vqa": _vqa, "answer": _answer, "leakage": _leakage}[args.evaluation](args)


def _client_options(args: argparse.Namespace) -> dict:
    if args.concurrency < 1 or args.max_attempts < 1:
        raise UserError("--concurrency and --max-attempts must be at least 1")
    return {
        "model": args.model,
        "base_url": args.base_url,
        "api_key_env": args.api_key_env,
        "concurrency": args.concurrency,
        "max_attempts": args.max_attempts,
        "timeout": args.request_timeout,
        "max_image_side": args.max_image_side,
    }


def _alignment(args: argparse.Namespace) -> int:
    from medtrinity.evaluate.alignment import run_alignment

    if args.judge == "llm" and not args.model:
        raise UserError("--judge llm needs --model (and --base-url for a local server)")
    if args.judge == "rules" and (args.model or args.base_url):
        raise UserError("--model and --base-url are for --judge llm; the rules judge uses no model")
    if args.sample is not None and args.sample < 1:
        raise UserError("--sample must be at least 1")
    summary = run_alignment(
        args.dir,
        judge=args.judge,
        sample=args.sample,
        seed=args.seed,
        out=args.out,
        client_options=_client_options(args) if args.judge == "llm" else None,
    )
    print("\n".join(summary.lines()))
    return 0


def _vqa(args: argparse.Namespace) -> int:
    from medtrinity.evaluate.vqa import evaluate_vqa, report_lines
    from medtrinity.evaluate.vqa_files import load_gt, load_predictions

    gt_format, questions = load_gt(args.gt)
    result = evaluate_vqa(questions, load_predictions(args.pred), args.protocol)
    if args.json:
        print(json.dumps(result.as_dict() | {"gt_format": gt_format}))
    else:
        print("\n".join(report_lines(result, gt_format)))
    return 0


def _answer(args: argparse.Namespace) -> int:
    from medtrinity.evaluate.answer import answer_questions

    summary = answer_questions(
        args.gt,
        args.out,
        images=args.images,
        cache=args.cache,
        max_tokens=args.max_tokens,
        client_options=_client_options(args),
    )
    print(summary)
    return 0


def _leakage(args: argparse.Namespace) -> int:
    from medtrinity.evaluate.leakage import DEFAULT_MAX_DISTANCE, run_leakage

    distance = DEFAULT_MAX_DISTANCE if args.max_distance is None else args.max_distance
    if not 0 <= distance <= 32:
        raise UserError("--max-distance must be between 0 and 32 (bits of 64)")
    report = run_leakage(args.dir, args.against, max_distance=distance, out=args.out, show_progress=sys.stderr.isatty())
    print("\n".join(report.lines()))
    return 0

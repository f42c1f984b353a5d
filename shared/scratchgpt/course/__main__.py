"""`python -m scratchgpt.course`: build the student edition of the exercises, check the question bank,
or bring the Korean notebooks up to date with the English ones."""

from __future__ import annotations

from .exercises import QUESTIONS_FILE, build_student_edition, load_questions


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m scratchgpt.course",
                                     description="Build the student edition of the exercises, "
                                     "or check the question bank.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("student-edition", help="build the student edition with nbgrader")
    build.add_argument("out", help="folder for the nbgrader course (source/ and release/)")
    build.add_argument("notebooks", nargs="*", help="notebooks to include (default: all with exercises)")
    build.add_argument("--lang", choices=["en", "ko"], default="en",
                       help="ko: the Korean edition's notebooks (notebooks/ko/), when none are named")
    check = sub.add_parser("check-questions", help="validate notebooks/questions.json")
    check.add_argument("path", nargs="?", default=QUESTIONS_FILE)
    sub.add_parser("sync-korean", help="copy code and outputs into notebooks/ko/ and list the markdown "
                   "cells to translate")
    args = parser.parse_args(argv)
    try:
        if args.command == "student-edition":
            release = build_student_edition(args.out, args.notebooks or None, lang=args.lang)
            for path in sorted(release.glob("*/*.ipynb")):
                print(path.relative_to(release.parent))
        elif args.command == "sync-korean":
            from .translation import sync_all

            pending = sync_all()
            for item in pending:
                print(item)
            print(f"{len(pending)} markdown cells to translate" if pending else "every cell is translated")
        else:
            counts = {name: len(items) for name, items in load_questions(args.path).items()}
            print(", ".join(f"{name}: {n}" for name, n in counts.items()))
    except (OSError, ValueError, RuntimeError) as err:   # a sentence, not a traceback; nothing was changed
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")


if __name__ == "__main__":
    main()

"""Docs keep up with the code: every command, option and config key documented, no dead links."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest

from stylesearch.cli import cli
from stylesearch.config import LossConfig, ModelConfig, TextConfig, TrainConfig
from stylesearch.model.visual import VisualConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CLI_MD = DOCS / "cli.md"
TRAINING_MD = DOCS / "training.md"

#: options named in docs/cli.md that belong to other programs or to planned commands.
FOREIGN_OPTIONS = {"--nproc_per_node", "--index"}


def walk(command: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    """(``"catalog check"``, command) for every command and group below ``command`` (root: "")."""
    found = [(" ".join(prefix), command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            found += walk(sub, (*prefix, name))
    return found


COMMANDS = walk(cli)
LEAVES = [(path, cmd) for path, cmd in COMMANDS if path and not isinstance(cmd, click.Group)]


def long_options(command: click.Command) -> list[str]:
    return sorted(
        {
            opt
            for param in command.params
            if isinstance(param, click.Option)
            for opt in (*param.opts, *param.secondary_opts)
            if opt.startswith("--")
        }
    )


def read(path: Path) -> str:
    if not path.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} does not exist")
    return path.read_text(encoding="utf-8")


def without_fences(text: str) -> str:
    """Fenced code blocks blanked out line by line (so a ``#`` comment is not a heading)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else line)
    return "\n".join(out)


def without_code(text: str) -> str:
    """Markdown without code blocks and inline code spans (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", without_fences(text))


def sections(text: str) -> dict[str, str]:
    """Heading text (without #s and backticks) -> the text up to the next heading of the same or
    a higher level."""
    out: dict[str, str] = {}
    lines = without_fences(text).splitlines()
    heads = [(i, len(m.group(1)), m.group(2)) for i, line in enumerate(lines)
             if (m := re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line))]  # fmt: skip
    for k, (i, level, title) in enumerate(heads):
        end = next((j for j, lv, _ in heads[k + 1 :] if lv <= level), len(lines))
        out[title.replace("`", "").strip()] = "\n".join(lines[i + 1 : end])
    return out


def github_slug(heading: str) -> str:
    slug = heading.strip().lower().replace("`", "")
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


# --- docs/cli.md ------------------------------------------------------------------------------


def test_cli_tree_is_walked() -> None:
    assert {"catalog check", "train"} <= {path for path, _ in LEAVES}


@pytest.mark.parametrize("path", [path for path, _ in LEAVES])
def test_every_command_has_a_section_naming_its_options(path: str) -> None:
    doc = sections(read(CLI_MD))
    assert path in doc, f"docs/cli.md has no heading '## {path}' for `stylesearch {path}`"
    section = doc[path]
    command = dict(LEAVES)[path]
    missing = [
        opt
        for opt in long_options(command)
        if opt != "--help" and not re.search(re.escape(opt) + r"(?![\w-])", section)
    ]
    assert not missing, f"docs/cli.md section '{path}' does not mention {missing}"


def test_groups_and_global_options_are_mentioned() -> None:
    text = read(CLI_MD)
    for path, command in COMMANDS:
        if path:
            assert path in text, f"docs/cli.md does not mention `stylesearch {path}`"
        if isinstance(command, click.Group):
            for opt in long_options(command):
                assert re.search(re.escape(opt) + r"(?![\w-])", text), (path, opt)


def test_cli_md_names_no_option_that_does_not_exist() -> None:
    known = {"--help"} | {opt for _, command in COMMANDS for opt in long_options(command)}
    named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", read(CLI_MD)))
    unknown = sorted(named - known - FOREIGN_OPTIONS)
    assert not unknown, f"docs/cli.md names options no command has: {unknown}"


# --- docs/training.md -------------------------------------------------------------------------

CONFIG_SECTIONS = {
    "text": TextConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "visual": VisualConfig,
}


@pytest.mark.parametrize("section", sorted(CONFIG_SECTIONS))
def test_every_config_key_is_documented(section: str) -> None:
    text = read(TRAINING_MD)
    doc = sections(text)
    title = next((t for t in doc if f"[{section}]" in t), None)
    assert title is not None, f"docs/training.md has no heading naming [{section}]"
    fields = [f.name for f in dataclasses.fields(CONFIG_SECTIONS[section])]
    missing = [name for name in fields if f"`{name}`" not in doc[title]]
    assert not missing, f"docs/training.md section [{section}] does not document {missing}"


# --- links ------------------------------------------------------------------------------------

MARKDOWN_FILES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links(path: Path) -> list[str]:
    targets = LINK.findall(without_code(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|//)", t, flags=re.I)]


def test_markdown_files_are_found() -> None:
    assert (ROOT / "README.md").is_file()
    assert CLI_MD in MARKDOWN_FILES


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(path: Path) -> None:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        file_part = file_part.split("?", 1)[0]
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target} (no such file)")
            continue
        if anchor and dest.suffix == ".md":
            slugs = {github_slug(title) for title in sections(dest.read_text(encoding="utf-8"))}
            if anchor not in slugs:
                broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{path.relative_to(ROOT)}: broken links: {broken}"


# --- README.md "Layout" -----------------------------------------------------------------------

PACKAGE = ROOT / "src" / "stylesearch"
#: modules the Layout need not name: package markers and the entry point (no generated modules)
UNLISTED = {"__init__.py", "__main__.py"}


def layout_entries() -> list[tuple[str, str]]:
    """(path, text) of each entry of the README's Layout code blocks: a line that starts at the
    left margin names a path, its text runs on over the indented lines below it."""
    text = read(ROOT / "README.md")
    start = text.index("\n## Layout\n")
    end = text.find("\n## ", start + 1)
    entries: list[tuple[str, str]] = []
    fenced = False
    for line in text[start : end if end > 0 else len(text)].splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced and line.strip():
            if line[0].isspace():
                entries[-1] = (entries[-1][0], f"{entries[-1][1]} {line.strip()}")
            else:
                path, _, rest = line.partition(" ")
                entries.append((path, rest))
    return entries


def layout_paths() -> set[Path]:
    """Every path the Layout names: each entry's path, and the modules (``name.py``) and
    folders (``name/``) its text names, relative to the entry's folder."""
    paths = set()
    for path, text in layout_entries():
        paths.add(ROOT / path)
        folder = ROOT / path if path.endswith("/") else (ROOT / path).parent
        names = re.findall(r"(?<![\w/.])(\w+\.py|\w+/)(?![\w.])", text)
        paths.update(folder / name for name in names)
    return paths


def test_layout_names_every_module() -> None:
    named = {p.resolve() for p in layout_paths()}
    modules = [p for p in PACKAGE.rglob("*.py") if p.name not in UNLISTED]
    assert len(modules) > 50
    missing = sorted(str(p.relative_to(ROOT)) for p in modules if p.resolve() not in named)
    assert not missing, f"README.md's Layout does not name {missing}"


def test_layout_names_only_paths_that_exist() -> None:
    paths = layout_paths()
    assert len(paths) > 50
    gone = sorted(str(p.relative_to(ROOT)) for p in paths if not p.exists())
    assert not gone, f"README.md's Layout names paths that do not exist: {gone}"

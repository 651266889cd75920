"""Nothing in the project points outside it: every path a tracked file names is in the repository.

Checked over the files git tracks: relative Markdown links resolve to a tracked file or
folder; a Markdown file named anywhere (``docs/model.md``, ``README.md``) exists; a path
under one of the repository's top-level folders (``sql/model/04_page_views.sql``,
``playbooks/full.yml``) named in the documentation, the SQL, the playbooks or the package
exists (examples in fenced code blocks and tests' own temporary files aside); and no file
names a folder beside the repository (``../shared/``) or the work folders of the machine
it was written on.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

pytestmark = pytest.mark.no_database

ROOT = Path(__file__).resolve().parent.parent

# [text](target) in Markdown, target without spaces; images too
MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
# a name ending in .md, with or without folders
MARKDOWN_NAME = re.compile(r"(?<![\w/.-])((?:\.{0,2}/)?[\w.-]+(?:/[\w.-]+)*\.md)\b")
# a relative path with a folder: top/...file.ext
REPO_PATH = re.compile(r"(?<![\w/.-])([A-Za-z_][\w-]*(?:/[\w.-]+)+\.(?:md|py|sql|yml|yaml|toml))\b")
# a path that climbs out of its folder's tree, or an absolute path of a work machine
OUTSIDE = re.compile(r"(?:\.\./)+shared\b|(?<![\w.])/work/[\w.-]+")
# a fenced code block in Markdown
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


@cache
def tracked_files() -> tuple[str, ...]:
    """The repository's tracked files, as paths relative to its root."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"not a git checkout ({err})")
    return tuple(name for name in listing.split("\0") if name)


@cache
def tracked_paths() -> frozenset[str]:
    """Every tracked file and every folder that holds one."""
    paths: set[str] = set()
    for name in tracked_files():
        path = PurePosixPath(name)
        paths.add(str(path))
        paths.update(str(parent) for parent in path.parents if str(parent) != ".")
    return frozenset(paths)


def text_files() -> list[tuple[str, str]]:
    """(path, text) of every tracked text file that is not generated data."""
    files = []
    for name in tracked_files():
        if name.endswith((".json", ".svg", ".png", ".csv")):
            continue
        try:
            files.append((name, (ROOT / name).read_text(encoding="utf-8")))
        except (UnicodeDecodeError, FileNotFoundError):
            continue
    return files


def resolves(name: str, mentioned_in: str) -> bool:
    """Whether ``name`` is a tracked path: from the repository's root, from the folder of the
    file that mentions it, or (a bare file name) as any tracked file's name."""
    folder = PurePosixPath(mentioned_in).parent
    candidates = [PurePosixPath(name), folder / name]
    for candidate in candidates:
        parts: list[str] = []
        for part in candidate.parts:
            if part == "..":
                if not parts:
                    break  # above the repository
                parts.pop()
            elif part != ".":
                parts.append(part)
        else:
            if "/".join(parts) in tracked_paths() or not parts:
                return True
    if "/" not in name:
        return any(PurePosixPath(path).name == name for path in tracked_files())
    return False


def documented_text(name: str, text: str) -> str:
    """What of a file documents the project's own paths: Markdown without its fenced code
    (examples), the SQL, the playbooks, the package; nothing of the tests and benchmarks,
    whose paths name files they write themselves."""
    if name.endswith(".md"):
        return FENCED.sub("", text)
    if name.endswith((".sql", ".yml", ".yaml", ".toml")) or name.startswith("sqlrunner/"):
        return text
    return ""


def top_level_folders() -> set[str]:
    return {name.split("/", 1)[0] for name in tracked_files() if "/" in name}


def test_markdown_links_resolve_inside_the_repository():
    broken = []
    for name, text in text_files():
        if not name.endswith(".md"):
            continue
        for match in MARKDOWN_LINK.finditer(text):
            target = match.group(1).split("#", 1)[0]
            if not target or re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # an anchor on the same page, or a URL
            if not resolves(target, name):
                broken.append(f"{name}: [..]({match.group(1)})")
    assert not broken, "links to nothing in the repository:\n" + "\n".join(broken)


def test_every_markdown_file_named_exists():
    missing = []
    for name, text in text_files():
        for match in MARKDOWN_NAME.finditer(text):
            if not resolves(match.group(1), name):
                missing.append(f"{name}: {match.group(1)}")
    assert not missing, "Markdown files that are not in the repository:\n" + "\n".join(missing)


def test_every_path_into_a_repository_folder_exists():
    folders = top_level_folders()
    missing = []
    for name, text in text_files():
        for match in REPO_PATH.finditer(documented_text(name, text)):
            path = match.group(1)
            if path.split("/", 1)[0] in folders and not resolves(path, name):
                missing.append(f"{name}: {path}")
    assert not missing, "paths to files the repository does not hold:\n" + "\n".join(missing)


def test_nothing_names_a_place_outside_the_repository():
    outside = []
    for name, text in text_files():
        if name == "tests/test_self_contained.py":
            continue  # its own patterns
        for match in OUTSIDE.finditer(text):
            outside.append(f"{name}: {match.group(0)}")
    assert not outside, "references outside the repository:\n" + "\n".join(outside)

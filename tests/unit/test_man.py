"""The man pages render cleanly and document every option their command accepts; the site-config docs
cover every key. groff is required: without it these tests fail (CI must install groff-base)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gridshim import gridflags
from gridshim.config import ConfigError, from_dict

REPO = Path(__file__).resolve().parents[2]
MAN = REPO / "docs" / "man"
REQUIRED = ("jsub", "jstart", "jstop", "job", "qstat", "qdel", "crontab")
PAGES = sorted(p.stem for p in MAN.glob("*.1"))


def groff() -> str:
    path = shutil.which("groff")
    if path is None:
        pytest.fail("groff is not installed: the man page tests need it (Debian/Ubuntu: apt-get install "
                    "groff-base)", pytrace=False)
    return path


def render(page: str) -> str:
    """The page as plain ASCII text (no bold/underline), the way a reader sees it."""
    out = subprocess.run([groff(), "-man", "-Tascii", "-P-cbou", "-rLL=78n", "-rHY=0", str(MAN / f"{page}.1")],
                         capture_output=True, text=True, check=True)
    return out.stdout


def cli_options(cmd: str) -> set[str]:
    """The option words a command's own parser compares argv against (string literals like "-xml")."""
    src = (REPO / "src" / "gridshim" / "cli" / f"{cmd}.py").read_text()
    found = {n.value for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Constant)
             and isinstance(n.value, str) and re.fullmatch(r"--?[a-z][a-z-]*", n.value)}
    return found - {"-c"}  # crontab runs the editor with `/bin/sh -c`


def documented(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_every_required_page_exists() -> None:
    assert set(REQUIRED) <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_warnings(page: str) -> None:
    proc = subprocess.run([groff(), "-man", "-Tutf8", "-ww", "-z", str(MAN / f"{page}.1")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("page", PAGES)
def test_page_source_is_ascii_with_the_usual_sections(page: str) -> None:
    raw = (MAN / f"{page}.1").read_bytes()
    assert all(b < 128 for b in raw), "non-ASCII bytes need preconv; use roff escapes"
    text = render(page)
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), f"{page}.1 has no {section} section"
    assert f"{page.upper()}(1)" in text.splitlines()[0]


def test_jsub_page_documents_every_flag_the_parser_accepts() -> None:
    text = render("jsub")
    missing = [o for o in (*gridflags.OPTIONS, *gridflags.HELP) if not documented(text, o)]
    assert not missing, f"jsub.1 does not document {missing}"
    assert "qcronsub" in text.split("SYNOPSIS")[0]  # jsub.1 names qcronsub too; qcronsub.1 is its own page


def test_jstart_page_points_to_jsubs_options() -> None:
    text = render("jstart")
    text = " ".join(text.split())
    assert "jsub -continuous -once" in text and "jsub(1)" in text


@pytest.mark.parametrize("cmd", ["qstat", "qdel", "qmod", "job", "crontab"])
def test_page_documents_every_option_of_the_command(cmd: str) -> None:
    text = render(cmd)
    options = cli_options(cmd) | {"-h", "--help"}
    missing = sorted(o for o in options if not documented(text, o))
    assert not missing, f"{cmd}.1 does not document {missing}"


def test_jstop_takes_no_options_and_says_so() -> None:
    assert cli_options("jstop") == set()
    assert "takes no options" in " ".join(render("jstop").split())


def test_gridshim_page_documents_its_parser() -> None:
    """Every subcommand and option of the click command tree is on the page."""
    from gridshim.cli.gridshim import command

    text = render("gridshim")
    cli = command()
    words: set[str] = set()
    for name, cmd in [("", cli), *cli.commands.items()]:
        if name:
            words.add(name)
        for param in cmd.params:
            words |= {o for o in (*param.opts, *param.secondary_opts) if o.startswith("-")}
    assert {"doctor", "migrate-check", "release", "--job", "--sweep", "--task", "--no-follow", "--version"} <= words
    missing = sorted(w for w in words if not documented(text, w))
    assert not missing, f"gridshim.1 does not document {missing}"


def test_every_command_has_a_page() -> None:
    setup = (REPO / "setup.cfg").read_text()
    scripts = set(re.findall(r"^\s+([\w-]+) = gridshim\.", setup, re.M))
    assert scripts - set(PAGES) == set()


def test_pages_are_installed_with_the_package() -> None:
    setup = (REPO / "setup.cfg").read_text()
    assert re.search(r"^\[options\.data_files\]\s*\nshare/man/man1 = docs/man/\*\.1$", setup, re.M)


# -- the site config docs ----------------------------------------------------------------------------

def site_config_keys() -> list[str]:
    with pytest.raises(ConfigError) as e:
        from_dict({"no-such-key": 1})
    return [k.strip() for k in str(e.value).split("valid: ", 1)[1].split(",")]


def test_site_config_doc_has_a_section_per_key() -> None:
    doc = (REPO / "docs" / "site-config.md").read_text()
    keys = site_config_keys()
    assert "images" in keys and "user_prefix" in keys
    missing = [k for k in keys if f"### `{k}`" not in doc]
    assert not missing, f"docs/site-config.md has no section for {missing}"
    for sub in ("memory.default", "memory.max", "memory.request", "cpu.request", "cpu.limit", "hostPath",
                "nfs", "claim", "readOnly", "home-owner", "passwd:PATTERN", "restricted"):
        assert sub in doc, sub


def test_example_config_loads_and_sets_every_key() -> None:
    data = yaml.safe_load((REPO / "docs" / "config.example.yaml").read_text())
    settings = from_dict(data, path="docs/config.example.yaml")
    assert set(data) == set(site_config_keys())
    assert {v.host_path is not None for v in settings.volumes} == {True, False}
    assert any(v.nfs_server for v in settings.volumes) and any(v.claim for v in settings.volumes)

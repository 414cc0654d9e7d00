"""The import rules of docs/design.md, read from the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "gridshim"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "gridshim":  # from gridshim import submit
                found.update(f"gridshim.{a.name}" for a in node.names)
    return found


def modules() -> dict[str, set[str]]:
    # gridshim.record (dataclasses without the module) and gridshim.digest (hashlib's SHA-256 without its
    # OpenSSL binding) are leaves that stand in for the stdlib: they count as the stdlib
    return {str(p.relative_to(SRC)): imports(p) - {"gridshim.record", "gridshim.digest"} for p in SRC.rglob("*.py")}


def test_nothing_in_gridshim_imports_the_kubernetes_package() -> None:
    """The product speaks to the API with gridshim.kube; `kubernetes` is only in the test extra (setup.cfg)."""
    for mod, names in modules().items():
        assert not any(n == "kubernetes" or n.startswith("kubernetes.") for n in names), f"{mod} imports kubernetes"
    for mod in SRC.rglob("*.py"):
        text = mod.read_text()
        assert "import_module(\"kubernetes" not in text and "__import__(\"kubernetes" not in text, mod


def test_kubernetes_is_not_an_install_requirement() -> None:
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(SRC.parents[1] / "setup.cfg")
    requires = [r.strip() for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    assert not [r for r in requires if r.startswith("kubernetes")], requires
    assert any(r.startswith("kubernetes") for r in cfg["options.extras_require"]["test"].split("\n"))


def test_the_kube_package_is_the_only_network_client_and_imports_only_errors_and_model() -> None:
    for mod, names in modules().items():
        if mod.startswith("kube/"):
            ours = {n for n in names if n.startswith("gridshim")}
            assert ours <= {"gridshim.errors", "gridshim.model", "gridshim.usercache", "gridshim.kube.http11", "gridshim.kube.config", "gridshim.kube.auth",
                            "gridshim.kube.transport", "gridshim.kube.client"}, (mod, ours)
        elif mod != "cluster.py":
            assert not [n for n in names if n.startswith("gridshim.kube")], f"{mod}: import gridshim.cluster instead"


def test_leaves_import_nothing_of_ours() -> None:
    for mod in ("model.py", "errors.py", "usercache.py", "record.py", "digest.py", "text.py", "quantity.py",
                "shellwords.py"):
        assert not [n for n in modules()[mod] if n.startswith("gridshim")], mod


# -- docs/design.md's module table is the rule, for every module of the tree ----------------------------

DESIGN = SRC.parents[1] / "docs" / "design.md"
TABLE_HEAD = "| module | role | may import |"


def table() -> dict[str, set[str] | None]:
    """design.md's module table: `name.py` or `package/` → the gridshim modules it may import (names as
    `render.labels`; a package's name allows all of it), None for "everything above"."""
    text = DESIGN.read_text()
    assert TABLE_HEAD in text, f"{DESIGN} has no module table ({TABLE_HEAD})"
    rows: dict[str, set[str] | None] = {}
    for line in text.split(TABLE_HEAD, 1)[1].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        entry, allowed = cells[0], cells[-1]
        assert entry.count("`") == 2 and entry.startswith("`") and entry.endswith("`"), \
            f"design.md's module table: the first cell is one `module.py` or `package/`, not {entry!r}"
        name = entry.strip("`")
        assert name not in rows, f"design.md's module table names {name} twice"
        if allowed == "everything above":
            rows[name] = None
        elif allowed == "nothing of ours":
            rows[name] = set()
        else:
            rows[name] = {a.strip().strip("`") for a in allowed.split(",")}
    return rows


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ours(path: Path) -> set[str]:
    """The gridshim modules PATH imports, as `render.labels` (`from gridshim.render import labels` is
    render.labels; `from gridshim import ops` is ops), without gridshim.record (counted as the stdlib)."""
    names: set[str] = set()
    known = {_dotted(p) for p in SRC.rglob("*.py")}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}"[9:] in known else node.module
                     for a in node.names]
        else:
            continue
        names |= {n[9:] for n in found if n.startswith("gridshim.")}
    return names - {"record", _dotted(path)}


def _row_of(dotted: str, rows: dict[str, set[str] | None]) -> str:
    """The table row of module DOTTED: its package's (`kube/`) or its own (`ops.py`)."""
    top = dotted.split(".")[0]
    row = f"{top}/" if (SRC / top).is_dir() else f"{dotted}.py"
    assert row in rows, (f"src/gridshim/{dotted.replace('.', '/')} has no row in design.md's module table "
                         "(docs/design.md, Layers): add one saying what it may import")
    return row


def test_every_module_has_a_row_in_design_md_and_imports_only_what_it_says() -> None:
    """The module list comes from the tree, so a new module fails here until design.md says what it may import."""
    rows = table()
    modules = {_dotted(p): p for p in SRC.rglob("*.py") if _dotted(p)}  # the package's own __init__ only has __version__
    everything = set(modules)
    used_rows = set()
    for dotted, path in sorted(modules.items()):
        row = _row_of(dotted, rows)
        used_rows.add(row)
        allowed = rows[row]
        own = row[:-1] if row.endswith("/") else None
        if allowed is None:  # cli/: everything above
            allowed = {m for m in everything if m.split(".")[0] != own}
        ok = lambda name: (name in allowed or any(name.startswith(a + ".") for a in allowed)  # noqa: E731
                           or (own is not None and name.split(".")[0] == own))
        bad = sorted(n for n in ours(path) if not ok(n))
        assert not bad, f"src/gridshim/{path.relative_to(SRC)} imports {bad}, which design.md's row `{row}` does not allow"
    assert set(rows) == used_rows, f"design.md's module table names modules that do not exist: {set(rows) - used_rows}"
    for row, allowed in rows.items():
        for a in allowed or ():
            assert a in everything, f"design.md's row `{row}` allows {a!r}, which is not a module of gridshim"


def test_the_layering_check_reads_imports_the_way_they_are_written() -> None:
    """`from gridshim.render import labels as L` is render.labels, `from gridshim import ops` is ops, and a
    module outside its row is caught (the check can fail)."""
    assert "render.labels" in ours(SRC / "ops.py") and "ops" in ours(SRC / "cli" / "jsub.py")
    assert "record" not in ours(SRC / "model.py")
    rows = table()
    assert rows["model.py"] == set() and rows["cli/"] is None and "render.labels" in (rows["tasks.py"] or set())
    assert _row_of("kube.client", rows) == "kube/" and _row_of("cluster", rows) == "cluster.py"
    with pytest.raises(AssertionError, match="has no row"):
        _row_of("nosuchmodule", rows)


def test_only_the_gridshim_helper_imports_click_and_only_output_or_cli_import_rich() -> None:
    """jsub, qsub, qstat and the other grid commands keep their SGE-exact parsers (design.md)."""
    for mod, names in modules().items():
        if any(n == "click" or n.startswith("click.") for n in names):
            assert mod == "cli/gridshim.py", mod
        if any(n == "rich" or n.startswith("rich.") for n in names):
            assert mod.startswith(("cli/", "output/")), mod


def test_the_submission_pipeline_is_pure_and_the_dialect_parsers_are_leaves() -> None:
    """submit.py decides without the API or rendering; each dialect's parser only parses."""
    mods = modules()
    ours = {m: {n for n in names if n.startswith("gridshim")} for m, names in mods.items()}
    # gridshim.quantity is a leaf (the one reading of memory values); the parsers stay free of decisions
    assert ours["sgeflags.py"] <= {"gridshim", "gridshim.errors", "gridshim.gridflags", "gridshim.quantity"}, \
        ours["sgeflags.py"]
    assert ours["gridflags.py"] <= {"gridshim", "gridshim.errors", "gridshim.quantity"}, ours["gridflags.py"]
    allowed = {"gridshim", "gridshim.gridflags", "gridshim.sgeflags", "gridshim.translate", "gridshim.model",
               "gridshim.config", "gridshim.errors"}
    assert ours["submit.py"] <= allowed, ours["submit.py"] - allowed
    # every command that submits goes through it; no command builds a JobRequest with translate() itself
    for mod in ("cli/jsub.py", "cli/qsub.py", "crontab.py", "migrate.py"):
        assert "gridshim.submit" in ours[mod], mod
    for mod in ("cli/jsub.py", "cli/qsub.py", "migrate.py"):
        assert "translate(" not in (SRC / mod).read_text(), mod


def test_gridshim_cluster_still_offers_every_name_the_single_module_had() -> None:
    """gridshim.cluster is a re-export of gridshim.kube: old imports keep working (names as of 5f123af)."""
    import gridshim.cluster as c

    names = ("KINDS PAGE DEFAULT_RETRY_SECONDS RETRY_STATUSES TIMEOUT MIN_ATTEMPT_TIMEOUT FIRST_DELAY MAX_DELAY "
             "FORBIDDEN_WINDOW _RBAC_MISSING TOKEN_ANNOTATION _SUFFIX_ALPHABET _GENERATED_BASE_MAX _TLS_CONFIG_REASONS "
             "retry_seconds _lenient_retry_seconds RETRY_BUDGET client_name parse_retry_after _Retry _one_line "
             "Credentials kubeconfig_paths KUBECONFIG_LIMIT _read_kubeconfig load_credentials _memfile _decode_cert "
             "cert_dates _dn _holds _LIST_META _continue_token _Prefetch KubeCluster ClusterConfigError ClusterError "
             "ConflictError ForbiddenError GridshimError JobExistsError JobNotFoundError QuotaExceededError Manifest "
             "tool_of").split()
    assert [n for n in names if not hasattr(c, n)] == []


def test_tasks_is_the_one_reader_of_arrays_and_holds_and_a_near_leaf() -> None:
    """tasks.py imports only labels and model; no other module spells its annotation names or parses ranges."""
    mods = modules()
    assert {n for n in mods["tasks.py"] if n.startswith("gridshim")} <= {"gridshim.model", "gridshim.render",
                                                                         "gridshim.render.labels"}
    for mod in mods:
        if mod == "tasks.py":
            continue
        text = (SRC / mod).read_text()
        for spelled in ('"batch.kubernetes.io/job-completion-index"', '/predecessors"', '/deleted-tasks"',
                        '/hold"', 'def range_to_dstring', 'def parse_ranges'):
            assert spelled not in text, f"{mod} spells {spelled}: use gridshim.tasks"

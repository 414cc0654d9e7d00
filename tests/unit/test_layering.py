"""The import rules of docs/design.md, read from the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

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


def test_pure_layers_do_not_import_the_edge() -> None:
    edge = ("gridshim.cli", "gridshim.cluster", "click", "rich")
    for mod, names in modules().items():
        if mod.split("/")[0] in ("render", "gridflags.py", "sgeflags.py", "submit.py", "translate.py", "status.py",
                                 "model.py", "config.py", "crontab.py", "migrate.py"):
            bad = [n for n in names if n.startswith(edge)]
            assert not bad, f"{mod} imports {bad}"


def test_only_cli_imports_click_and_only_output_or_cli_import_rich() -> None:
    for mod, names in modules().items():
        if any(n == "click" or n.startswith("click.") for n in names):
            assert mod.startswith("cli/"), mod
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

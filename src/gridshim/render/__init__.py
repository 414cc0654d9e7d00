"""Render layer: JobRequest → Kubernetes manifests (plain dicts). Imports model, errors, config only."""

from __future__ import annotations

from gridshim.config import Settings
from gridshim.model import JobKind, JobRequest, Manifest
from gridshim.render.manifests import cronjob, job


def render(req: JobRequest, settings: Settings) -> list[Manifest]:
    """The manifests for REQ: a CronJob for scheduled entries, else one Job (one-off and continuous)."""
    if req.kind is JobKind.SCHEDULED:
        return [cronjob(req, settings)]
    return [job(req, settings)]


def to_yaml(manifests: list[Manifest]) -> str:
    """Manifests as a YAML stream, without anchors (each document reads on its own)."""
    import yaml  # noqa: PLC0415

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data and not any(c in data for c in "\t\r") and data == data.rstrip(" ") else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)

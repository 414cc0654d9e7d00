"""kube/client.py `_each_item`: a LIST page decoded one item at a time (KubeCluster.list with a trim) reads
exactly what json.loads reads, and gives up (None: the page is decoded whole) on any other layout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gridshim.kube.client import _each_item

ITEMS = [{"metadata": {"name": f"j{i}", "annotations": {"a": "{\"x\":[1,2]} ]} ,"}}, "spec": {"n": [i, None, True]}}
         for i in range(4)]


def page(items: list[Any], **meta: Any) -> bytes:
    return json.dumps({"kind": "JobList", "apiVersion": "batch/v1", "metadata": meta, "items": items},
                      separators=(",", ":")).encode()


@pytest.mark.parametrize("items", [[], ITEMS[:1], ITEMS, ["é\u2028", 3, None]])
def test_as_json_loads(items: list[Any]) -> None:
    raw = page(items, resourceVersion="7", **({"continue": "abc"} if items else {}))
    seen: list[Any] = []
    out = _each_item(raw.decode(), lambda o: seen.append(o) or ("kept", o))
    assert out is not None
    kept, meta = out
    assert meta == json.loads(raw)["metadata"]
    assert kept == [("kept", o) for o in json.loads(raw)["items"]] and seen == json.loads(raw)["items"]


@pytest.mark.parametrize("raw", [
    b"", b"[]", b"not json", page(ITEMS)[:-1], page(ITEMS)[:-3] + b"]}", page(ITEMS) + b"x",
    page(ITEMS).replace(b'},{"metadata"', b'}{"metadata"', 1),
    json.dumps({"metadata": {}, "items": ITEMS}, indent=1).encode(),  # another layout: decoded whole instead
    json.dumps({"items": ITEMS, "metadata": {}}).encode(),
])
def test_other_layouts_are_left_to_json_loads(raw: bytes) -> None:
    assert _each_item(raw.decode(errors="replace"), lambda o: o) is None


def test_a_trim_error_is_not_swallowed() -> None:
    def boom(o: Any) -> Any:
        raise ValueError("trim failed")

    with pytest.raises(ValueError, match="trim failed"):
        _each_item(page(ITEMS).decode(), boom)

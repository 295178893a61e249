"""The tiny YAML emitter writes block YAML that reads back as the same data."""

from __future__ import annotations

import pytest
import yaml

from dualbus.shared.render_infra import dump_documents, dump_yaml, k8s_manifests
from dualbus.shared.topology import default_topology


def test_nested_mappings_and_sequences() -> None:
    """Mappings nest by indentation; sequence items of mappings start after a dash."""
    text = dump_yaml({"a": {"b": [1, {"c": "x", "d": [True, None]}], "e": {}}, "f": []})
    assert text == (
        'a:\n  b:\n    - 1\n    - c: "x"\n      d:\n        - true\n        - null\n  e: {}\nf: []\n'
    )


def test_strings_are_always_quoted() -> None:
    """Strings that YAML 1.1 would read as booleans or numbers stay strings."""
    assert dump_yaml({"answer": "no", "port": "8080", "key with space": "a\nb"}) == (
        'answer: "no"\nport: "8080"\n"key with space": "a\\nb"\n'
    )


def test_documents_are_separated() -> None:
    """Each document of a stream opens with ---."""
    assert dump_documents([{"a": 1}, {"b": 2}]) == "---\na: 1\n---\nb: 2\n"


def test_unknown_types_are_refused() -> None:
    """A value with no YAML form is a TypeError, not a silent str()."""
    with pytest.raises(TypeError, match="float"):
        dump_yaml({"ratio": 0.5})  # type: ignore[dict-item]


def test_manifests_round_trip_through_a_yaml_parser() -> None:
    """A real YAML parser reads the rendered manifests back as the data they were rendered from."""
    for docs in k8s_manifests(default_topology()).values():
        assert list(yaml.safe_load_all(dump_documents(docs))) == docs

"""The examples in the docstrings and stubs of rusttorch_queue run and print what they say."""

from __future__ import annotations

import ast
import doctest
from pathlib import Path

import pytest

import rusttorch_queue as rq


def test_module_docstring_examples() -> None:
    result = doctest.testmod(rq, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def stub_docstrings() -> list[tuple[str, str]]:
    stub = Path(rq.__file__).with_name("_native.pyi")
    tree = ast.parse(stub.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            doc = ast.get_docstring(node)
            if doc and ">>>" in doc:
                found.append((node.name, doc))
    return found


@pytest.mark.parametrize(("name", "doc"), stub_docstrings(), ids=lambda v: str(v)[:20])
def test_stub_docstring_examples(name: str, doc: str) -> None:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(doc, {}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0

"""YAML to plain Python, remembering the line of every mapping key and list item.

pySigma reports errors with their place in the file; so do we. `load` returns the data and a
map from a path (tuple of keys / indexes) to its 1-based line, so a validation error's `loc`
can be turned into a line number.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml


@dataclass
class LinedYaml:
    data: object
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, path: tuple) -> int:
        """Line of `path`, or of its nearest ancestor the file has (a missing key: its parent)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def load(text: str) -> LinedYaml:
    """Raises yaml.YAMLError (with its own mark) on a syntax error."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    result = LinedYaml(None)
    if node is None:
        return result
    result.lines[()] = node.start_mark.line + 1
    result.data = _convert(node, (), result.lines)
    return result


def _convert(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> object:
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                key = str(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, path + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            items.append(_convert(item, path + (index,), lines))
        return items
    return _scalar(node)


def _scalar(node: yaml.Node) -> object:
    if not isinstance(node, yaml.ScalarNode):
        return yaml.safe_load(yaml.serialize(node))
    return yaml.SafeLoader(" ").construct_object(node, deep=True)

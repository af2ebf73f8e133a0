"""JSON syntax errors name the place to fix in plain words (a trailing comma at the comma's line)."""

from __future__ import annotations

import pytest

from bosco.errors import ConfigError
from bosco.jsonfile import load_json


@pytest.mark.parametrize(("text", "message"), [
    ('{\n  "a": 1,\n}\n', "2:9: invalid JSON: trailing comma before '}' (JSON allows none)"),
    ('{"tags": ["x",\n\n]}', "1:14: invalid JSON: trailing comma before ']' (JSON allows none)"),
    ('{"a": 1\n "b": 2}', "1:8: invalid JSON: missing ',' after this value"),
    ('{\n  "tags"\n  ["x"]}', "2:9: invalid JSON: missing ':' after this key"),
    ('{"a": 1,\n  // note\n  "b": 2}', "2:3: invalid JSON: comments are not allowed in JSON"),
    ("{'a': 1}", "1:2: invalid JSON: strings and keys need double quotes, not single quotes"),
    ('{a: 1}', "1:2: invalid JSON: expected a key in double quotes"),
    ('{"a": True}', "1:7: invalid JSON: True is not a JSON value (strings need double quotes; the words are true, "
                    "false and null)"),
    ('{"a": [1, 2', "1:12: invalid JSON: the file ends too early (a value or a closing bracket is missing)"),
    ('{"a": "x}', '1:7: invalid JSON: a string is not closed (its closing " is missing)'),
    ('{"a": 1}}', "1:9: invalid JSON: text after the end of the JSON value (one value per file; a bracket closed "
                  "too early?)"),
    ('\n', "1:1: invalid JSON: the file is empty"),
])
def test_json_errors_point_at_the_place_to_fix(tmp_path, text, message):
    path = tmp_path / "bosco.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_json(path, ConfigError, "fix it")
    assert str(info.value) == f"{path}:{message}"

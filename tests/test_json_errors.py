"""JSON syntax errors name the place to fix in plain words (a trailing comma at the comma's line)."""

from __future__ import annotations

import pytest

from bosco.errors import ConfigError
from bosco.jsonfile import dotted, load_json, locate, members


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


def test_members_walks_every_member_in_document_order_with_its_position():
    text = '{\n "a": [1, {"b": "x\\"}", "c": []}, [ ], {}],\n "d" : {"e": null, "e": -2.5e3},\n "f": true\n}'
    walked = [(key, text[pos:pos + 4]) for key, pos in members(text)]
    assert walked == [
        (("a",), '"a":'), (("a", 0), "1, {"), (("a", 1), '{"b"'), (("a", 1, "b"), '"b":'), (("a", 1, "c"), '"c":'),
        (("a", 2), "[ ],"), (("a", 3), "{}],"), (("d",), '"d" '), (("d", "e"), '"e":'), (("d", "e"), '"e":'),
        (("f",), '"f":')]
    assert [dotted(key) for key, _ in members(text)][:5] == ["a", "a[0]", "a[1]", "a[1].b", "a[1].c"]
    assert locate(text, "d.e") == "3:9" and locate(text, "a[1].c") == "2:25" and locate(text, "z") is None
    assert [list(members(doc)) for doc in ("1", "[]", "{}", '"x"')] == [[], [], [], []]


def test_a_repeated_key_is_named_at_its_second_occurrence(tmp_path):
    path = tmp_path / "bosco.json"
    path.write_text('{\n  "cdn": {"port": 1},\n  "aws": {},\n  "cdn": {}\n}\n')
    with pytest.raises(ConfigError) as info:
        load_json(path, ConfigError, "fix it")
    assert str(info.value) == f'{path}:4:3: key "cdn" appears twice in one object; only one can count'

"""The rule table is data (framework/resolution/rules.toml): a malformed table must fail at
load, naming the rule and what is wrong, never judge a phone."""

from __future__ import annotations

import pytest

from framework.resolution import ResolutionInputError
from framework.resolution.model import Promise
from framework.resolution.profiles import RULES, load_rules

GOOD = """
[citations]
"T10-2" = "Admin Manual 2.2.8, 10.2.2, Table 10-2 (Option 66/67)"

[[rule]]
id = "T10-2/r2-host"
promise = "promised"
citation = "T10-2"
summary = "66 server address without protocol"
"""


def test_the_shipped_table_has_every_manual_row_with_its_citation() -> None:
    rows = [r for r in RULES if r.startswith("T10-2/r")]
    assert rows == [f"T10-2/r{n}-{s}" for n, s in enumerate(
        ["no-66", "host", "host-67-names", "protocol-host", "protocol-host-67-names",
         "66-names"], 1)]
    assert all(RULES[r].promise is Promise.PROMISED and "Table 10-2" in RULES[r].citation
               for r in rows)
    assert RULES["43/url-string"].citation.endswith("10.2.3 (Option 43)")


def test_a_good_table_loads() -> None:
    rule = load_rules(GOOD)["T10-2/r2-host"]
    assert rule.promise is Promise.PROMISED and rule.citation.startswith("Admin Manual")


@pytest.mark.parametrize(("change", "message"), [
    (('citation = "T10-2"', 'citation = "T10-9"'), "rule T10-2/r2-host: unknown citation 'T10-9'"),
    (('promise = "promised"', 'promise = "sure"'), "rule T10-2/r2-host: unknown promise 'sure'"),
    (('summary =', 'summery ='), "rule T10-2/r2-host: keys must be id, promise, citation, summary"),
])
def test_a_bad_row_is_named(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ResolutionInputError, match="rules.toml: " + message.replace("(", r"\(")):
        load_rules(GOOD.replace(*change))


def test_a_rule_twice_is_refused() -> None:
    twice = GOOD + GOOD.split("\n", 4)[-1].split("[[rule]]", 1)[0] + "[[rule]]" + \
        GOOD.split("[[rule]]", 1)[1]
    with pytest.raises(ResolutionInputError, match="rule T10-2/r2-host appears twice"):
        load_rules(twice)

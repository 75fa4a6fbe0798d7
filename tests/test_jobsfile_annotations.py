"""GitHub workflow-command annotations for validation problems."""

from __future__ import annotations

from cronplan.cli.annotations import escape_data, escape_property, github_annotations
from cronplan.errors import Problem


def test_format_and_escaping() -> None:
    problems = [
        Problem("jobs.json", 3, 7, "/jobs/0/nmae", "unknown field 'nmae' (did you mean 'name'?)"),
        Problem("dir,with:odd%name/jobs.json", 10, 1, "", "100% broken\r\nsecond line"),
    ]
    assert github_annotations(problems) == [
        "::error file=jobs.json,line=3,col=7::/jobs/0/nmae: unknown field 'nmae' (did you mean 'name'?)",
        "::error file=dir%2Cwith%3Aodd%25name/jobs.json,line=10,col=1::/: 100%25 broken%0D%0Asecond line",
    ]


def test_escape_rules() -> None:
    assert escape_data("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad:e,f"
    assert escape_property("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad%3Ae%2Cf"
    # % first, so an escape is never escaped twice
    assert escape_data("%0A") == "%250A"


def test_no_problems_no_lines() -> None:
    assert github_annotations([]) == []

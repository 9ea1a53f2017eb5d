"""The kind registry: the facts of each kind and the reference walker."""

from __future__ import annotations

import pytest

from channelsync import kinds


def test_builtin_kinds_in_the_order_users_read_them() -> None:
    assert kinds.names() == ("EmailChannel", "SmtpServer", "EmailScript", "Agent")
    assert kinds.builtin_names() == {
        "SmtpServer": "VCC Internal",
        "EmailScript": "Default Email Script",
    }
    assert [k.name for k in kinds.all_kinds() if k.tested] == [
        "EmailChannel",
        "SmtpServer",
        "Agent",
    ]


def test_apply_order_puts_referred_kinds_first() -> None:
    assert kinds.dependency_order() == ("EmailScript", "SmtpServer", "EmailChannel", "Agent")


def test_the_walker_finds_every_user_of_a_resource() -> None:
    resources = [
        ("EmailChannel", "B", {"script": "S", "outgoing": {"server": "R"}}),
        ("EmailChannel", "A", {"script": "S"}),
        ("EmailChannel", "C", {"script": "Other", "outgoing": None}),
        ("SmtpServer", "R", {"host": "smtp.example.com"}),
    ]
    assert kinds.users_of(resources, "EmailScript", "S") == [
        ("EmailChannel", "A", ("script",)),
        ("EmailChannel", "B", ("script",)),
    ]
    assert kinds.users_of(resources, "SmtpServer", "R") == [
        ("EmailChannel", "B", ("outgoing", "server"))
    ]
    assert kinds.referring_kinds("SmtpServer") == [
        ("EmailChannel", ("outgoing", "server")),
        ("Agent", ("outgoing", "server")),
    ]


def test_a_reference_to_an_unregistered_kind_or_a_cycle_is_refused() -> None:
    console = kinds.Console("thing", "open things", "add a thing")
    kinds.register(kinds.Kind("Loop", "loops", "x:Y", console, references={("a",): "Knot"}))
    try:
        with pytest.raises(ValueError, match="refers to kind Knot, which is not registered"):
            kinds.dependency_order()
        kinds.register(kinds.Kind("Knot", "knots", "x:Y", console, references={("b",): "Loop"}))
        with pytest.raises(ValueError, match="form a cycle"):
            kinds.dependency_order()
    finally:
        kinds.unregister("Loop")
        kinds.unregister("Knot")
    assert kinds.names() == ("EmailChannel", "SmtpServer", "EmailScript", "Agent")

import pytest

from statemachine.durations import parse_duration


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("24h", 86400),
        ("3d", 259200),
        ("2w", 1209600),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (" 10s ", 10),
        (0, 0),
        (45, 45),
        (2.5, 2.5),
        ("90", 90),
        ("0.25", 0.25),
        ("PT1S", 1),
        ("P3D", 259200),
        ("PT1H30M", 5400),
        ("P1DT2H", 93600),
        ("PT0.5S", 0.5),
        ("PT1,5S", 1.5),
        ("P1W", 604800),
        ("pt2m", 120),
    ],
)
def test_valid_durations(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)
    assert isinstance(parse_duration(value), float)


@pytest.mark.parametrize(
    "value",
    ["3 days", "", "P", "PT", "P1H", "PT1D", "1x", "s", "-5s", -1, "nan", float("inf"), True, None, [], "PT1H2"],
)
def test_invalid_durations(value):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_years_and_months_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="no fixed length"):
        parse_duration("P1M")
    with pytest.raises(ValueError, match="no fixed length"):
        parse_duration("P1Y2D")


def test_message_shows_the_value_and_examples():
    with pytest.raises(ValueError) as info:
        parse_duration("3 days")
    assert "'3 days'" in str(info.value)
    assert "30s" in str(info.value)

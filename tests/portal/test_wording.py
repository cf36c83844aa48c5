"""Messages built from names read as English: "payments' working hours", never "payments's"."""
from core.english import possessive


def test_a_name_ending_in_s_takes_the_apostrophe_alone():
    assert possessive("payments") == "payments'"
    assert possessive("dev") == "dev's"
    assert possessive("OPS") == "OPS'"


def test_times_are_shown_in_one_format_with_their_zone(demo, changes, client_as):
    import re

    body = client_as(demo.rev).get(f"/changes/{changes.retry_production.pk}/").content.decode()
    shown = re.findall(r"<time datetime=\"[^\"]+\">([^<]+)</time>", body)

    assert shown, "the change page shows times"
    for text in shown:
        assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC", text), text

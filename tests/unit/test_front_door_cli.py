"""`loopline resume --token T`: a link's token is base64url, and one in 64 starts with "-"."""
from __future__ import annotations

from loopline.cli import build_parser
from loopline.front_door_cli import glued_values

TOKEN = "-pxQPjgtnEXgkPHNx19h69ecJ_viAPFkIlsAifwBiQs"  # the token CI drew when argparse refused it


def parsed(*argv: str):
    return build_parser().parse_args(glued_values(list(argv)))


def test_a_token_that_starts_with_a_dash_is_the_tokens_value():
    args = parsed("resume", "--token", TOKEN, "--decision", "DENIED")
    assert (args.token, args.decision, args.run_id) == (TOKEN, "DENIED", None)


def test_a_token_of_two_dashes_is_still_a_value():
    assert parsed("resume", "--token", "--" + TOKEN[2:], "--decision", "APPROVED").token == "--" + TOKEN[2:]


def test_an_ordinary_token_and_the_equals_form_are_unchanged():
    assert parsed("resume", "--token", "abc", "--decision", "DENIED").token == "abc"
    assert parsed("resume", f"--token={TOKEN}", "--decision", "DENIED").token == TOKEN


def test_a_left_out_token_is_not_filled_with_the_next_option():
    assert glued_values(["resume", "--token", "--decision", "DENIED"]) == ["resume", "--token", "--decision", "DENIED"]


def test_main_answers_a_dash_token_without_a_usage_error(capsys):
    from loopline.cli import main

    # no server listens on port 9: the command gets past parsing and fails to connect (exit 2, one line)
    code = main(["resume", "--token", TOKEN, "--decision", "DENIED", "--url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "expected one argument" not in err and "usage:" not in err

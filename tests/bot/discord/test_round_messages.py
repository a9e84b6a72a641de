"""What the bot writes about a round, within Discord's limits."""

from bot.discord.votes import describe_votes
from core.crowd import Ballot


def test_a_round_summary_counts_the_votes_so_a_thousand_voters_fit_in_one_message():
    crowd = [Ballot(f"user:{i}", rating=float(i % 10 + 1)) for i in range(1000)]
    text = describe_votes("rating", [*crowd, Ballot("user:x", rating=7.0)])
    assert text.startswith("100× 1, 100× 2, ") and "101× 7" in text and len(text) < 200
    assert describe_votes("rating", [Ballot("user:1", rating=8.0), Ballot("user:2", rating=3.0)]) == "3, 8"
    assert describe_votes("rating", []) == "none yet"

"""What the bot writes about a round, within Discord's limits."""

from bot.discord.votes import describe_votes
from core.crowd import Ballot


def test_a_round_summary_counts_the_votes_so_a_thousand_voters_fit_in_one_message():
    crowd = [Ballot(f"user:{i}", rating=float(i % 10 + 1)) for i in range(1000)]
    text = describe_votes("rating", [*crowd, Ballot("user:x", rating=7.0)])
    assert text.startswith("100× 1, 100× 2, ") and "101× 7" in text and len(text) < 200
    assert describe_votes("rating", [Ballot("user:1", rating=8.0), Ballot("user:2", rating=3.0)]) == "3, 8"
    assert describe_votes("rating", []) == "none yet"


def test_a_posts_quorum_reads_as_a_count_of_people_with_its_verb_agreeing():
    """Found by a trial: a quorum of 1 read "Voting closes <t:…:R> or when 1 have voted"."""
    from bot.discord.publisher import deadline
    from core.engine import SessionSpec

    assert deadline(SessionSpec(quorum=1), 60.0) == "closes <t:60:R> or when 1 person has voted"
    assert deadline(SessionSpec(quorum=3), 60.0) == "closes <t:60:R> or when 3 people have voted"
    assert deadline(SessionSpec(), 60.0) == "closes <t:60:R>"

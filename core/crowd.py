"""Turning a crowd's ballots into a reward. Pure functions over immutable ballots.

Ratings: `robust_rating` puts each voter on the crowd's scale (their bias and spread, learned from their
history), weighs them by how much they have agreed with the crowd, counts a bloc of voters who always vote
alike as one voter, and returns a `CrowdEstimate` that the engine shrinks toward the score of the track
the edit started from (a Bayesian average, so one vote is not a verdict). A/B votes (`ab_tally`): each
edit's chance of beating the track before, from the votes weighted by the same kind of trust. Aspects:
`compound_rating` combines musicality, novelty and coherence.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from core.words import quoted

RATING_MIN, RATING_MAX = 1, 10
CHOICES = ("a", "b", "both", "neither")
# Typed short forms of a choice (none can be read as another: only "neither" starts with n).
CHOICE_ABBREVIATIONS = {"n": "neither"}
NEUTRAL_RATING = (RATING_MIN + RATING_MAX) / 2

# voter -> [(their rating, their round's id, the reward their round got), ...], newest first. Rounds are told
# apart by their id: two rounds can end with the same reward (a small crowd's 6 and 8, then 8 and 6).
History = Mapping[str, Sequence[tuple[float, int, float]]]

# How much evidence the prior (the score of the track an edit started from) is worth, in voters.
PRIOR_VOTES = 2.0
# Rounds of history after which a voter's own record weighs as much as the benefit of the doubt.
PSEUDO_ROUNDS = 5
MIN_ROUNDS = 3  # fewer rated rounds say nothing about a voter's bias, spread or agreement
FULL_AGREEMENT = 0.5  # a voter whose ratings correlate this well with the crowd's counts fully
SPREAD_LIMITS = (0.5, 2.0)  # normalisation stretches or squeezes a voter's deviations at most this much
# Agreement is measured against the others' plain mean, then again against the others weighted by the trust
# that gave (bench-tuned: 1, 2 and 3 passes tried): attackers pollute the plain mean, so noisy honest voters
# of different tastes seem to agree weakly with it and would lose trust to an attack.
AGREEMENT_PASSES = 2
BLOC_ROUNDS = 5  # voting identically in this many shared rounds (and now) makes voters one bloc
# A rating further than this from the round's median (in robust standard deviations, at least one point
# each) counts as if it were this far: one rating can pull the result only so much.
OUTLIER_DISTANCE = 2.0


@dataclass(frozen=True, slots=True)
class Ballot:
    """One voter's standing vote in a round (the latest one; retracted votes are not ballots)."""

    voter: str
    rating: float | None = None
    choice: str | None = None


def check_rating(value: float) -> float:
    """`value` as a float; ValueError if it is not a rating (1-10), showing it unrounded (10.000001 is not "10").
    A rating a person typed is read by `parse_rating`, which quotes the text itself."""
    if not RATING_MIN <= value <= RATING_MAX:
        raise ValueError(f"a rating is a number from {RATING_MIN} to {RATING_MAX}, not {value:.15g}")
    return float(value)


# A typed rating: ASCII digits with an optional fraction ("7", "7.5", ".5"). float() also reads "1e1", "1_0" and
# other scripts' digits ("١٠") as 10, which no one types as a rating and few would read as one.
TYPED_RATING = re.compile(r"\s*(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*")


# A number written with a decimal comma ("7,5"), as many languages write 7.5.
_DECIMAL_COMMA = re.compile(r"\s*([0-9]+),([0-9]+)\s*")


def decimal_comma(text: str) -> str | None:
    """`text` written with a point ("7,5" -> "7.5") when it is a rating (1-10) written with a decimal comma; else None."""
    match = _DECIMAL_COMMA.fullmatch(text)
    point = match and f"{match[1]}.{match[2]}"
    return point if point and RATING_MIN <= float(point) <= RATING_MAX else None


def parse_rating(text: str) -> float:
    """A typed rating (1-10, written as TYPED_RATING) as a float; ValueError if it is none, quoting `text` as typed
    (spaces around it dropped): a float would show "10.00000000000001" as 10, "0.0000001" as 1e-07 and "1e400" as inf.
    A rating written with a decimal comma is told the same number with a point (decimal_comma)."""
    value = float(text) if TYPED_RATING.fullmatch(text) else math.nan
    if not RATING_MIN <= value <= RATING_MAX:
        point = decimal_comma(text)
        how = f" written with a decimal point, such as {point}" if point else ""
        raise ValueError(f"a rating is a number from {RATING_MIN} to {RATING_MAX}{how}, not {quoted(text)}")
    return value


def rating_text(rating: float) -> str:
    """A person's rating (or a compound of aspects), or a track's score (on the same 1-10 scale), as every front end
    shows it: at most two decimals, trailing zeros dropped ("5", "7.5", "6.25", 19/3 as "6.33"), whatever decimals
    it was typed with, so one number reads alike wherever it appears. Halves round up, as
    people round the number they typed: 7.555 is "7.56" (a float holds it as 7.55499..., which %.2f shows as 7.55)."""
    shown = Decimal(repr(rating)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{shown:f}".rstrip("0").rstrip(".")


def rating_comparison(rating: float, other: float) -> str:
    """How `rating` compares with `other` as both read (`rating_text`), in words for a line that shows them both:
    "below", "above", or "level with" when they read alike (19/3 and 6.334 both read 6.33), so no line says
    "6.33, below the 6.33"."""
    if rating_text(rating) == rating_text(other):
        return "level with"
    return "below" if rating < other else "above"


def check_choice(choice: str) -> str:
    """A typed A/B vote, normalised: one of CHOICES (or an abbreviation of one); ValueError otherwise."""
    normalised = choice.strip().lower()
    normalised = CHOICE_ABBREVIATIONS.get(normalised, normalised)
    if normalised not in CHOICES:
        raise ValueError(f"a vote is one of {', '.join(CHOICES)} (or n), not {quoted(choice)}")
    return normalised


def mean_rating(ballots: Sequence[Ballot], history: History | None = None) -> float | None:
    """The plain mean of the standing ratings (history unused)."""
    ratings = [b.rating for b in ballots if b.rating is not None]
    return sum(ratings) / len(ratings) if ratings else None


# --- robust ratings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrowdEstimate:
    """The crowd's verdict before any prior: a weighted mean rating and how many voters' worth it rests on."""

    rating: float
    weight: float
    # What moved `rating` away from what the same votes give without it (ADJUSTMENTS' keys), each only if it did:
    # a summary's "because" is named only when it is true of that round (core.engine.verdict_opening).
    adjustments: tuple[str, ...] = ()
    # The ratings as given (1-10) that counted less for being far from the others ("outlier"), so that a summary names
    # them: a trial read "3 voted (1, 9, 10) ... count as 8.91/10" as the 1 ignored.
    far: tuple[float, ...] = ()

    def shrunk_toward(self, prior: float | None, prior_votes: float = PRIOR_VOTES) -> float:
        """The Bayesian average: the prior counts as `prior_votes` voters. No prior, no shrinking. Written as the prior
        moved part of the way toward the rating, so that a rating equal to the prior gives the prior exactly and one
        above it no less: the weighted mean's rounding error (5 with 5: 5.000000000000001) undid an edit rated level
        with the track before (the keep rule compares the two)."""
        if prior is None or prior_votes <= 0:
            return self.rating
        return prior + self.weight * (self.rating - prior) / (self.weight + prior_votes)


@dataclass(frozen=True, slots=True)
class VoterProfile:
    """What a voter's history says about them, already shrunk toward 'an ordinary voter' by its length."""

    rounds: int
    mean: float  # their usual rating
    crowd_mean: float  # the others' usual rating in the same rounds
    spread: float  # standard deviation of their ratings
    agreement: float  # correlation of their ratings with the others' (0 if either never varies)
    trust: float  # 0..1: how much their rating counts

    @property
    def confidence(self) -> float:
        """How far to trust the normalisation learned from this history (0 for a newcomer)."""
        return self.rounds / (self.rounds + PSEUDO_ROUNDS)


NEWCOMER = VoterProfile(0, NEUTRAL_RATING, NEUTRAL_RATING, 0.0, 0.0, 1.0)


def voter_profiles(history: History, bloc_size: Mapping[str, int] | None = None, solo: bool = True) -> dict[str, VoterProfile]:
    """Each voter's profile, measured against the *other* voters of `history` in the same past rounds
    (a voter who rated a round alone is compared with its reward, or with `solo` False the round is left
    out of their record).

    Agreement compares a voter's ratings with the others' plain mean, not with the rewards this aggregator
    produced: measured against its own output, whoever it trusted would seem to agree and stay trusted.
    Then (AGREEMENT_PASSES) it is measured again against the others weighted by the trust the plain
    comparison gave, each voter still left out of their own comparison, so trolls and brigaders who drag
    the plain mean away cannot make honest voters look like they disagree.
    Bias compares with the others weighted as in the verdict (trust, shared within a bloc), so that a
    brigade does not set the scale.
    """
    bloc_size = bloc_size or {}
    rounds: dict[int, dict[str, float]] = defaultdict(dict)
    for voter, pairs in history.items():
        for rating, round_id, _ in pairs:
            rounds[round_id][voter] = rating

    def compared_with_others(weight: Mapping[str, float]) -> dict[str, list[tuple[float, float]]]:
        """voter -> [(their rating, the others' weighted mean rating that round)]."""
        sums = {}
        for round_id, ratings in rounds.items():
            sums[round_id] = (
                sum(weight.get(v, 1.0) for v in ratings),
                sum(weight.get(v, 1.0) * r for v, r in ratings.items()),
            )
        compared = {}
        for voter, pairs in history.items():
            own = weight.get(voter, 1.0)
            compared[voter] = []
            for rating, round_id, reward in pairs:
                total, weighted = sums[round_id]
                rest = total - own
                if rest > 1e-9:
                    compared[voter].append((rating, (weighted - own * rating) / rest))
                elif solo:
                    compared[voter].append((rating, reward))
        return compared

    weights: dict[str, float] = {}  # the first pass: everyone counts alike (the plain mean)
    for _ in range(AGREEMENT_PASSES):
        compared = compared_with_others(weights)
        known = {v: _agreement_and_trust(compared[v]) for v in history if len(compared[v]) >= MIN_ROUNDS}
        weights = {v: t / bloc_size.get(v, 1) for v, (_, t) in known.items()}
    weighted = compared_with_others(weights)
    profiles = {}
    for voter, pairs in history.items():
        if voter not in known:
            profiles[voter] = NEWCOMER
            continue
        ratings = [r for r, _ in weighted[voter]]
        crowd = [o for _, o in weighted[voter]]
        profiles[voter] = VoterProfile(
            len(ratings), statistics.fmean(ratings), statistics.fmean(crowd), statistics.pstdev(ratings), *known[voter]
        )
    return profiles


def _agreement_and_trust(compared: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(agreement, trust) from [(their rating, the others' mean)]: the benefit of the doubt (trust 1)
    fades as evidence accumulates, and disagreeing counts as zero."""
    agreement = _correlation([r for r, _ in compared], [o for _, o in compared])
    return agreement, trust_from(agreement, len(compared))


def trust_from(agreement: float, rounds: int, full_agreement: float = FULL_AGREEMENT) -> float:
    """Trust 0-1 from an agreement measured over `rounds` rounds: the benefit of the doubt (trust 1, worth
    PSEUDO_ROUNDS rounds) fades as evidence accumulates; agreeing `full_agreement` or more counts fully,
    disagreeing counts as zero."""
    own = min(1.0, max(0.0, agreement) / full_agreement)
    return (PSEUDO_ROUNDS + rounds * own) / (PSEUDO_ROUNDS + rounds)


def _correlation(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 1e-12 and syy > 1e-12 else 0.0


def normalised(rating: float, profile: VoterProfile, typical_spread: float | None) -> float:
    """The rating on the crowd's scale: minus the voter's usual excess over the crowd, with their deviations
    stretched to a typical voter's spread; blended with the raw rating while their history is short."""
    if profile.rounds == 0:
        return rating
    stretch = 1.0
    if typical_spread and profile.spread > 1e-9:
        stretch = min(SPREAD_LIMITS[1], max(SPREAD_LIMITS[0], typical_spread / profile.spread))
    on_crowd_scale = profile.crowd_mean + (rating - profile.mean) * stretch
    c = profile.confidence
    return min(RATING_MAX, max(RATING_MIN, (1 - c) * rating + c * on_crowd_scale))


def blocs(ballots: Sequence[Ballot], history: History | ChoiceHistory, rounds: int = BLOC_ROUNDS) -> dict[str, int]:
    """Each voter's bloc size: voters who vote this round identically and voted every round they shared
    (at least `rounds`) identically too act as one voter. `history`: voter -> [(their rating or A/B
    choice, the round's id, its reward)]."""
    size = {b.voter: 1 for b in ballots}
    by_vote: dict[object, list[str]] = defaultdict(list)
    for b in ballots:
        vote = b.rating if b.rating is not None else b.choice
        if vote is not None:
            by_vote[vote].append(b.voter)
    for voters in by_vote.values():
        if len(voters) < 2:
            continue
        records = {v: {round_id: vote for vote, round_id, _ in history.get(v, ())} for v in voters}
        groups: list[list[str]] = []
        for voter in voters:
            for group in groups:
                if _always_alike(records[voter], records[group[0]], rounds):
                    group.append(voter)
                    break
            else:
                groups.append([voter])
        for group in groups:
            for voter in group:
                size[voter] = len(group)
    return size


def _always_alike(a: Mapping[int, object], b: Mapping[int, object], rounds: int) -> bool:
    shared = a.keys() & b.keys()
    return len(shared) >= rounds and all(a[k] == b[k] for k in shared)


def outlier_weights(values: Sequence[float]) -> list[float]:
    """Huber weights: 1 near the median, shrinking so that a far rating pulls as much as one at the limit."""
    center = statistics.median(values)
    spread = max(1.0, 1.4826 * statistics.median(abs(v - center) for v in values))
    limit = OUTLIER_DISTANCE * spread
    return [1.0 if abs(v - center) <= limit else limit / abs(v - center) for v in values]


def robust_rating(ballots: Sequence[Ballot], history: History | None = None) -> CrowdEstimate | None:
    """The default aggregator: the crowd's weighted mean of normalised ratings (see the module docstring),
    or None without ratings. The engine shrinks it toward the score of the track the edit started from."""
    history = history or {}
    rated = [b for b in ballots if b.rating is not None]
    if not rated:
        return None
    bloc_size = blocs(rated, history)
    profiles = voter_profiles({b.voter: history.get(b.voter, ()) for b in rated}, bloc_size)
    known_spreads = [p.spread for p in profiles.values() if p.rounds and p.spread > 1e-9]
    typical_spread = statistics.median(known_spreads) if known_spreads else None
    values = [normalised(b.rating, profiles[b.voter], typical_spread) for b in rated]
    trust = [profiles[b.voter].trust for b in rated]
    shared = [1 / bloc_size[b.voter] for b in rated]
    outliers = outlier_weights(values)
    weights = [t * s * h for t, s, h in zip(trust, shared, outliers)]
    rating = _weighted_mean(values, weights)
    # Each adjustment left out in turn: the ones whose absence changes the rating are what moved it.
    raw = [b.rating for b in rated]
    without = {
        "scale": _weighted_mean(raw, [t * s * h for t, s, h in zip(trust, shared, outlier_weights(raw))]),
        "trust": _weighted_mean(values, [s * h for s, h in zip(shared, outlier_weights(values))]),
        "bloc": _weighted_mean(values, [t * h for t, h in zip(trust, outlier_weights(values))]),
        "outlier": _weighted_mean(values, [t * s for t, s in zip(trust, shared)]),
    }
    moved = tuple(name for name in ADJUSTMENTS if abs(without[name] - rating) > 1e-9)
    far = tuple(sorted(b.rating for b, h in zip(rated, outliers) if h < 1)) if "outlier" in moved else ()
    return CrowdEstimate(rating, sum(weights), moved, far)  # the weights' sum is positive: trust never reaches 0


# How each adjustment of robust_rating reads in a summary, in a newcomer's words (a trial: "put on one scale and weighed
# by trust" explained nothing).
ADJUSTMENTS = {
    "outlier": "a rating far from the others counts less",
    "scale": "each voter's usual ratings are allowed for",
    "trust": "a voter whose past ratings did not follow the others' counts less",
    "bloc": "voters who always vote alike count as one",
}


def _weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    if len(set(values)) == 1:  # exact, so a unanimous crowd gets exactly its rating
        return values[0]
    return sum(w * v for w, v in zip(weights, values)) / sum(weights)


def typical_reward(history: History) -> float:
    """The mean reward of the recent rounds in these voters' history: what a track nobody has rated yet
    is assumed to score. The neutral rating when there is no history."""
    rewards = {round_id: reward for pairs in history.values() for _, round_id, reward in pairs}.values()
    return statistics.fmean(rewards) if rewards else NEUTRAL_RATING


# --- A/B votes ----------------------------------------------------------------------------------------

PRIOR_GAMES = 1.0  # one virtual drawn game between each edit and the track before, so one vote is not a verdict
# An A/B vote as two numbers, so that a voter's agreement with the others is measured as for ratings
# (voter_profiles): their preference for A over B, and whether an edit beat the track before for them.
AB_VALUES: Mapping[str, tuple[float, float]] = {"a": (1.0, 1.0), "b": (-1.0, 1.0), "both": (0.0, 1.0), "neither": (0.0, -1.0)}

# A/B votes agree less than ratings (four choices carry less than a number), so a voter counts fully at a
# lower agreement than FULL_AGREEMENT (bench-tuned: 0.1, 0.2, 0.3 and 0.5 tried).
AB_FULL_AGREEMENT = 0.2
# Four choices make chance identity common: two honest voters of one taste often vote alike five rounds
# running, so A/B voters are a bloc only after twice the rounds ratings need.
AB_BLOC_ROUNDS = 2 * BLOC_ROUNDS
AB_SAME_ROUNDS = 8  # the same A/B vote this many rounds running, and now, says nothing about the music
# voter -> [(their A/B choice, their round's id, the reward its winner got), ...], newest first
ChoiceHistory = Mapping[str, Sequence[tuple[str, int, float]]]


def ab_weights(ballots: Sequence[Ballot], history: ChoiceHistory | None = None) -> dict[str, float]:
    """Each A/B voter's weight, 0-1: their trust, from how their past A/B votes agreed with the others'
    (`voter_profiles` on each of `AB_VALUES`' two numbers, averaged, over the rounds they shared with
    others), shared within a bloc of voters who always choose alike (`blocs`, over AB_BLOC_ROUNDS). A
    newcomer counts fully (the benefit of the doubt, as for ratings). A voter who gave this same vote in
    each of their last AB_SAME_ROUNDS rounds counts 0 while anyone else's vote counts: a vote that never
    changes says nothing about what was played (as a rating that is always 10 says nothing once
    normalised), and agreement cannot tell it from an honest voter's when they two vote alone."""
    history = history or {}
    voted = [b for b in ballots if b.choice in CHOICES]
    bloc_size = blocs(voted, history, AB_BLOC_ROUNDS)
    agreements: dict[str, list[float]] = defaultdict(list)
    shared: dict[str, int] = {}
    for item in (0, 1):
        numbers = {
            b.voter: [(AB_VALUES[choice][item], round_id, reward) for choice, round_id, reward in history.get(b.voter, ())]
            for b in voted
        }
        # A round a voter chose in alone has no others to agree with: it is left out (solo=False), and
        # it is not counted as evidence either.
        for voter, profile in voter_profiles(numbers, bloc_size, solo=False).items():
            if profile.rounds:
                agreements[voter].append(profile.agreement)
                shared[voter] = profile.rounds
    weights = {
        b.voter: (trust_from(statistics.fmean(agreements[b.voter]), shared[b.voter], AB_FULL_AGREEMENT) if b.voter in shared else 1.0)
        / bloc_size[b.voter]
        for b in voted
    }
    unchanging = {
        b.voter for b in voted
        if [choice for choice, _, _ in history.get(b.voter, ())[:AB_SAME_ROUNDS]] == [b.choice] * AB_SAME_ROUNDS
    }
    if unchanging and len(unchanging) < len(weights):
        weights.update({voter: 0.0 for voter in unchanging})
    return weights


@dataclass(frozen=True, slots=True)
class AbTally:
    """An A/B round's votes, counted: each edit's reward (1-10, see `ab_rewards`) and how many voters'
    worth of votes compared it with the track before (0: nothing is known of it beyond the prior); and
    between the two edits, the chance that A is preferred to B (0-1) from `pair_games` voters' worth of
    votes that compared them."""

    rewards: tuple[float, float]
    games: tuple[float, float]
    a_over_b: float = 0.5
    pair_games: float = 0.0


def ab_tally(ballots: Sequence[Ballot], history: ChoiceHistory | None = None) -> AbTally | None:
    """Each edit's reward on the 1-10 scale: 1 + 9 x its chance of beating the track it was edited from,
    or None without A/B votes.

    A vote is the voter's top choice among the three tracks ("both": A and B tie on top; "neither": the
    track before is on top). Broken into the pairwise comparisons it implies with the track before (rank
    breaking; Azari Soufiani, Parkes and Xia, "Computing parametric ranking models via rank-breaking",
    ICML 2014), "a" and "both" are wins of A over the track before, "neither" a win of the track before over
    each edit, and "b" says nothing of A against it. The chance is the Bradley-Terry estimate of that one
    pair, wins / games, each vote weighted by its voter's trust (`ab_weights`), with PRIOR_GAMES drawn games.
    Between the edits, "a" is a win of A over B, "b" of B over A, "both" a drawn game and "neither" says
    nothing of A against B.
    """
    weights = ab_weights(ballots, history)
    if not weights:
        return None
    votes = [(b.choice, weights[b.voter]) for b in ballots if b.voter in weights]
    against = sum(w for choice, w in votes if choice == "neither")

    def counted(side: str) -> tuple[float, float]:
        wins = sum(w for choice, w in votes if choice in (side, "both"))
        chance = (wins + PRIOR_GAMES / 2) / (wins + against + PRIOR_GAMES)
        return RATING_MIN + (RATING_MAX - RATING_MIN) * chance, wins + against

    (reward_a, games_a), (reward_b, games_b) = counted("a"), counted("b")
    a_wins, b_wins, draws = (sum(w for choice, w in votes if choice == side) for side in ("a", "b", "both"))
    pair_games = a_wins + b_wins + draws
    a_over_b = (a_wins + draws / 2 + PRIOR_GAMES / 2) / (pair_games + PRIOR_GAMES)
    return AbTally((reward_a, reward_b), (games_a, games_b), a_over_b, pair_games)


def ab_keep_margin(games: float) -> float:
    """How far (rating points, on `ab_tally`'s 1 + 9 x chance scale) the winning edit's reward must exceed
    the 5.5 of "as good as the track before" for the edit to stay, given the `games` (voters' worth of votes)
    that compared it with the track before.

    The winner is the better of two noisy estimates, so even two edits no different from the track before
    give it a chance above one half: by the expected maximum of two independent normal estimates, sd / sqrt(pi)
    (sd = 0.5 / sqrt(games + PRIOR_GAMES), a fair coin's win rate over that many games). Keeping at 5.5 kept
    62% of the winners the judge scored worse (builtin crowd, 16 seeds); the margin shrinks as votes grow.
    """
    return (RATING_MAX - RATING_MIN) * 0.5 / math.sqrt(games + PRIOR_GAMES) / math.sqrt(math.pi)


def ab_rewards(ballots: Sequence[Ballot], history: ChoiceHistory | None = None) -> tuple[float, float] | None:
    """Each edit's reward (see `ab_tally`), or None without A/B votes."""
    tally = ab_tally(ballots, history)
    return tally.rewards if tally is not None else None


# --- aspects ------------------------------------------------------------------------------------------

ASPECTS = ("musicality", "novelty", "coherence")
# Musicality first: novelty alone rewards change for its own sake, coherence alone rewards repetition.
ASPECT_WEIGHTS: Mapping[str, float] = {"musicality": 0.5, "novelty": 0.25, "coherence": 0.25}


def compound_rating(aspects: Mapping[str, float], weights: Mapping[str, float] = ASPECT_WEIGHTS) -> float:
    """One 1-10 rating from per-aspect ratings (the paper's open question 1): their weighted mean over
    the aspects the voter rated, so a voter who skips one is not counted as rating it low."""
    unknown = set(aspects) - set(weights)
    if unknown:
        raise ValueError(f"unknown aspect(s) {', '.join(sorted(unknown))}; rate {', '.join(weights)}")
    if not aspects:
        raise ValueError(f"rate at least one of {', '.join(weights)}")
    total = sum(weights[name] for name in aspects)
    if total <= 0:
        raise ValueError("the rated aspects all have weight 0")
    return sum(weights[name] * check_rating(value) for name, value in aspects.items()) / total


def weighting_text(weights: Mapping[str, float] = ASPECT_WEIGHTS) -> str:
    """How `compound_rating` weighs the aspects, in words, against the lightest: "musicality counted twice"."""
    lightest = min(weights.values())
    times = {1: "once", 2: "twice", 3: "three times"}
    heavier = [(name, weight / lightest) for name, weight in weights.items() if weight > lightest]
    return ", ".join(f"{name} counted {times.get(ratio, f'{ratio:g} times')}" for name, ratio in heavier) or "all alike"


def aspects_text(aspects: Mapping[str, float]) -> str:
    """How a voter's aspect ratings made their rating, in words: one number for all ("7 for each of musicality,
    novelty and coherence"), or each with how they were combined ("musicality 7, novelty 5, coherence 6: their
    mean with musicality counted twice")."""
    values = set(aspects.values())
    if len(values) == 1 and len(aspects) > 1:
        *first, last = aspects
        return f"{rating_text(values.pop())} for each of {', '.join(first)} and {last}"
    rated = ", ".join(f"{name} {rating_text(value)}" for name, value in aspects.items())
    return f"{rated}: their mean with {weighting_text()}" if len(aspects) > 1 else rated


def typed_parts(text: str) -> list[str]:
    """The numbers (or words) typed on one line, apart: separated by spaces or commas ("7 5 6", "7,5,6")."""
    return text.replace(",", " ").split()


def parse_aspects(text: str) -> dict[str, float]:
    """Per-aspect ratings typed on one line: a number for each of ASPECTS in order ("7 5 6", commas
    allowed: typed_parts), or one number for all of them."""
    parts = typed_parts(text)
    wrong = ValueError(f"rate {', '.join(ASPECTS)} from 1 to 10, such as '7 5 6' (or one number for all three), not {quoted(text)}")
    if len(parts) not in (1, len(ASPECTS)):
        if point := decimal_comma(text):  # "7,5": two aspects, or 7.5 written with a comma
            raise ValueError(f"{wrong}; a decimal is written with a point, such as {point}")
        raise wrong
    try:
        for part in parts:
            float(part)  # a word is refused with the whole line; a number out of range with its aspect
    except ValueError:
        raise wrong from None
    typed = dict(zip(ASPECTS, parts * len(ASPECTS) if len(parts) == 1 else parts))
    ratings = {}
    for name, part in typed.items():
        try:
            ratings[name] = parse_rating(part)
        except ValueError as problem:
            raise ValueError(f"{name}: {problem}") from None
    return ratings

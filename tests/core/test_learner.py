"""The linear learner: edit features, the Bayesian update, Thompson sampling, exactly-once model updates
through a real SQLite close, shared learning, explanations, hillclimb and the contrarian crowd."""

import random
import statistics
from dataclasses import replace

import numpy as np
import pytest

from bot.conductor import Conductor, start_text
from bot.simulate import NamedRater, run_simulation
from core import agent as q
from core.actions import Kind, apply, describe, legal_actions
from core.crowd import Ballot, robust_rating
from core.engine import Proposal, RoundPlan, SessionSpec, plan_round, round_rng, settle
from core.features import DIMENSION, FEATURE_NAMES, candidate_features, edit_features, track_descriptors
from core.learner import NOISE_SD, SHARED_WEIGHT, Evidence, Lesson, Posterior, cautious_choice, explain, generator, lessons, lower_bounds, sure_lessons, thompson_choices
from core.midi import track_to_midi
from core.music import Note, Track, generate_track, track_to_dict
from core.raters import CONTRARIAN_TASTES, Heard, Rater, consensus_score, make_rater, prefer, theory_critic
from storage import open_store

from dbrows import observe


def tracks(count: int, seed: int = 0, length: int = 8):
    rng = random.Random(seed)
    for _ in range(count):
        track = generate_track(60, rng.choice(["major", "minor", "dorian"]), length, 120, rng)
        for _ in range(rng.randint(0, 12)):
            track = apply(track, rng.choice(legal_actions(track)))
        yield track


@pytest.fixture
async def store(db_location):
    store = await open_store(db_location)
    yield store
    await store.close()


# --- features ---------------------------------------------------------------------------------------


def test_features_have_one_row_per_edit_and_a_name_per_column():
    track = next(tracks(1))
    actions = legal_actions(track)
    features = candidate_features(track, actions)
    assert features.shape == (len(actions), DIMENSION) == (len(actions), len(FEATURE_NAMES))
    assert np.isfinite(features).all()
    for action, row in zip(actions, features):  # exactly one kind, the edit's own
        kinds = row[: len(Kind)]
        assert kinds.sum() == 1 and FEATURE_NAMES[int(np.argmax(kinds))] == f"kind:{action.kind.value}"


@pytest.mark.parametrize("scale", ["major", "minor", "blues"])
def test_features_are_the_same_in_every_key(scale):
    """Transposed to another key (base note), every edit of the same tune has the same features: what a
    scope learned in C applies in D."""
    notes = tuple(Note(d, dur, v, c) for d, dur, v, c in [(0, 1.0, 80, True), (4, 0.5, 96, False), (2, 0.5, 64, False),
                                                          (7, 1.0, 80, False), (5, 0.75, 80, True), (1, 0.25, 112, False)])
    drums = (35, 0, 42, 0, 38, 0, 42, 0, 35, 35, 42, 0, 38, 0, 42, 38)
    in_c, in_f_sharp = Track(notes, drums, 120, 60, scale), Track(notes, drums, 120, 66, scale)
    actions = legal_actions(in_c)
    assert actions == legal_actions(in_f_sharp)
    assert np.allclose(candidate_features(in_c, actions), candidate_features(in_f_sharp, actions))
    assert np.allclose(track_descriptors(in_c), track_descriptors(in_f_sharp))


def test_an_edit_that_changes_nothing_the_descriptors_see_has_only_its_kind():
    track = next(tracks(1))
    louder = next(a for a in legal_actions(track) if a.kind is Kind.LOUDER)
    row = edit_features(track, louder)
    loudness = FEATURE_NAMES.index("more:loudness")
    assert row[loudness] > 0  # louder is louder
    assert row[FEATURE_NAMES.index("more:range")] == 0 and row[FEATURE_NAMES.index("rule:intervals")] == 0


# --- the Bayesian update and Thompson sampling ------------------------------------------------------


def test_the_posterior_moves_toward_the_observed_improvements():
    rng = np.random.default_rng(0)
    truth = np.zeros(DIMENSION)
    truth[FEATURE_NAMES.index("kind:add_chord")] = 0.8
    truth[FEATURE_NAMES.index("more:steps")] = 2.0
    xs = rng.normal(0, 0.3, size=(1000, DIMENSION))
    ys = xs @ truth + rng.normal(0, 0.3, size=1000)
    prior = Posterior.prior()
    posterior = prior.observed(zip(map(tuple, xs), ys))
    mean = posterior.mean()
    assert abs(mean[FEATURE_NAMES.index("kind:add_chord")] - 0.8) < 0.15
    assert abs(mean[FEATURE_NAMES.index("more:steps")] - 2.0) < 0.2
    assert np.abs(np.delete(mean, [FEATURE_NAMES.index("kind:add_chord"), FEATURE_NAMES.index("more:steps")])).max() < 0.3
    assert np.trace(posterior.covariance()) < np.trace(prior.covariance())  # more certain
    assert posterior.count == 1000
    # The same, through stored evidence (what storage keeps) rather than in one go.
    evidence = Evidence.empty(DIMENSION).observed(zip(map(tuple, xs[:100]), ys[:100])).observed(zip(map(tuple, xs[100:]), ys[100:]))
    assert np.allclose(prior.updated(Evidence.from_dict(evidence.to_dict())).mean(), mean)


def test_a_comparison_of_two_edits_informs_the_fit_but_is_no_judged_edit():
    """An A/B vote between two edits says A's improvement minus B's: a row (x_a - x_b, y) in the fit, which
    moves the model toward what was preferred, while count and support stay those of the judged edits."""
    kinds = [FEATURE_NAMES.index("kind:add_chord"), FEATURE_NAMES.index("kind:remove")]
    a, b = np.eye(DIMENSION)[kinds]
    evidence = Evidence.empty(DIMENSION).observed([], [(tuple(a - b), 0.5)] * 10)
    assert evidence.count == 0 and not evidence.support.any() and not evidence.magnitude.any()
    mean = q.scope_model(q.DEFAULT, evidence).mean()
    assert mean[kinds[0]] - mean[kinds[1]] > 0.3
    judged = evidence.observed([(tuple(a), 0.2)])
    assert judged.count == 1 and judged.support.tolist() == a.tolist()
    assert Evidence.from_dict(judged.to_dict()).gram.tolist() == judged.gram.tolist()


def test_thompson_draws_are_deterministic_per_round_generator_and_pick_what_the_model_likes():
    features = np.eye(DIMENSION)[: 11]  # one candidate per kind of edit
    chord = FEATURE_NAMES.index("kind:add_chord")
    posterior = Posterior.prior().observed([(tuple(features[chord]), 1.0)] * 20 + [(tuple(features[0]), -1.0)] * 20)
    picks = [thompson_choices(posterior, features, 2, generator(random.Random(f"7:{i}"))) for i in range(20)]
    assert picks == [thompson_choices(posterior, features, 2, generator(random.Random(f"7:{i}"))) for i in range(20)]
    assert all(len(set(p)) == 2 for p in picks)  # two different edits for an A/B round
    assert statistics.fmean(p[0] == chord for p in picks) > 0.9
    assert all(p[0] != 0 for p in picks)


def test_a_cautious_choice_takes_the_best_lower_bound():
    # Before any rating every mean is 0: the edit the prior is surest changes little (the smallest sd).
    prior = Posterior.prior()
    features = np.zeros((3, DIMENSION))
    features[:, FEATURE_NAMES.index("kind:add_chord")] = 1.0
    features[0, FEATURE_NAMES.index("more:steps")] = 0.5
    features[2, FEATURE_NAMES.index("more:range")] = 0.2
    assert cautious_choice(prior, features) == 1
    # Once ratings say more steps help, surely enough, the edit that adds them wins despite its spread.
    steps = np.zeros(DIMENSION)
    steps[FEATURE_NAMES.index("more:steps")] = 0.5
    learned = prior.observed([(tuple(steps), 1.0)] * 10)
    assert cautious_choice(learned, features) == 0


def test_a_sessions_first_edit_is_cautious_and_later_ones_are_drawn():
    """The first edit of a session stays whatever the crowd says (it sets the bar), so it is the candidate
    with the best lower bound, not a Thompson draw; once the incumbent has a score, rounds draw again."""
    for seed in range(8):
        spec = SessionSpec(seed=seed)
        track = spec.first_track()
        first = plan_round(spec, 0, track, {}, round_rng(spec, 0), unrated=True)
        rng = round_rng(spec, 0)
        actions = list(q.candidate_actions(spec.agent, track))
        if len(actions) > spec.agent.max_candidates:
            actions = rng.sample(actions, spec.agent.max_candidates)
        features = q.featurize(spec.agent, track, actions)
        assert first.proposals[0].action == actions[cautious_choice(q.initial_model(spec.agent), features)]
    drawn = [plan_round(SessionSpec(seed=s), 0, SessionSpec(seed=s).first_track(), {}, round_rng(SessionSpec(seed=s), 0), unrated=False)
             for s in range(8)]
    cautious = [plan_round(SessionSpec(seed=s), 0, SessionSpec(seed=s).first_track(), {}, round_rng(SessionSpec(seed=s), 0), unrated=True)
                for s in range(8)]
    assert any(d.proposals[0].action != c.proposals[0].action for d, c in zip(drawn, cautious))


def test_a_replanned_round_decides_the_same_way():
    spec = SessionSpec(mode="ab")
    track = spec.first_track()
    model = q.scope_model(spec.agent, Evidence.empty(DIMENSION))
    first = plan_round(spec, 3, track, {}, round_rng(spec, 3), model)
    again = plan_round(spec, 3, track, {}, round_rng(spec, 3), model)
    assert first == again and first.proposals[0].action != first.proposals[1].action
    assert len(first.proposals[0].features) == DIMENSION


def test_an_undone_edit_is_not_proposed_again_on_the_same_track():
    """Found by a fresh-user trial: "shortened note 1 by a sixteenth", rated 2 and undone, was proposed again the
    next round on the same track. The last closed round's edits are left out when its incumbent is this one."""
    model = q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(_chord_lover(60)))  # sure of one kind of edit

    def edits(plan):
        return {proposal.action for proposal in plan.proposals}

    spec = SessionSpec(seed=4)
    track = spec.first_track()
    first = plan_round(spec, 1, track, {}, round_rng(spec, 1), model)
    assert edits(plan_round(spec, 2, track, {}, round_rng(spec, 2), model)) == edits(first)  # as the trial saw, without `before`
    for mode in ("rating", "ab"):
        for preset in ("default", "context"):
            spec = SessionSpec(mode=mode, preset=preset, seed=4)
            track = spec.first_track()
            first = plan_round(spec, 1, track, {}, round_rng(spec, 1), model)
            assert edits(plan_round(spec, 2, track, {}, round_rng(spec, 2), model, before=first)).isdisjoint(edits(first)), (mode, preset)
            kept = apply(track, first.proposals[0].action)  # a kept edit changed the track: nothing to leave out
            assert plan_round(spec, 2, kept, {}, round_rng(spec, 2), model, before=first) == plan_round(spec, 2, kept, {}, round_rng(spec, 2), model)


def test_every_learner_leaves_out_the_undone_edits_by_one_rule():
    """One rule for every learner (core.agent.left_out): the undone edits are left out unless fewer than the round's
    edits would be left, then none is. The linear learner had its own (only when none was left): an A/B round with
    one other legal edit had one proposal."""
    track = SessionSpec(seed=4).first_track()
    for preset in ("default", "context", "hillclimb"):
        for mode, draws in (("rating", 1), ("ab", 2)):
            spec = SessionSpec(mode=mode, preset=preset, seed=4)
            legal = q.candidate_actions(spec.agent, track)
            for left in range(draws + 1):
                undone = legal[left:]
                proposals = tuple(Proposal(a, q.q_key(spec.agent, track, a), apply(track, a), describe(track, a)) for a in undone)
                plan = plan_round(spec, 2, track, {}, round_rng(spec, 2), before=RoundPlan(1, track, proposals))
                edits = [p.action for p in plan.proposals]
                assert len(edits) == len(set(edits)) == draws, (preset, mode, left, edits)
                if left == draws:  # enough others: none of the undone ones
                    assert set(edits) == set(legal[:left]), (preset, mode, edits)


async def test_a_session_never_proposes_the_edit_it_just_undid(store):
    """Through the conductor, as every front end plans: one person who rates every edit 2 (so each is undone) is
    never offered the same edit on the same track twice in a row (before: 2 such repeats in these 5 sessions)."""
    repeats = 0
    for seed in range(5):
        rater = Rater("me", lambda heard: 2.0, random.Random(seed), 0.8)
        result = await run_simulation(Conductor(store), SessionSpec(rounds=20, seed=seed), [NamedRater("me", rater)], None, f"user:{seed}")
        plans = [RoundPlan.from_dict(row.plan) for row in await store.rounds_of(result["session"])]
        assert len(plans) == 20
        repeats += sum(a.incumbent == b.incumbent and a.proposals[0].action == b.proposals[0].action for a, b in zip(plans, plans[1:]))
    assert repeats == 0


def test_the_theory_preset_starts_with_the_critics_verdict_as_a_weighted_feature():
    theory = q.initial_model(q.THEORY)
    names = q.feature_names(q.THEORY)
    assert names[-1] == q.THEORY_FEATURE and theory.mean()[-1] == pytest.approx(1.0)
    assert q.initial_model(q.DEFAULT).dimension == DIMENSION


# --- settle, storage and the conductor ------------------------------------------------------------


def test_settle_learns_the_improvement_over_the_track_before():
    spec = SessionSpec()
    plan = plan_round(spec, 1, spec.first_track(), {}, round_rng(spec, 1))
    better = settle(spec, plan, [Ballot(f"v{i}", 8.0) for i in range(5)], {}, 6.0, random.Random(0), robust_rating, {})
    worse = settle(spec, plan, [Ballot(f"v{i}", 4.0) for i in range(5)], {}, 6.0, random.Random(0), robust_rating, {})
    (features, up), = better.observations
    (_, down), = worse.observations
    assert features == plan.proposals[0].features and up > 1 and down < -1 and better.model == "edits-v1"
    assert better.updates == ()  # no Q-table for the linear learner


async def test_a_closed_rounds_model_update_is_applied_once_through_sqlite(store):
    conductor = Conductor(store)
    session = await conductor.start("guild:1", "guild", "c", SessionSpec(rounds=4), actor="t")
    counts = []
    for rating in (5, 7, 3, 8):
        r = await conductor.open_round(session.id)
        await conductor.vote(r.id, "a", rating)
        await conductor.vote(r.id, "b", rating)
        assert await conductor.close(r.id) is not None
        assert await conductor.close(r.id) is None  # the second close finds it closed: nothing applied
        evidence = await store.model_evidence("guild:1", "edits-v1")
        counts.append(0 if evidence is None else evidence.count)
    assert counts == [0, 1, 2, 3]
    outcomes = [row["outcome"] for row in (await store.export_rows("guild:1"))["rounds"]]
    stored = Evidence.empty(DIMENSION).observed((tuple(x), y) for o in outcomes for x, y in o["observations"])
    assert np.allclose(stored.gram, evidence.gram) and np.allclose(stored.moment, evidence.moment)
    done = await store.reset_scope("guild:1", "t")  # what it deleted, counted in its own transaction
    assert done.judged == {"edits-v1": 3} and not any(done.q_values.values()) and await store.model_evidence("guild:1", "edits-v1") is None


async def test_the_conductor_plans_a_sessions_first_round_cautiously(store):
    conductor = Conductor(store)
    spec = SessionSpec(rounds=3, seed=5)
    session = await conductor.start("guild:2", "guild", "c", spec, actor="t")
    first = await conductor.open_round(session.id)
    model = await conductor.model("guild:2", spec.agent)
    assert first.plan == plan_round(spec, 0, spec.first_track(), {}, round_rng(spec, 0), model, unrated=True)
    for voter in ("a", "b"):
        await conductor.vote(first.id, voter, 6)
    outcome = await conductor.close(first.id)
    second = await conductor.open_round(session.id)
    model = await conductor.model("guild:2", spec.agent)
    assert second.plan == plan_round(spec, 1, outcome.next_track, {}, round_rng(spec, 1), model, unrated=False)


async def test_hillclimb_learns_nothing_and_edits_at_random(store):
    conductor = Conductor(store)
    session = await conductor.start("guild:h", "guild", "c", SessionSpec(preset="hillclimb", rounds=12), actor="t")
    kinds = set()
    while (r := await conductor.open_round(session.id)) is not None:
        kinds.add(r.plan.proposals[0].action.kind)
        assert r.plan.proposals[0].features == ()
        await conductor.vote(r.id, "a", 1 + r.plan.index % 10)
        outcome = await conductor.close(r.id)
        assert outcome.updates == () and outcome.observations == ()
    assert await store.q_size("guild:h") == 0 and await store.model_evidence("guild:h", "edits-v1") is None
    assert len(kinds) >= 4
    assert q.HILLCLIMB.keep_best and q.HILLCLIMB.rescore == q.DEFAULT.rescore and q.HILLCLIMB.reward == q.DEFAULT.reward


async def test_scopes_that_opt_in_share_what_they_learned_and_no_other(store):
    conductor = Conductor(store)
    observation = [(tuple([1.0] + [0.0] * (DIMENSION - 1)), 1.0)]
    for scope, share in (("guild:a", True), ("guild:b", True), ("guild:c", False)):
        await store.ensure_scope(scope, "guild")
        await store.update_scope_settings(scope, {"share_learning": share}, actor="mod")
        await observe(store, scope, "edits-v1", observation * 5)
    assert len(await store.shared_evidence("edits-v1", "guild:a")) == 1  # b only: c did not opt in
    own = await conductor.model("guild:c", q.DEFAULT)  # not opted in: its own evidence alone
    shared = await conductor.model("guild:a", q.DEFAULT)
    assert own.count == shared.count == 5
    assert shared.precision[0, 0] > own.precision[0, 0]  # b's evidence counts (at half weight) for a
    await store.ensure_scope("guild:new", "guild")
    await store.update_scope_settings("guild:new", {"share_learning": True}, actor="mod")
    fresh = await conductor.model("guild:new", q.DEFAULT)
    assert fresh.count == 0 and fresh.mean()[0] > 0.3  # a new server starts from the shared prior


def _chord_lover(count: int = 20) -> list:
    """Observations of a scope whose ratings say: an added chord gains a point."""
    chord = np.zeros(DIMENSION)
    chord[FEATURE_NAMES.index("kind:add_chord")] = 1.0
    return [(tuple(chord), 1.0)] * count


def test_a_new_session_opens_with_the_edits_its_scope_expects_to_improve_it():
    track = SessionSpec(seed=3).first_track()
    # A model that is still the prior opens with nothing: not even the theory preset's critic, untested by anyone.
    assert q.opening(q.DEFAULT, track, q.initial_model(q.DEFAULT)) == []
    assert q.opening(q.THEORY, track, q.initial_model(q.THEORY)) == []
    assert q.opening(q.HILLCLIMB, track, None) == []
    # Ratings that found every edit worse leave nothing expected to improve.
    worse = [(x, -1.0) for x, _ in _chord_lover()]
    assert q.opening(q.DEFAULT, track, q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(worse))) == []
    model = q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(_chord_lover(60)))
    opened = q.opening(q.DEFAULT, track, model)
    assert 0 < len(opened) <= q.OPENING_EDITS and opened[0].kind is Kind.ADD_CHORD
    edited = track
    for action in opened:  # each edit, on the track the ones before made, is the one expected to gain most
        actions = list(q.candidate_actions(q.DEFAULT, edited))
        expected = q.featurize(q.DEFAULT, edited, actions) @ model.mean()
        assert actions[int(np.argmax(expected))] == action and expected.max() > 0
        edited = apply(edited, action)
    assert q.opening(q.DEFAULT, track, model) == opened  # nothing drawn: the same every time
    assert q.opening(q.DEFAULT, track, model, limit=1) == opened[:1]


def test_an_opening_has_at_most_one_edit_per_three_judged_edits_its_model_rests_on():
    """A model that rests on a few ratings expects much of little (bench: a second session after 2 or 5 rated rounds
    opened worse than a fresh one), so the opening grows with the judged edits, other scopes' counted at their weight."""
    track = SessionSpec(seed=3).first_track()
    for judged, edits in ((1, 0), (2, 0), (3, 1), (7, 2)):
        model = q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(_chord_lover(judged)))
        assert len(q.opening(q.DEFAULT, track, model)) == edits
    # Shared learning: 12 judged edits of another scope at weight 0.5 count as 6, so two edits; none of its own.
    shared = Evidence.empty(DIMENSION).observed(_chord_lover(12))
    model = q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION), [shared])
    assert model.count == 0 and model.shared == 12 * SHARED_WEIGHT
    assert len(q.opening(q.DEFAULT, track, model)) == 2


async def test_a_session_of_a_rated_scope_starts_from_its_opening_and_says_so(store):
    conductor = Conductor(store)
    await store.ensure_scope("guild:a", "guild")
    await observe(store, "guild:a", "edits-v1", _chord_lover())
    spec = SessionSpec(seed=3)
    session = await conductor.start("guild:a", "guild", "c1", spec, actor="mod")
    opened = q.opening(spec.agent, spec.first_track(), await conductor.model("guild:a", spec.agent))
    assert opened
    track, words = spec.first_track(), []
    for action in opened:
        words.append(describe(track, action))
        track = apply(track, action)
    assert session.track == track_to_dict(track) and session.options["opening"] == words
    assert start_text(session, "this server's ratings") == (
        f"it starts from a random track with {len(words)} edit{'s' if len(words) > 1 else ''} the agent expects to improve it, "
        "from what this server's ratings taught: "
        + "; ".join(words)
    )
    # The same track continued (same music, same channel) is not opened again; a person's melody never is.
    await conductor.stop(session.id, "mod")
    again = await conductor.start("guild:a", "guild", "c1", spec, actor="mod", continue_from_last=True)
    assert again.track == session.track and "opening" not in again.options
    assert start_text(again, "x") == f"it starts from the track session {session.id} ended on (same key, scale and tempo)"
    melody = SessionSpec(seed=4).first_track()
    own = await conductor.start("guild:a", "guild", "c2", spec, actor="mod", first_track=melody)
    assert own.track == track_to_dict(melody) and "opening" not in own.options and start_text(own, "x") == ""
    # The same edit made again is said once, with how many times (a trial read "raised note 6 by one step" five times).
    again_and_again = replace(session, options={"opening": ["raised note 6 by one step"] * 3 + ["added a chord under note 1"]})
    assert start_text(again_and_again, "your ratings") == (
        "it starts from a random track with 4 edits the agent expects to improve it, from what your ratings taught: "
        "raised note 6 by one step (3 times); added a chord under note 1"
    )
    await store.ensure_scope("guild:b", "guild")  # rated by nobody: its random track as it came
    fresh = await conductor.start("guild:b", "guild", "c3", spec, actor="mod")
    assert fresh.track == track_to_dict(spec.first_track()) and "opening" not in fresh.options


# --- saying what was learned ----------------------------------------------------------------------


def test_the_explanation_names_what_the_crowd_likes_and_dislikes_with_its_evidence():
    chord = np.zeros(DIMENSION)
    chord[FEATURE_NAMES.index("kind:add_chord")] = 1.0
    drums = np.zeros(DIMENSION)
    drums[FEATURE_NAMES.index("kind:percussion")] = 1.0
    observations = [(tuple(chord), 0.8)] * 23 + [(tuple(drums), -0.6)] * 12
    lines = explain(q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(observations)))
    # Two kinds judged: each against the other judged edits, measured from them.
    assert lines == [
        "likes adding a chord: 1.4 points an edit above the other judged edits, from the 23 judged edits with it",
        "dislikes changing a drum step: 1.4 points an edit below the other judged edits, from the 12 judged edits with it",
    ], lines
    # A feature of the music, of edits of one kind: as the model estimates it.
    steps, plain = np.zeros(DIMENSION), np.zeros(DIMENSION)
    steps[FEATURE_NAMES.index("kind:louder")] = plain[FEATURE_NAMES.index("kind:louder")] = 1.0
    steps[FEATURE_NAMES.index("more:steps")] = 0.5
    lines = explain(q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed([(tuple(steps), 0.8)] * 23 + [(tuple(plain), 0.0)] * 12)))
    assert lines[0].startswith("likes more stepwise motion: +0.") and lines[0].endswith(
        "an edit on average, the model estimates from the 23 judged edits with it"
    ), lines
    # With three kinds judged, each is said against the one in the middle, measured from the judged edits.
    louder = np.zeros(DIMENSION)
    louder[FEATURE_NAMES.index("kind:louder")] = 1.0
    lines = explain(q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(observations + [(tuple(louder), 0.1)] * 5)))
    middle = "playing a note louder (the kind in the middle)"
    assert lines[0] == f"likes adding a chord: 0.7 points an edit above {middle}, from the 23 judged edits with it", lines
    assert f"dislikes changing a drum step: 0.7 points an edit below {middle}, from the 12 judged edits with it" in lines, lines
    assert not any(line.startswith("likes playing a note louder") or line.startswith("dislikes playing a note louder") for line in lines)
    assert explain(None) == [] and explain(Posterior.prior()) == []
    assert lessons(Posterior.prior()) == []


def test_a_liking_shared_by_features_that_come_together_is_said_whole_and_once():
    """Found by a fresh-user trial: a person rating every added chord a point up was told "likes adding a chord:
    +0.3 an edit", the point split between the features an added chord changes (its kind, more chords, chords on
    the beat). A lesson now says what the judged edits with the feature gain on average, as the model estimates,
    and a lesson that says what a surer one says is left out."""
    def edit(**values):
        x = np.zeros(DIMENSION)
        for name, value in values.items():
            x[FEATURE_NAMES.index(name.replace("__", ":"))] = value
        return tuple(x)

    chord = edit(kind__add_chord=1.0, **{"more__chords": 0.25, "more__chords_on_beat": 0.25})
    drums = edit(kind__percussion=1.0, more__drum_density=0.1)
    louder = edit(kind__louder=1.0, more__loudness=0.1)
    observations = [(chord, 1.0)] * 12 + [(drums, -0.1)] * 12
    found = lessons(q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(observations)))
    said = {lesson.feature: lesson for lesson in found}
    assert "kind:add_chord" in said and abs(said["kind:add_chord"].effect - 1.0) < 0.2, found
    assert not {"more:chords", "more:chords_on_beat"} & set(said), found  # the same edits: said once
    assert explain(q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(observations)))[0].startswith("likes adding a chord: 1.1")
    # With a kind in the middle (louder, rated level) to say kinds against: still once, and the middle kind unsaid.
    found = lessons(q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(observations + [(louder, 0.0)] * 12)))
    assert len([lesson for lesson in found if "chord" in lesson.feature]) == 1, found
    assert "kind:louder" not in {lesson.feature for lesson in found}, found
    assert {lesson.against for lesson in found} <= {None, "playing a note louder (the kind in the middle)"}, found


def test_a_lesson_and_its_mirror_image_are_said_once():
    """Found by a fresh-user trial: three removals that each left the track under eight notes, all rated down,
    were told as two lessons, "likes a track of at least eight notes: +0.9 ... from the 3 judged edits" and
    "dislikes removing a note: -0.9 ... from the 3": one feature's typical edit (losing the eighth note) is the
    other's turned around, so they say one thing."""
    remove, louder = np.zeros(DIMENSION), np.zeros(DIMENSION)
    remove[FEATURE_NAMES.index("kind:remove")], remove[FEATURE_NAMES.index("rule:length")] = 1.0, -1.0
    louder[FEATURE_NAMES.index("kind:louder")] = 1.0
    observations = [(tuple(remove), -2.0)] * 3 + [(tuple(louder), 0.0)] * 12
    model = q.scope_model(q.DEFAULT, Evidence.empty(DIMENSION).observed(observations))
    said = {lesson.feature for lesson in lessons(model)}
    assert len(said & {"kind:remove", "rule:length"}) == 1, said
    lines = explain(model)
    assert len([line for line in lines if "from the 3 judged edits" in line]) == 1, lines


def test_comparison_rows_of_ab_rounds_do_not_count_as_edits_in_what_is_said():
    """An A/B round's comparison row (x_a - x_b) informs the fit but is no edit: the judged edits' sum x x^T, from
    which lessons read the typical edit with a feature, leaves it out, also after the evidence is stored and read."""
    a, b = np.zeros(DIMENSION), np.zeros(DIMENSION)
    a[FEATURE_NAMES.index("kind:add_chord")], b[FEATURE_NAMES.index("kind:remove")] = 1.0, 1.0
    edits = [(tuple(a), 0.5), (tuple(b), -0.5)] * 3
    alone = Evidence.empty(DIMENSION).observed(edits)
    both = alone.observed([], [(tuple(a - b), 1.0)] * 3)
    assert both.gram[0].tolist() != alone.gram[0].tolist() or not np.array_equal(both.gram, alone.gram)
    stored = Evidence.from_dict(both.to_dict())
    assert np.allclose(stored.edit_gram, alone.gram) and np.allclose(stored.gram, both.gram)
    assert "compared" not in alone.to_dict()  # rating scopes store what they stored before
    legacy = {k: v for k, v in both.to_dict().items() if k != "compared"}  # stored before comparisons were kept apart
    assert np.allclose(Evidence.from_dict(legacy).edit_gram, both.gram)


def test_the_scatter_of_a_scopes_ratings_is_measured_from_its_own_rows():
    """Posterior.noise_sd: the residual sd of the scope's own rows at the posterior mean, blended with NOISE_SD."""
    chord = _chord_lover(1)[0][0]
    steady = Evidence.empty(DIMENSION).observed([(chord, 1.0)] * 30)
    scattered = Evidence.empty(DIMENSION).observed([(chord, 1.0 + (2.0 if k % 2 else -2.0)) for k in range(30)])
    assert steady.rows == scattered.rows == 30 and steady.square == 30.0
    assert q.scope_model(q.DEFAULT, steady).noise_sd() < 0.6 * NOISE_SD  # ratings the model explains
    assert q.scope_model(q.DEFAULT, scattered).noise_sd() > 2.0 * NOISE_SD  # the same edits rated 3 points apart
    assert Posterior.prior().noise_sd() == NOISE_SD  # nothing rated: the assumed scatter
    stored = Evidence.from_dict(scattered.observed([], [(chord, 0.5)]).to_dict())  # comparison rows count as rows
    assert (stored.rows, stored.count, stored.square) == (31, 30, scattered.square + 0.25)
    legacy = {k: v for k, v in scattered.to_dict().items() if k not in ("square", "rows")}  # stored before it was kept
    assert q.scope_model(q.DEFAULT, Evidence.from_dict(legacy).observed([(chord, 9.0)])).noise_sd() == NOISE_SD


async def _lessons_after(store, taste, rounds: int, seed: int) -> list[str]:
    """What a personal agent says after `rounds` rounds rated by one simulated person with `taste` (Heard -> 1-10)."""
    conductor = Conductor(store)
    rater = Rater("me", taste, random.Random(seed), 0.8)
    await run_simulation(conductor, SessionSpec(rounds=rounds, seed=seed), [NamedRater("me", rater)], None, f"user:{seed}")
    return await conductor.lessons(f"user:{seed}")


async def test_a_person_rating_at_random_is_told_nothing_and_one_liking_is_told_it(store):
    """Found by fresh-user trials: wild ratings were "taught" 4-6 likes and dislikes (a person rating uniformly at
    random, 20 rounds: 4.3 lines a session). Lessons are said as a family (Holm), the sd scaled to the ratings' scatter."""
    draws = random.Random(5)
    wild = [line for seed in range(3) for line in await _lessons_after(store, lambda heard: draws.randint(1, 10), 20, seed)]
    assert len(wild) <= 1, wild
    def chords(heard):  # the trial's person: an added chord 10, the rest 3
        return min(10.0, 3 + 3.5 * sum(note.has_chord for note in heard.parsed.melody))
    told = [await _lessons_after(store, chords, 40, seed) for seed in (10, 11, 12, 13)]
    # Lessons said as a family (Holm) tell this person in 30 of 40 sessions after 40 rounds (docs/BENCHMARKS.md).
    assert sum(1 for lines in told if lines) >= 2 and all("chord" in lines[0] for lines in told if lines), told


async def _rated_by_the_edit(conductor: Conductor, scope_id: str, seed: int, rounds: int = 40) -> None:
    """A session rated by a person who rates the edit they are told of, as trials did: every added chord 9-10, any
    other edit 2 (noise 0.5)."""
    draws = random.Random(seed)
    session = await conductor.start(scope_id, "user", None, SessionSpec(rounds=rounds, seed=seed), actor="me")
    while (open_round := await conductor.open_round(session.id)) is not None:
        liked = "added a chord" in open_round.plan.proposals[0].description
        await conductor.vote(open_round.id, "me", min(10.0, max(1.0, (9.5 if liked else 2.0) + draws.gauss(0, 0.5))))
        await conductor.close(open_round.id, actor="me")


async def test_a_person_who_rates_the_edit_they_are_told_of_is_told_what_they_liked(store):
    """Found by fresh-user trials (five in a row rated the edit, not the track): a person rating every edit that added
    a chord 9-10 and any other 2 heard after 40 rounds "not yet sure of anything" or of stepwise motion, never of
    chords (0 of 30 simulated sessions; docs/BENCHMARKS.md): each liked edit improved on a track rated as high by
    little, the rest fell far, and the model spread that over descriptors. Kinds are now said against the kind in the
    middle (or the other judged edits), measured from the judged edits, and of such a scope only kinds."""
    told = []
    for seed in (1, 2, 3):
        conductor = Conductor(store)
        await _rated_by_the_edit(conductor, f"user:e{seed}", seed)
        told.append(await conductor.lessons(f"user:e{seed}"))
    assert all(lines and lines[0].startswith("likes adding a chord: ") for lines in told), told
    # Its kinds measure apart: the model's descriptors follow the bar's ups and downs, not a liking, and are not said.
    assert not [line for lines in told for line in lines if "the model estimates" in line], told


async def test_a_new_session_of_a_person_who_rates_the_edit_opens_with_no_kind_they_rated_down(store):
    """Found by a fresh-user trial: after 40 rounds rating every added chord 9 and anything else 2, each new session
    opened "from what your ratings taught" with a removal, rated 2 every time (simulated: 7 of 8 sessions opened with
    an edit of a kind always rated 2; 3 of 12 in this test's setting): the kinds' narrow prior left the fall to descriptors, and removing a note
    without a chord raises the share of chords. The kinds' prior is now as wide as the scope's kinds measured apart."""
    opened = []
    for seed in (7, 8, 12):  # 3 of seeds 1-12 opened with a lowered note before, none now
        conductor = Conductor(store)
        await _rated_by_the_edit(conductor, f"user:o{seed}", seed)
        again = await conductor.start(f"user:o{seed}", "user", None, SessionSpec(base=57, scale="minor", rounds=1, seed=seed), actor="me")
        opened.append(again.options["opening"])
    assert all(edits for edits in opened), opened
    assert [edit for edits in opened for edit in edits if "added a chord" not in edit] == [], opened


async def test_a_person_who_rates_everything_alike_is_told_nothing(store):
    """Found by a fresh-user trial (/stats after random ratings named a liking): with a lesson said at 2 sds each, one
    person rating everything 4 (noise 0.8) was told something in 16 of 40 sessions after 40 rounds; said as a family
    (Holm), in 2 of 40."""
    told = [await _lessons_after(store, lambda heard: 4.0, 40, seed) for seed in range(100, 110)]
    assert sum(1 for lines in told if lines) <= 1, told


def test_lessons_are_said_as_a_family_the_more_tested_the_surer_each_must_be():
    sure, likely = Lesson("a", "a", 3.5, 1.0, 9), Lesson("b", "b", 2.3, 1.0, 9)
    assert sure_lessons([sure, likely]) == [sure, likely]  # 2 tested: 1.64 and 1.28 sds
    others = [Lesson(f"o{i}", "o", 0.5, 1.0, 9) for i in range(18)]
    assert sure_lessons([sure, likely, *others]) == [sure]  # 20 tested: 2.58 sds, then 2.56


# --- the simulated crowds -------------------------------------------------------------------------


def test_the_contrarian_crowd_disagrees_with_the_critic():
    midis = [track_to_midi(t) for t in tracks(60, seed=3)]
    critic = [theory_critic(m) for m in midis]
    contrarian = [consensus_score(m, "contrarian") for m in midis]
    assert statistics.correlation(contrarian, critic) < -0.5
    assert statistics.correlation([consensus_score(m) for m in midis], critic) > 0.5
    for taste in CONTRARIAN_TASTES.values():  # each taste on its own leans against the critic
        assert statistics.correlation([taste(Heard(m)) for m in midis], critic) < 0


def test_ab_voters_answer_neither_when_both_edits_are_worse_than_what_they_heard():
    good, bad = sorted((track_to_midi(t) for t in tracks(20, seed=5)), key=theory_critic)[::-19][:2]
    theorist = make_rater("theorist", random.Random(0), noise=0.0)
    assert prefer(theorist, bad, bad, before=good) == "neither"
    assert prefer(theorist, good, bad, before=bad) == "a"
    assert prefer(theorist, bad, good) == "b"  # without the track before: never neither


def test_the_bar_follows_the_crowds_scale_as_the_aggregation_learns_who_to_trust():
    """A brigade's 10s count fully while nobody knows them and hardly later: the verdict on the same ballots
    drops, so a bar left where those ballots put it would undo every later edit."""
    from core.crowd import robust_rating
    from core.engine import scale_drift

    honest = [f"h{i}" for i in range(5)]
    brigade = [f"b{i}" for i in range(4)]
    then_ballots = [Ballot(v, 6.0) for v in honest] + [Ballot(v, 10.0) for v in brigade]
    then = robust_rating(then_ballots, {}).rating
    rng = random.Random(0)
    history: dict = {}
    for round_id in range(20):  # the brigade always 10, the honest voters rate varied music
        quality = rng.uniform(3, 8)
        ratings = {v: quality + rng.gauss(0, 0.5) for v in honest} | {v: 10.0 for v in brigade}
        for voter, rating in ratings.items():
            history.setdefault(voter, []).insert(0, (rating, round_id, quality))
    drift = scale_drift((then_ballots, then), robust_rating, history)
    assert drift < -0.5
    assert scale_drift(None, robust_rating, history) == 0.0
    spec = SessionSpec()
    plan = plan_round(spec, 4, spec.first_track(), {}, round_rng(spec, 4))
    today = [Ballot(v, 6.5) for v in honest] + [Ballot(v, 10.0) for v in brigade]  # a better edit, today's scale
    bar = then  # the bar that round set
    stale = settle(spec, plan, today, {}, bar, random.Random(0), robust_rating, history)
    followed = settle(spec, plan, today, {}, bar, random.Random(0), robust_rating, history, (then_ballots, then))
    assert not stale.kept_edit and followed.kept_edit


def test_what_was_learned_is_said_in_a_members_words():
    """Found by a fresh-user trial: lessons read "the critic's length rule", "moving toward the extremes of: a higher
    melody" and, after "dislikes", "avoiding long runs of one note". Each feature's words name the music, not the
    code (no "critic", no "extremes of:"), and read as a positive change, so "likes" and "dislikes" never negate a
    negation."""
    from core.features import FEATURE_NAMES, FEATURE_WORDS

    assert set(FEATURE_WORDS) == set(FEATURE_NAMES)
    for name, words in FEATURE_WORDS.items():
        assert words and words == words.strip() and ":" not in words, name
        assert not any(jargon in words.lower() for jargon in ("critic", "rule", "extremes of")), (name, words)
        assert not words.lower().startswith(("avoiding", "not ", "no ", "never", "without")), (name, words)
        assert " not " not in f" {words.lower()} ", (name, words)

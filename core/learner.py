"""A Bayesian linear model of how much an edit improves a track, learned from every rating in a scope.

The model: improvement y = w . x + noise, x the edit's features (core.features), noise ~ N(0, sigma^2),
prior w ~ N(m0, diag(s0^2)). The posterior is Gaussian with precision A = diag(1/s0^2) + sum x x^T / sigma^2
and A mu = diag(1/s0^2) m0 + sum x y / sigma^2 (Bishop, Pattern Recognition and Machine Learning, 3.3).
A scope stores its `Evidence` (sum x x^T, sum x y and per-feature counts for explaining what was learned),
independent of the prior: its size is fixed (d x d), so reading it costs the same after ten ratings or ten
thousand, and evidence from other scopes adds in the same way (`Posterior.updated`, shared learning).

Exploration is Thompson sampling for linear payoffs (Agrawal and Goyal, ICML 2013): draw w from the
posterior, take the candidate with the best drawn value; two independent draws give two informative,
usually different, edits for an A/B round. Draws come from a numpy Generator the caller derives from the
round's random.Random (`generator`), so a round replanned after a restart decides the same way.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np
from numpy.random import PCG64, Generator

from core.features import FEATURE_NAMES, FEATURE_WORDS

Observation = tuple[tuple[float, ...], float]  # (feature vector, observed improvement in rating points)

NOISE_SD = 0.8  # rating points: an improvement's noise as one round's blended score measures it (bench-tuned, 0.3-1.2 tried)
KIND_PRIOR_SD = 0.3  # rating points: what one kind of edit does on average, before any rating
FEATURE_PRIOR_SD = 1.5  # rating points per unit of a descriptor's change (descriptors are shares, about 0-1; bench-tuned: 1, 1.5, 2, 3 tried)
# How much other scopes' evidence counts in a shared prior: a scope's own ratings outweigh theirs.
SHARED_WEIGHT = 0.5
EXPLORATION = 0.3  # Thompson draws' spread around the posterior mean, in posterior sds (bench-tuned: 0, 0.3, 0.6, 1 tried)
# A cautious choice (an edit that stays whatever the crowd says) takes the best lower bound: mean - CAUTION sd
# (bench-tuned: 1 and 0.3 tried; 0.3 lets a scope's second session start with what its first taught).
CAUTION = 0.3
# How many rows' worth the assumed NOISE_SD counts for against a scope's measured scatter (Posterior.noise_sd): a
# few rows cannot show that ratings agree, only that they disagree (bench-tuned: 2, 5 and 10 tried).
NOISE_PRIOR_ROWS = 5.0


@dataclass(frozen=True, eq=False)
class Evidence:
    """What a scope's ratings say, independent of any prior: the sufficient statistics of least squares.
    gram = sum x x^T (d, d), moment = sum x y (d,), `count` observations, `support` (d,): how many had each
    feature non-zero, `magnitude` (d,): the sum of |x_i| (a feature's typical change is magnitude / support),
    `compared` (d, d): the part of gram from comparison rows (A/B scopes only; None when there is none, and in
    evidence stored before it was kept), so that `edit_gram` describes judged edits alone. `square` = sum y^2 and
    `rows`: how many (x, y) rows, comparisons included, so that the ratings' scatter around the fit can be measured
    (`Posterior.noise_sd`); both None in evidence stored before they were kept.
    Fixed size whatever the history; adding observations is exactly-once business of the caller (storage
    adds a closed round's in the transaction that closes it)."""

    gram: np.ndarray
    moment: np.ndarray
    count: int
    support: np.ndarray
    magnitude: np.ndarray
    compared: np.ndarray | None = None
    square: float | None = None
    rows: int | None = None

    @staticmethod
    def empty(dimension: int) -> Evidence:
        return Evidence(np.zeros((dimension, dimension)), np.zeros(dimension), 0, np.zeros(dimension), np.zeros(dimension), None, 0.0, 0)

    @property
    def edit_gram(self) -> np.ndarray:
        """sum x x^T over the judged edits alone (d, d): gram without the comparison rows."""
        return self.gram if self.compared is None else self.gram - self.compared

    @property
    def dimension(self) -> int:
        return len(self.moment)

    def observed(self, observations: Iterable[Observation], comparisons: Iterable[Observation] = ()) -> Evidence:
        """This evidence plus more (x, y) observations of judged edits, and `comparisons`: (x_a - x_b, y_a - y_b)
        rows of two edits judged against each other, which inform the fit (gram, moment) but are no judged
        edit (count, support and magnitude describe edits). ValueError if a vector has the wrong length."""
        edits, compared = self._rows(observations), self._rows(comparisons)
        rows = [r for r in (edits, compared) if r is not None]
        if not rows:
            return self
        gram, moment, square, count = self.gram, self.moment, self.square, self.rows
        for x, y in rows:
            gram, moment = gram + x.T @ x, moment + x.T @ y
            if square is not None and count is not None:
                square, count = square + float(y @ y), count + len(y)
        fitted = replace(self, gram=gram, moment=moment, square=square, rows=count)
        if compared is not None:
            x = compared[0]
            fitted = replace(fitted, compared=(self.compared if self.compared is not None else 0.0) + x.T @ x)
        if edits is None:
            return fitted
        x = edits[0]
        return replace(fitted, count=self.count + len(x), support=self.support + (x != 0).sum(axis=0), magnitude=self.magnitude + np.abs(x).sum(axis=0))

    def _rows(self, observations: Iterable[Observation]) -> tuple[np.ndarray, np.ndarray] | None:
        rows = [(np.asarray(x, dtype=float), float(y)) for x, y in observations]
        if not rows:
            return None
        x = np.stack([r[0] for r in rows])
        if x.shape[1] != self.dimension:
            raise ValueError(f"an observation has {x.shape[1]} features, the model {self.dimension}")
        return x, np.array([r[1] for r in rows])

    def to_dict(self) -> dict:
        data = {
            "gram": self.gram.tolist(), "moment": self.moment.tolist(), "count": self.count,
            "support": self.support.tolist(), "magnitude": self.magnitude.tolist(),
        }
        if self.compared is not None:  # only A/B scopes pay for it
            data["compared"] = self.compared.tolist()
        if self.square is not None:
            data["square"], data["rows"] = self.square, self.rows
        return data

    @staticmethod
    def from_dict(data: dict) -> Evidence:
        compared = data.get("compared")
        return Evidence(
            np.array(data["gram"], dtype=float), np.array(data["moment"], dtype=float), int(data["count"]),
            np.array(data["support"], dtype=float), np.array(data["magnitude"], dtype=float),
            None if compared is None else np.array(compared, dtype=float),
            None if data.get("square") is None else float(data["square"]), None if data.get("rows") is None else int(data["rows"]),
        )


def apply_observations(data: dict | None, observations: Sequence[Observation], comparisons: Sequence[Observation] = ()) -> dict:
    """Stored evidence (`Evidence.to_dict`, or None for none yet: sized by the first row) with `observations`
    and `comparisons` added (see `Evidence.observed`), as stored. ValueError without a row."""
    if data is None and not (observations or comparisons):
        raise ValueError("no observation to add")
    evidence = Evidence.from_dict(data) if data is not None else Evidence.empty(len((*observations, *comparisons)[0][0]))
    return evidence.observed(observations, comparisons).to_dict()


@dataclass(frozen=True, eq=False)
class Posterior:
    """Gaussian posterior over the weights: precision (d, d) and shift = precision @ mean (d,), with the
    scope's own `evidence` (for counts in explanations) and `shared`: how many other scopes' judged edits it
    also rests on, each at the weight it was given (0 without shared learning)."""

    precision: np.ndarray
    shift: np.ndarray
    evidence: Evidence
    shared: float = 0.0

    @staticmethod
    def prior(names: Sequence[str] = FEATURE_NAMES, means: dict[str, float] | None = None, kind_sd: float = 0.0) -> Posterior:
        """The prior before any rating: kinds of edit N(0, max(KIND_PRIOR_SD, kind_sd)^2), descriptor changes
        N(0, FEATURE_PRIOR_SD^2); `means` sets a feature's prior mean (the theory preset's critic)."""
        kind = max(KIND_PRIOR_SD, kind_sd)
        sd = np.array([kind if name.startswith("kind:") else FEATURE_PRIOR_SD for name in names])
        precision = 1.0 / sd**2
        mean = np.array([(means or {}).get(name, 0.0) for name in names])
        return Posterior(np.diag(precision), precision * mean, Evidence.empty(len(names)))

    @property
    def dimension(self) -> int:
        return len(self.shift)

    @property
    def count(self) -> int:
        return self.evidence.count

    def updated(self, evidence: Evidence, shared: Sequence[Evidence] = (), weight: float = SHARED_WEIGHT,
                noise_sd: float | None = None) -> Posterior:
        """This prior updated with a scope's own `evidence` and, each counted `weight` times (0-1), other
        scopes' `shared` evidence: a prior learned across the scopes that share what they learned."""
        if evidence.dimension != self.dimension:
            raise ValueError(f"the evidence has {evidence.dimension} features, the model {self.dimension}")
        scale = 1.0 / (noise_sd or NOISE_SD) ** 2
        precision, shift = self.precision + scale * evidence.gram, self.shift + scale * evidence.moment
        counted = self.shared
        for other in shared:
            if other.dimension == self.dimension:
                precision = precision + weight * scale * other.gram
                shift = shift + weight * scale * other.moment
                counted += weight * other.count
        return Posterior(precision, shift, evidence, counted)

    def observed(self, observations: Iterable[Observation], noise_sd: float | None = None) -> Posterior:
        """The posterior after more (x, y) observations."""
        observations = list(observations)
        more = Evidence.empty(self.dimension).observed(observations)
        updated = self.updated(more, noise_sd=noise_sd)
        return Posterior(updated.precision, updated.shift, self.evidence.observed(observations), self.shared)

    def mean(self) -> np.ndarray:
        return np.linalg.solve(self.precision, self.shift)

    def covariance(self) -> np.ndarray:
        return np.linalg.inv(self.precision)

    def noise_sd(self) -> float:
        """How far the scope's ratings scatter around what the model predicts, in rating points: NOISE_SD (the
        scatter the model assumes) blended, as NOISE_PRIOR_ROWS rows' worth, with the residual sd of its own rows
        at the posterior mean, RSS / (rows - p), p = trace(G Cov) / NOISE_SD^2 the fit's effective number of
        parameters (Hastie, Tibshirani & Friedman, The Elements of Statistical Learning, 2nd ed., 7.6).
        NOISE_SD for evidence stored before sum y^2 was kept."""
        evidence = self.evidence
        if evidence.square is None or not evidence.rows:
            return NOISE_SD
        mean = self.mean()
        residual = max(evidence.square - 2.0 * mean @ evidence.moment + mean @ evidence.gram @ mean, 0.0)
        parameters = float(np.trace(evidence.gram @ self.covariance())) / NOISE_SD**2
        freedom = NOISE_PRIOR_ROWS + max(evidence.rows - parameters, 0.0)
        return float(np.sqrt((NOISE_PRIOR_ROWS * NOISE_SD**2 + residual) / freedom))

    def sample(self, generator: Generator) -> np.ndarray:
        """One draw of the weights from the posterior (Thompson sampling)."""
        # mu + L^-T z with A = L L^T has covariance A^-1.
        lower = np.linalg.cholesky(self.precision)
        z = generator.standard_normal(self.dimension)
        return self.mean() + EXPLORATION * np.linalg.solve(lower.T, z)


def generator(rng: random.Random) -> Generator:
    """A numpy generator derived from the round's random.Random (same round, same draws)."""
    return Generator(PCG64(rng.getrandbits(64)))


def thompson_choices(posterior: Posterior, features: np.ndarray, draws: int, rng: Generator) -> list[int]:
    """Indices of the candidates (rows of `features`) that `draws` independent posterior draws value most,
    all different: the second draw's best among those the first did not take, and so on."""
    chosen: list[int] = []
    for _ in range(min(draws, len(features))):
        values = features @ posterior.sample(rng)
        values[chosen] = -math.inf
        chosen.append(int(np.argmax(values)))
    return chosen


def lower_bounds(posterior: Posterior, features: np.ndarray) -> np.ndarray:
    """Each candidate's (row of `features`, shape (n, d)) lower confidence bound of its value under the posterior,
    mean - CAUTION x sd, in rating points, shape (n,)."""
    covariance = posterior.covariance()
    sd = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", features, covariance, features), 0.0, None))
    return features @ posterior.mean() - CAUTION * sd


def cautious_choice(posterior: Posterior, features: np.ndarray) -> int:
    """The candidate (row of `features`) with the best lower confidence bound of its value (`lower_bounds`): for
    an edit that stays whatever the crowd says (a session's first, which sets the bar), where a bold guess cannot
    be undone. Before any rating every mean is 0, so this is the edit the prior is surest changes little."""
    return int(np.argmax(lower_bounds(posterior, features)))


# --- saying what was learned --------------------------------------------------------------------------


@dataclass(frozen=True)
class Lesson:
    feature: str
    words: str
    effect: float  # rating points the judged edits with this feature gain on average, as the model estimates (negative: lose)
    sd: float  # the posterior's standard deviation of that effect
    # How many judged edits had this feature: edits the crowd rated, or A/B edits votes compared with the
    # track before (an A/B round gives up to two and no rating, so they are not called ratings).
    judged: int
    # A kind of edit said against another measure of the judged edits (kind_contrasts), in words ("raising a note by a
    # step (the kind in the middle)", "the other judged edits"): `effect` is how much more its judged edits gained than
    # those did on average, measured from them, not the model's estimate.
    against: str | None = None

    def text(self) -> str:
        edits = "the judged edit" if self.judged == 1 else f"the {self.judged} judged edits"
        if self.against is not None:
            side = "above" if self.effect > 0 else "below"
            return f"{self.words}: {abs(self.effect):.1f} points an edit {side} {self.against}, from {edits} with it"
        return f"{self.words}: {self.effect:+.1f} points an edit on average, the model estimates from {edits} with it"


# Lessons are said as a family: with 20-30 features tested, one each at 2 posterior sds still told a person rating at
# random something false in 22 of 40 sessions after 40 rounds, and one rating everything alike (noise 0.8) in 16
# of 40. Holm's step-down procedure (Holm, Scand. J. Statist. 6, 1979) keeps the chance of saying anything false,
# when nothing is true, at FAMILY_ERROR: measured 4 and 2 of 40, while a person with one strong liking is told it in
# 30 of 40 (was 37); 0.1 and 0.3 tried (docs/BENCHMARKS.md, "Lessons said as a family").
FAMILY_ERROR = 0.2
# Two lessons whose typical edits point this much the same way or opposite ways (|cosine|) say one thing: the surer
# is said ("dislikes removing a note" and "likes a track of at least eight notes" when the removals left it at seven).
SAME_LESSON = 0.95


def lessons(posterior: Posterior, names: Sequence[str] = FEATURE_NAMES, min_judged: int = 3, kinds_only: bool | None = None) -> list[Lesson]:
    """What the model is most sure of, one Lesson per feature seen in at least `min_judged` judged edits, most
    certain first (by |effect| / sd), a lesson that says what a surer one says, or its mirror image, left out
    (SAME_LESSON).

    A feature's effect is what the model expects of the judged edits that had it: m . w for the typical such
    edit m = t_i G[i] / G[i, i] (G the judged edits' sum x x^T, t_i the feature's typical change), so the
    features that come with it count too (a chord added on the beat is both "adding a chord" and "chords on
    the beat"; each says what such edits gain, not half of it); its sd is sqrt(m^T Cov m). For a 0/1 feature,
    m is the mean feature vector of the edits that had it. A kind of edit is said against the kind in the middle (or
    the other judged edits) instead, measured from the judged edits (`kind_contrasts`), where the evidence allows; the
    middle one is not said. Only kinds where the scope `rates_the_edit` (`kinds_only` None), or as `kinds_only` says."""
    mean, covariance = posterior.mean(), posterior.covariance()
    # What is said must hold under the scatter the scope's ratings show (the choices keep the bench-tuned NOISE_SD):
    # the covariance scaled by it, as it would be where the ratings outweigh the prior.
    covariance = covariance * (posterior.noise_sd() / NOISE_SD) ** 2
    evidence = posterior.evidence
    gram = evidence.edit_gram
    middle, measured = kind_contrasts(evidence, names, min_judged)
    if kinds_only is None:
        kinds_only = rates_the_edit(evidence, names)
    found, typicals = [], []
    for i, name in enumerate(names[: posterior.dimension]):
        seen = int(evidence.support[i])
        if seen < min_judged or gram[i, i] <= 0 or (kinds_only and not name.startswith("kind:")):
            continue
        typical = gram[i] / gram[i, i] * (evidence.magnitude[i] / seen)
        words = FEATURE_WORDS.get(name, name)
        if middle is not None and i == middle:
            continue  # the measure of the others, level with itself
        if i in measured:
            effect, sd, against = measured[i]
            found.append(Lesson(name, words, effect, sd, seen, against=against))
        else:
            sd = float(np.sqrt(max(typical @ covariance @ typical, 0.0)))
            found.append(Lesson(name, words, float(typical @ mean), sd, seen))
        typicals.append(typical / np.linalg.norm(typical))
    order = sorted(range(len(found)), key=lambda k: -abs(found[k].effect) / max(found[k].sd, 1e-9))
    said: list[int] = []
    for k in order:
        if all(abs(typicals[k] @ typicals[other]) < SAME_LESSON for other in said):
            said.append(k)
    return [found[k] for k in said]


def rates_the_edit(evidence: Evidence, names: Sequence[str] = FEATURE_NAMES) -> bool:
    """Whether the scope's kinds of edit measure further apart than the prior expects (KindMeans.spread over
    KIND_PRIOR_SD): its people rate the edit they are told of, not the track (an added chord 9, anything else 2), and
    the model's descriptors then follow the bar's ups and downs, not a liking (lessons read from them named 5.7 of those
    a session beside the chords, simulated), so only kinds are said of it."""
    by_kind = KindMeans.of(evidence, names)
    return by_kind is not None and by_kind.spread() > KIND_PRIOR_SD


@dataclass(frozen=True)
class KindMeans:
    """A scope's judged edits grouped by kind of edit (one-way analysis of variance): `judged` {kind's feature index:
    how many}, `mean` {index: their mean improvement, rating points}, `variance` the scatter within kinds (rating
    points squared) blended with NOISE_SD as NOISE_PRIOR_ROWS rows' worth (as in Posterior.noise_sd), on `freedom`
    degrees of freedom."""

    judged: dict[int, float]
    mean: dict[int, float]
    variance: float
    freedom: float

    @staticmethod
    def of(evidence: Evidence, names: Sequence[str] = FEATURE_NAMES) -> KindMeans | None:
        """None where the evidence cannot say: A/B comparison rows (not edits) among its rows, evidence stored before
        sum y^2 was kept, fewer than two kinds judged."""
        if evidence.square is None or evidence.compared is not None or evidence.rows != evidence.count:
            return None
        kinds = [i for i, name in enumerate(names[: evidence.dimension]) if name.startswith("kind:") and evidence.gram[i, i] > 0]
        judged = {k: float(evidence.gram[k, k]) for k in kinds}
        if len(kinds) < 2 or abs(sum(judged.values()) - evidence.count) > 1e-6:  # every judged edit has one kind
            return None
        mean = {k: float(evidence.moment[k]) / judged[k] for k in kinds}
        within = max(evidence.square - sum(judged[k] * mean[k] ** 2 for k in kinds), 0.0)
        freedom = NOISE_PRIOR_ROWS + evidence.count - len(kinds)
        return KindMeans(judged, mean, (NOISE_PRIOR_ROWS * NOISE_SD**2 + within) / freedom, freedom)

    def spread(self) -> float:
        """How far kinds of edit differ in what they gain, in rating points: the standard deviation between kinds by
        the method of moments for one-way random effects, sqrt(max(0, (MSB - MSW) / n0)), n0 = (N - sum n_k^2 / N) /
        (K - 1) (Searle, Casella and McCulloch, Variance Components, 1992, 3.5)."""
        n = sum(self.judged.values())
        grand = sum(self.judged[k] * self.mean[k] for k in self.judged) / n
        between = sum(self.judged[k] * (self.mean[k] - grand) ** 2 for k in self.judged) / (len(self.judged) - 1)
        n0 = (n - sum(j * j for j in self.judged.values()) / n) / (len(self.judged) - 1)
        return math.sqrt(max(0.0, (between - self.variance) / n0)) if n0 > 0 else 0.0


def kind_contrasts(
    evidence: Evidence, names: Sequence[str] = FEATURE_NAMES, min_judged: int = 3
) -> tuple[int | None, dict[int, tuple[float, float, str]]]:
    """The kinds of edit judged at least `min_judged` times, each against the kind in the middle of them, or, with fewer
    than three such kinds, against all the other judged edits (at least `min_judged`): (the middle kind's feature
    index or None, {feature index: (effect, sd, what it is against, in words)}), effect = the mean improvement (rating
    points) of the kind's judged edits minus that of the middle kind's (the lower middle of an even number, by mean
    improvement) or of the others', sd its standard error from the scatter within kinds (one-way analysis of variance;
    the scatter blended with NOISE_SD as NOISE_PRIOR_ROWS rows' worth, as in Posterior.noise_sd), widened for the few
    rows that scatter rests on by Wallace's normal approximation to Student's t (Ann. Math. Statist. 30, 1959): z = t
    (1 - 1/(4 nu)) / sqrt(1 + t^2/(2 nu)).

    Measured, not modelled: people rate the edit they are told of (trials: a chord added 9-10, anything else 2)
    rather than the whole track; then each liked edit improves on the track before by little (it was rated as high)
    while the rest fall far, and the model, whose kinds' prior is narrow, spread that over descriptors and said
    nothing of chords (0 of 30 simulated sessions after 40 rounds). Against an ordinary edit, the liked kind stands
    out however the ratings were meant; the middle kind rather than all the others, so that a kind the crowd is
    indifferent to is not called disliked because another is much liked; all the others when an agent that learned
    the liking proposes it so often that fewer than three kinds are judged enough to have a middle.
    (None, {}) where the evidence cannot say it: A/B comparison rows (not edits) among its rows, evidence stored
    before sum y^2 was kept, no kind judged `min_judged` times against as many others."""
    by_kind = KindMeans.of(evidence, names)
    if by_kind is None:
        return None, {}
    judged, mean = by_kind.judged, by_kind.mean
    ranked = sorted((k for k in judged if judged[k] >= min_judged), key=lambda k: mean[k])
    middle = ranked[(len(ranked) - 1) // 2] if len(ranked) >= 3 else None
    total, count = sum(judged[k] * mean[k] for k in judged), sum(judged.values())
    contrasts = {}
    for k in ranked:
        if middle is not None:
            if k == middle:
                continue
            against, level, others = f"{FEATURE_WORDS.get(names[middle], names[middle])} (the kind in the middle)", mean[middle], judged[middle]
        else:
            others = count - judged[k]
            if others < min_judged:
                continue
            against, level = "the other judged edits", (total - judged[k] * mean[k]) / others
        effect = mean[k] - level
        sd = math.sqrt(by_kind.variance * (1.0 / judged[k] + 1.0 / others))
        t, freedom = effect / sd, by_kind.freedom
        contrasts[k] = (effect, sd * math.sqrt(1.0 + t * t / (2.0 * freedom)) / (1.0 - 1.0 / (4.0 * freedom)), against)
    return middle, contrasts


def sure_lessons(tested: Sequence[Lesson], family_error: float = FAMILY_ERROR, family: int | None = None) -> list[Lesson]:
    """The lessons of `tested` (every lesson the model could say, most certain first: `lessons`) that Holm's step-down
    procedure keeps at family-wise error `family_error` (0-1, two-sided): the i-th most certain (from 0) is kept while
    it and every one before it are at least z = Phi^-1(1 - family_error / (2 (k - i))) sds from 0, k = `family` (how
    many lessons were tested, `tested` being those of them that may be said; default len(tested))."""
    kept: list[Lesson] = []
    family = max(family or len(tested), len(tested))
    for i, lesson in enumerate(tested):
        z = NormalDist().inv_cdf(1.0 - family_error / (2.0 * (family - i)))
        if abs(lesson.effect) < z * lesson.sd:
            break
        kept.append(lesson)
    return kept


def explain(posterior: Posterior | None, names: Sequence[str] = FEATURE_NAMES, top: int = 3) -> list[str]:
    """A few lines in words: what the crowd is most surely found to like, then to dislike
    ("resolving a leap by a step back: +0.8 points an edit on average, the model estimates from the 23 judged edits with
    it"). Empty before any vote."""
    if posterior is None or posterior.count == 0:
        return []
    # Tested as a family of every lesson the model could say, kinds or not, whatever is said of them (rates_the_edit).
    family = len(lessons(posterior, names, kinds_only=False))
    found = [lesson for lesson in sure_lessons(lessons(posterior, names), family=family) if abs(lesson.effect) >= 0.05]
    likes = [lesson for lesson in found if lesson.effect > 0][:top]
    dislikes = [lesson for lesson in found if lesson.effect < 0][:top]
    lines = [f"likes {lesson.text()}" for lesson in likes] + [f"dislikes {lesson.text()}" for lesson in dislikes]
    return lines

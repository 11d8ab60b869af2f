"""What ``/score`` shows: a worker's own card, the 红黑榜 charts and the measures' definitions,
in the reader's language (charts included: titles, axis and legend come from the catalogs)."""

from __future__ import annotations

import html
from datetime import timedelta, tzinfo

from bot import labels
from bot.i18n import N_, gettext_for, join_list
from bot.services import charts
from bot.services.assessment_policy import MEASURES, VETO_KINDS, AssessmentPolicy
from bot.services.indicators import Ratio, day_text
from bot.services.scorecards import RANK_SHOWN, Ranking, Scorecard, period_text
from models import HandlingKind, TicketCategory

SHORT_ITEMS = 2  # "short on": the two measures that cost the most points
VETOED = N_("vetoed (一票否决)")


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def score_text(card: Scorecard, locale: str) -> str:
    if card.vetoed:
        return gettext_for(locale, VETOED)
    if card.score is None:
        return "—"
    return f"{card.score:.1f}"


def span_text(ranking: Ranking, tz: tzinfo, locale: str) -> str:
    """The period, and "up to <day>" while it is still running."""
    text = period_text(ranking.period, locale)
    _, period_end_at = ranking.period.utc_bounds(tz)
    if ranking.end < period_end_at:
        last = (ranking.end - timedelta(microseconds=1)).astimezone(tz).date()
        text = gettext_for(
            locale, N_("{period}, up to {day}"), period=text, day=day_text(last, locale)
        )
    return text


def _figure(part: int, whole: int) -> str:
    return f"{part}/{whole}"


def shortfalls(card: Scorecard, policy: AssessmentPolicy, locale: str) -> list[str]:
    """Where the points were lost, worst first: for visits the rule furthest from its quota
    ("重点户入户 2/5"), for the others the measure itself."""
    losses: list[tuple[float, str]] = []
    for measure in MEASURES:
        weight = policy.weight(measure.key)
        ratio = card.figures.get(measure.key)
        if weight <= 0 or ratio is None or ratio.whole <= 0:
            continue
        share = ratio.part / ratio.whole
        lost = weight * (share if measure.lower_is_better else 1.0 - share)
        if lost <= 0:
            continue
        if measure.key == "visits" and card.visit_rules:
            # the visits' loss shared out over the rules short of their quota
            for rule in card.visit_rules:
                missing = rule.households - rule.fulfilled
                if missing > 0:
                    name = gettext_for(locale, rule.rule_name)
                    losses.append(
                        (
                            weight * missing / ratio.whole,
                            f"{name} {_figure(rule.fulfilled, rule.households)}",
                        )
                    )
            continue
        title = gettext_for(locale, measure.title)
        losses.append((lost, f"{title} {_figure(ratio.part, ratio.whole)}"))
    losses.sort(key=lambda item: -item[0])
    return [text for _, text in losses[:SHORT_ITEMS]]


def measure_lines(card: Scorecard, policy: AssessmentPolicy, locale: str) -> list[str]:
    lines: list[str] = []
    for measure in MEASURES:
        if policy.weight(measure.key) <= 0:
            continue
        ratio = card.figures.get(measure.key, Ratio(0, 0))
        value = (
            gettext_for(locale, N_("nothing to count"))
            if ratio.whole == 0
            else gettext_for(
                locale,
                N_("{part}/{whole} ({percent}%)"),
                part=ratio.part,
                whole=ratio.whole,
                percent=f"{100.0 * ratio.part / ratio.whole:.0f}",
            )
        )
        lines.append(
            "• "
            + gettext_for(
                locale,
                N_("{measure}: {value}"),
                measure=gettext_for(locale, measure.title),
                value=value,
            )
        )
    for rule in card.visit_rules:
        lines.append(
            "  ◦ "
            + gettext_for(
                locale,
                N_("{measure}: {value}"),
                measure=gettext_for(locale, rule.rule_name),  # default rules: msgids
                value=_figure(rule.fulfilled, rule.households),
            )
        )
    return lines


def own_card_text(
    ranking: Ranking, policy: AssessmentPolicy, locale: str, tz: tzinfo
) -> str | None:
    """ "本月得分 86，第 12 名（共 30 人）；差在：重点户入户 2/5", then every measure."""
    card = ranking.own
    if card is None:
        return None
    period = span_text(ranking, tz, locale)
    ranked = sum(1 for c in ranking.workers if c.rank is not None)
    if card.vetoed:
        head = gettext_for(
            locale,
            N_("{period}: vetoed (一票否决), whatever the score; ranked last of {count}."),
            period=period,
            count=ranked,
        )
    elif card.score is None or card.rank is None:
        head = gettext_for(locale, N_("{period}: nothing to score yet."), period=period)
    else:
        head = gettext_for(
            locale,
            N_("{period}: your score is {score}, rank {rank} of {count}."),
            period=period,
            score=f"{card.score:.0f}",
            rank=card.rank,
            count=ranked,
        )
    lines = ["📋 <b>" + esc(gettext_for(locale, N_("My assessment card"))) + "</b>", esc(head)]
    short = shortfalls(card, policy, locale)
    if short:
        separator = gettext_for(locale, N_("; "))
        lines.append(
            esc(gettext_for(locale, N_("Short on: {items}"), items=separator.join(short)))
        )
    lines += ["", *(esc(line) for line in measure_lines(card, policy, locale))]
    return "\n".join(lines)


def ranking_chart(
    ranking: Ranking, locale: str, tz: tzinfo, *, of_grids: bool
) -> charts.RankingChart:
    """The 红黑榜 of the ranking's workers (or grids): the best five and the worst five."""
    cards = [c for c in (ranking.grids if of_grids else ranking.workers) if c.rank is not None]
    picked, gap = charts.pick(len(cards), RANK_SHOWN)
    red = charts.split_best(len(cards), RANK_SHOWN)
    bars = []
    for index in picked:
        card = cards[index]
        label = f"{card.rank}. {card.name}"
        if not of_grids and card.grid_name:
            label = gettext_for(locale, N_("{name} · {grid}"), name=label, grid=card.grid_name)
        bars.append(
            charts.Bar(
                label=label,
                value=0.0 if card.vetoed else float(card.score or 0.0),
                text=score_text(card, locale),
                best=red[index] and not card.vetoed,
                vetoed=card.vetoed,
            )
        )
    title = N_("{grid}: grids ranked") if of_grids else N_("{grid}: workers ranked")
    return charts.RankingChart(
        locale=locale,
        title=gettext_for(locale, title, grid=ranking.root.name),
        subtitle=span_text(ranking, tz, locale),
        axis=gettext_for(locale, N_("Score (out of 100)")),
        best_label=gettext_for(locale, N_("Red list: the best")),
        worst_label=gettext_for(locale, N_("Black list: the last")),
        empty=gettext_for(locale, N_("Nothing to score yet in this period.")),
        bars=tuple(bars),
        gap_after=gap,
    )


def charts_for(ranking: Ranking, locale: str, tz: tzinfo) -> list[charts.RankingChart]:
    """The workers' chart, and the grids' one below the root when there are grids."""
    result = [ranking_chart(ranking, locale, tz, of_grids=False)]
    if ranking.grids:
        result.append(ranking_chart(ranking, locale, tz, of_grids=True))
    return result


def caption(ranking: Ranking, locale: str, tz: tzinfo) -> str:
    scored = sum(1 for c in ranking.workers if c.rank is not None)
    vetoed = sum(1 for c in ranking.workers if c.vetoed)
    text = gettext_for(
        locale,
        N_("{grid}, {period}: {scored} of {count} workers scored, {vetoed} vetoed."),
        grid=ranking.root.name,
        period=span_text(ranking, tz, locale),
        scored=scored,
        count=len(ranking.workers),
        vetoed=vetoed,
    )
    hint = gettext_for(locale, N_("/score help explains the measures and weights."))
    return esc(text) + "\n" + esc(hint)


def help_text(policy: AssessmentPolicy, locale: str) -> str:
    """Every measure with its weight and definition, and the veto rules in force."""
    lines = ["📐 <b>" + esc(gettext_for(locale, N_("How the assessment is scored"))) + "</b>"]
    lines.append(
        esc(
            gettext_for(
                locale,
                N_(
                    "The score is the weighted mean of the measures that have something to "
                    "count, out of 100. A veto puts a card last whatever its score."
                ),
            )
        )
    )
    for measure in MEASURES:
        weight = policy.weight(measure.key)
        lines += [
            "",
            "<b>"
            + esc(
                gettext_for(
                    locale,
                    N_("{measure} (weight {weight})"),
                    measure=gettext_for(locale, measure.title),
                    weight=weight,
                )
            )
            + "</b>",
            esc(gettext_for(locale, measure.definition)),
        ]
    kinds = {kind.key: kind for kind in VETO_KINDS}

    def translate(message: str) -> str:
        return gettext_for(locale, message)

    for rule in policy.veto:
        lines += [
            "",
            esc(gettext_for(locale, kinds[rule.kind].definition, at_least=rule.at_least)),
            esc(
                gettext_for(
                    locale,
                    N_("Categories: {categories}; handling: {handling}"),
                    categories=join_list(
                        translate,
                        (
                            translate(labels.TICKET_CATEGORY[TicketCategory(c)])
                            for c in rule.categories
                        ),
                    ),
                    handling=join_list(
                        translate,
                        (translate(labels.HANDLING_KIND[HandlingKind(h)]) for h in rule.handling),
                    ),
                )
            ),
        ]
    return "\n".join(lines)

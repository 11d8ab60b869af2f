"""How person tags and follow-ups (随访) read in a chat: the tags, what is due, the form, the
follow-up part of the morning push and of /quota; their callback data.

Every renderer takes ``t(msgid, **params)`` (see :mod:`bot.telegram.visit_views`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_
from bot.services.daily_push import Markup, MorningPush
from bot.services.follow_ups import DueFollowUp, Recorded, TagProgress
from bot.services.tags import FollowUpCadence, TagDef, TagPolicy
from bot.telegram.callbacks import RowId
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import markup_json

Translate = Callable[..., str]

MAX_BUTTONS = 20  # follow-up buttons under one message
BAR_WIDTH = 10

GROUP_LABEL = {
    "special": N_("Special groups (特殊人群)"),
    "health": N_("Health (健康)"),
    "minor": N_("Minors (未成年人)"),
    "welfare": N_("Welfare (民政)"),
}
PARTNER_LABEL = {  # the partner departments the default tags name
    "police": N_("the police station"),
    "justice": N_("the justice office"),
    "health": N_("the health station"),
    "civil_affairs": N_("the civil affairs office"),
}
CADENCE = {
    "month": N_("{times} a month"),
    "quarter": N_("{times} a quarter"),
    "year": N_("{times} a year"),
}
SENSITIVE = N_("sensitive")
PERSONAL = N_("personal")


class FollowUpCb(CallbackData, prefix="fu"):
    """Record a follow-up of this person tag (``PersonTag.id``): the form is asked next."""

    id: RowId


def cadence_text(cadence: FollowUpCadence | None, t: Translate) -> str:
    if cadence is None:
        return t("no follow-ups")
    text = t(CADENCE[cadence.period.value], times=cadence.times)
    if cadence.partner in PARTNER_LABEL:
        text += t(" with {partner}", partner=t(PARTNER_LABEL[cadence.partner]))
    return text


def form_text(tag: TagDef) -> str:
    """The form's answers in order, with numbered choices: ``血压(mmHg); 服药 (1. 规律 …)``."""
    parts = []
    for field in tag.form:
        if field.options:
            choices = " ".join(f"{i}.{o}" for i, o in enumerate(field.options, start=1))
            parts.append(f"{field.label} ({choices})")
        else:
            parts.append(field.label)
    return "; ".join(parts)


def policy_text(policy: TagPolicy, t: Translate) -> str:
    """The tags, who follows them up and how often, for ``/tags``."""
    lines = [bold(t("Person tags and their follow-ups (随访)"))]
    for group, label in GROUP_LABEL.items():
        group_tags = [tag for tag in policy.tags if tag.group == group]
        if not group_tags:
            continue
        lines.append("")
        lines.append(bold(t(label)))
        for tag in group_tags:
            level = t(SENSITIVE) if tag.sensitive else t(PERSONAL)
            lines.append(
                f"• {bold(tag.name)} — "
                + esc(f"{cadence_text(tag.follow_up, t)} · {level} · {form_text(tag)}")
            )
    lines.append("")
    lines.append(
        esc(
            t(
                "/tag <resident number> <tag> — tag a person; /untag <resident number> <tag>; "
                "/followup — follow-ups due; /tags file — the tags file to edit "
                "(administrators)."
            )
        )
    )
    return "\n".join(lines)


def _item_line(item: DueFollowUp, t: Translate, *, done: bool = False) -> str:
    marks = "⚠️" if item.overdue else ""
    line = (
        f"{marks}{bold(item.name or '—')} {code(item.household_code)} · {esc(item.tag_name)}"
        f" {item.done}/{item.times}"
    )
    if item.partner in PARTNER_LABEL:
        line += esc(t(" with {partner}", partner=t(PARTNER_LABEL[item.partner or ""])))
    return f"✅ <s>{line}</s>" if done else f"• {line}"


def _buttons(items: Sequence[DueFollowUp], done: frozenset[int]) -> Markup | None:
    buttons = [
        [
            InlineKeyboardButton(
                text=f"📝 {item.name or item.household_code} · {item.tag_name}"[:40],
                callback_data=FollowUpCb(id=item.person_tag_id).pack(),
            )
        ]
        for item in items[:MAX_BUTTONS]
        if item.person_tag_id not in done
    ]
    return markup_json(InlineKeyboardMarkup(inline_keyboard=buttons)) if buttons else None


def push_part(push: MorningPush, t: Translate) -> tuple[str, Markup | None] | None:
    """The follow-up message of the morning push: who is due (⚠️ missed last period too),
    one followed up since struck through and without its button."""
    if not push.follow_ups:
        return None
    lines = [bold(t("Follow-ups due this period (随访): {count}", count=push.follow_ups_due))]
    lines += [_item_line(i, t, done=i.person_tag_id in push.followed) for i in push.follow_ups]
    more = push.follow_ups_due - len(push.follow_ups)
    if more > 0:
        lines.append(esc(t("…and {count} more: send /followup.", count=more)))
    lines.append(esc(t("Tap 📝 to record a follow-up; it counts as a home visit.")))
    return "\n".join(lines), _buttons(push.follow_ups, push.followed)


def due_text(items: Sequence[DueFollowUp], t: Translate) -> str:
    if not items:
        return t("No follow-ups are due in your households this period.")
    lines = [bold(t("Follow-ups due this period (随访): {count}", count=len(items)))]
    lines += [_item_line(item, t) for item in items[:MAX_BUTTONS]]
    if len(items) > MAX_BUTTONS:
        lines.append(esc(t("…and {count} more.", count=len(items) - MAX_BUTTONS)))
    lines.append(esc(t("Tap 📝 to record a follow-up; it counts as a home visit.")))
    return "\n".join(lines)


def due_keyboard(items: Sequence[DueFollowUp]) -> InlineKeyboardMarkup | None:
    markup = _buttons(items, frozenset())
    return None if markup is None else InlineKeyboardMarkup.model_validate(markup)


def form_prompt(tag: TagDef, name: str, t: Translate) -> str:
    return "\n".join(
        [
            bold(t("Follow-up of {name} · {tag}", name=name or "—", tag=tag.name)),
            esc(t("Send the answers in one message, separated by “;”:")),
            esc(form_text(tag)),
            esc(t("A note may follow after the last answer. /cancel to stop.")),
        ]
    )


def recorded_text(recorded: Recorded, t: Translate) -> str:
    answers = "; ".join(
        f"{field.label}: {recorded.follow_up.answers.get(field.key, '—')}"
        for field in recorded.tag.form
    )
    lines = [
        esc(
            t(
                "Follow-up recorded: {name} · {tag} ({done}/{times} this period).",
                name=recorded.name or "—",
                tag=recorded.tag.name,
                done=recorded.done,
                times=recorded.times,
            )
        ),
        esc(answers),
        esc(t("It is in your diary as a home visit and counts toward your quota.")),
    ]
    return "\n".join(lines)


def progress_lines(rows: Sequence[TagProgress], t: Translate) -> list[str]:
    """The follow-up part of /quota: per tag, people followed up as their period asks."""
    if not rows:
        return []
    lines = ["", bold(t("Follow-ups (随访): people followed up this period"))]
    for row in rows:
        filled = 0 if row.total <= 0 else min(BAR_WIDTH, round(BAR_WIDTH * row.done / row.total))
        bar = "▓" * filled + "░" * (BAR_WIDTH - filled) + f" {row.done}/{row.total}"
        lines.append(f"  {code(bar)} {esc(row.tag_name)}")
    return lines

"""The language check of the end-to-end harness catches what people tripped over (issue 19)."""

from __future__ import annotations

import pytest

from tests.e2e.language import LanguageWatch, Shown, faults


@pytest.mark.parametrize(
    "shown,locale",
    [
        ("Your visit quotas: households that got their visits\n\n👤 王晓峰", "zh_Hans"),
        ("确定撤回吗？\nWithdraw this visit? It will no longer count.", "zh_Hant"),
        ("工作时间：08:30–12:00、14:00–17:30 Working hours", "zh_Hans"),
        ("12-07 18:28 rating_comment · ：", "zh_Hans"),
        ("12-07 18:28 rating_comment · ", "en"),
        ("Working hours: 08:30–12:00、14:00–17:30 (Asia/Shanghai)", "en"),
        ("urgent（round the clock）", "en"),
        ("12-07 18:28 comment ·：", "en"),
    ],
)
def test_a_text_in_the_wrong_language_is_caught(shown: str, locale: str) -> None:
    assert faults(shown, locale)


@pytest.mark.parametrize(
    "shown,locale",
    [
        ("发送 /report 报告问题，或者 /quota_rules 查看。", "zh_Hans"),
        ("导出 Excel 表格，扫 QR 码加入。", "zh_Hans"),
        ("工单 3502110010010101-20261207-001 · 电话 +86 138 0000 0000", "zh_Hant"),
        ("Send /report to report a problem.", "en"),
        ("Separate the names by commas (or “、”):", "en"),
        ("Description: 灯还是不亮，晚上很黑", "en"),  # the user's words keep their commas
        ("classified (定性) · outcome posted (公示)", "en"),
    ],
)
def test_a_text_in_the_right_language_passes(shown: str, locale: str) -> None:
    assert faults(shown, locale) == []


def test_what_people_typed_and_the_records_are_theirs_in_any_language() -> None:
    watch = LanguageWatch("zh_Hans")
    watch.typed.add("the lamp is broken again")
    watch.shown.append(Shown(1, "zh_Hans", "您写的是：the lamp is broken again"))
    watch.shown.append(Shown(2, "en", "Grid: 杏东花园（2号楼），workers: 王晓峰"))
    assert watch.problems({"杏东花园（2号楼）"}) == [
        "[en] Chinese punctuation '，': 'Grid: 杏东花园（2号楼），workers: 王晓峰'"
    ]

"""A person's name from its two parts (Telegram's first and last name): one function."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.services.people import full_name


def test_chinese_names_put_the_family_name_first() -> None:
    assert full_name("四", "李") == "李四"
    assert full_name("小明", "欧阳") == "欧阳小明"
    assert full_name("  四 ", " 李 ") == "李四"


def test_japanese_and_korean_names_too() -> None:
    assert full_name("太郎", "山田") == "山田太郎"
    assert full_name("민준", "김") == "김민준"


def test_latin_names_keep_given_family() -> None:
    assert full_name("Ada", "Lovelace") == "Ada Lovelace"
    assert full_name("José", "Núñez") == "José Núñez"
    assert full_name("Иван", "Петров") == "Иван Петров"


def test_mixed_scripts_put_the_family_name_first_with_a_space() -> None:
    assert full_name("四", "Li") == "Li 四"
    assert full_name("Mary", "王") == "王 Mary"


def test_one_part_alone_is_the_name() -> None:
    assert full_name("李四", None) == "李四"
    assert full_name("", "李") == "李"
    assert full_name(None, None) == ""
    assert full_name("   ", "Lovelace") == "Lovelace"


@given(st.text(max_size=30), st.one_of(st.none(), st.text(max_size=30)))
def test_any_parts_give_both_parts_and_nothing_else(given_name: str, family: str | None) -> None:
    name = full_name(given_name, family)
    assert given_name.strip() in name and (family or "").strip() in name
    assert len(name) <= len(given_name.strip()) + len((family or "").strip()) + 1

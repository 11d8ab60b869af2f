"""The callback data of the admin pickers (/export, /template, /invite, /meeting's grid)
against hostile input: only the exact text a button carries parses; anything else is a stale
button, never an exception or a row the presser did not see."""

from __future__ import annotations

from enum import Enum

import pytest
from aiogram.filters.callback_data import CallbackData
from hypothesis import given
from hypothesis import strategies as st

from bot.telegram.callbacks import (
    MAX_ROW_ID,
    ExportCb,
    ExportGridCb,
    GridEditCb,
    GridOp,
    InviteDepartmentCb,
    InviteGridCb,
    InviteRoleCb,
    Ledger,
    MuteSpan,
    NoticeField,
    NoticeFieldCb,
    PersonAction,
    PersonCb,
    PersonDepartmentCb,
    PersonGridCb,
    PersonMuteCb,
    PersonRoleCb,
    PickStep,
    TemplateCb,
)
from bot.telegram.meeting_views import MeetingGridCb
from models import Role

STRICT: list[type[CallbackData]] = [
    ExportCb,
    ExportGridCb,
    GridEditCb,
    NoticeFieldCb,
    TemplateCb,
    InviteRoleCb,
    InviteGridCb,
    InviteDepartmentCb,
    MeetingGridCb,
    PersonCb,
    PersonMuteCb,
    PersonRoleCb,
    PersonGridCb,
    PersonDepartmentCb,
]
ids = st.integers(min_value=0, max_value=MAX_ROW_ID)
VALID = st.one_of(
    st.builds(ExportCb, ledger=st.sampled_from(Ledger)),
    st.builds(TemplateCb, ledger=st.sampled_from(Ledger)),
    st.builds(InviteRoleCb, role=st.sampled_from(Role)),
    st.builds(
        InviteGridCb,
        role=st.sampled_from(Role),
        grid=ids,
        page=ids,
        step=st.sampled_from(PickStep),
    ),
    st.builds(InviteDepartmentCb, grid=ids, department=ids, page=ids),
    st.builds(MeetingGridCb, grid=ids, page=ids, step=st.sampled_from(PickStep)),
    st.builds(
        ExportGridCb,
        ledger=st.sampled_from(Ledger),
        grid=ids,
        page=ids,
        step=st.sampled_from(PickStep),
    ),
    st.builds(
        GridEditCb,
        op=st.sampled_from(GridOp),
        subject=ids,
        grid=ids,
        page=ids,
        step=st.sampled_from(PickStep),
    ),
    st.builds(NoticeFieldCb, grid=ids, field=st.sampled_from(NoticeField)),
    st.builds(PersonCb, action=st.sampled_from(PersonAction), person=ids),
    st.builds(PersonMuteCb, person=ids, hours=st.sampled_from(MuteSpan)),
    st.builds(PersonRoleCb, person=ids, role=st.sampled_from(Role)),
    st.builds(
        PersonGridCb,
        person=ids,
        role=st.sampled_from(Role),
        grid=ids,
        page=ids,
        step=st.sampled_from(PickStep),
    ),
    st.builds(PersonDepartmentCb, person=ids, grid=ids, department=ids, page=ids),
)


@given(data=VALID)
def test_every_button_fits_telegrams_64_bytes_and_parses_back(data: CallbackData) -> None:
    packed = data.pack()
    assert len(packed.encode()) <= 64
    assert type(data).unpack(packed) == data


@pytest.mark.parametrize(
    ("cls", "packed"),
    [
        (InviteGridCb, "ig:worker:+7:0:c"),
        (InviteGridCb, "ig:worker:07:0:c"),
        (InviteGridCb, "ig:worker: 7:0:c"),
        (InviteGridCb, "ig:worker:7.0:0:c"),
        (InviteGridCb, "ig:worker:１:0:c"),  # a full-width digit
        (InviteGridCb, "ig:worker:7_0:0:c"),
        (InviteGridCb, "ig:worker:-1:0:c"),
        (InviteGridCb, f"ig:worker:{MAX_ROW_ID + 1}:0:c"),
        (InviteGridCb, "ig:worker:7:0"),
        (InviteGridCb, "ig:worker:7:0:c:1"),
        (InviteGridCb, "ig:Worker:7:0:c"),
        (InviteGridCb, "ig:worker:7:0:C"),
        (InviteGridCb, "ig:worker:7:0:"),
        (InviteGridCb, "ig:网格员:7:0:c"),
        (InviteRoleCb, "iv:"),
        (InviteRoleCb, "iv:root"),
        (InviteRoleCb, "iv:worker:1"),
        (ExportCb, "ex:x"),
        (ExportCb, "ex:h:7"),
        (ExportCb, "ex:"),
        (TemplateCb, "tm:H"),
        (InviteDepartmentCb, "id:1:2"),
        (InviteDepartmentCb, "id:1:2:3:4"),
        (InviteDepartmentCb, "id:1:2:9" + "9" * 40),
        (MeetingGridCb, "mw:1:0:x"),
        (MeetingGridCb, "mw:1e3:0:o"),
        (MeetingGridCb, "mw:0x1:0:o"),
        (ExportGridCb, "eg:h:1:0"),
        (ExportGridCb, "eg:h:+1:0:c"),
        (GridEditCb, "ge:a:0:1:0:z"),
        (GridEditCb, "ge:x:0:1:0:c"),
        (GridEditCb, "ge:a:00:1:0:c"),
        (NoticeFieldCb, "gf:1:address"),
        (NoticeFieldCb, "gf:1:AREA"),
        (NoticeFieldCb, "gf::area"),
        (PersonMuteCb, "pm:1:25"),  # only the offered spans
        (PersonMuteCb, "pm:1:99999"),
        (PersonMuteCb, "pm:1:-24"),
        (PersonCb, "pe:o:1:2"),
        (PersonCb, "pe:z:1"),
        (PersonRoleCb, "pr:1:superuser"),
        (PersonGridCb, "pq:1:worker:1:0"),
        (PersonDepartmentCb, "pd:1:1:1"),
    ],
)
def test_forged_shapes_do_not_parse(cls: type[CallbackData], packed: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        cls.unpack(packed)


@given(cls=st.sampled_from(STRICT), tail=st.text(max_size=60))
def test_whatever_follows_a_prefix_parses_only_as_what_a_button_would_carry(
    cls: type[CallbackData], tail: str
) -> None:
    packed = f"{cls.__prefix__}{cls.__separator__}{tail}"
    try:
        parsed = cls.unpack(packed)
    except (ValueError, TypeError):
        return
    assert parsed.pack() == packed
    for name, value in parsed.model_dump().items():
        if isinstance(value, int) and not isinstance(value, Enum):
            assert 0 <= value <= MAX_ROW_ID, name

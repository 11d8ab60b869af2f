"""The report's photos as the card's 📷 button sends them: albums of at most ten, each a call
the Bot API takes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bot.telegram.replies import Replier
from bot.telegram.sender import StoredCall
from bot.telegram.ticket_views import ALBUM_SIZE, photo_batches

NOW = datetime(2026, 3, 12, 9, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=95))
def test_albums_hold_at_most_ten_in_order_and_never_leave_one_alone(count: int) -> None:
    photos = [f"p{n}" for n in range(count)]
    batches = photo_batches(photos)
    assert [p for batch in batches for p in batch] == photos
    assert len(batches) == -(-count // ALBUM_SIZE)
    assert all(1 <= len(batch) <= ALBUM_SIZE for batch in batches)
    if count > 1:
        assert all(len(batch) >= 2 for batch in batches)  # a batch of one is sent by itself
    assert max(map(len, batches), default=0) - min(map(len, batches), default=0) <= 1


class _Session:
    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, row: object) -> None:
        self.added.append(row)


def test_one_photo_is_sent_by_itself_and_several_as_one_album(tmp_path: Path) -> None:
    session = _Session()
    reply = Replier(session, 42, NOW, None, tmp_path)  # type: ignore[arg-type]
    single = reply.photos(["AgAD1"], "工单 1 的照片")
    album = reply.photos(["AgAD1", "AgAD2", "AgAD3"], "工单 1 的照片")
    assert single.method == "sendPhoto" and single.payload["photo"] == "AgAD1"
    assert album.method == "sendMediaGroup"
    assert [m["media"] for m in album.payload["media"]] == ["AgAD1", "AgAD2", "AgAD3"]
    assert album.payload["media"][0]["caption"] == "工单 1 的照片"
    assert "caption" not in album.payload["media"][1]
    for row in (single, album):  # what the sender builds from the row: valid Bot API calls
        StoredCall(row.method, row.payload).build()

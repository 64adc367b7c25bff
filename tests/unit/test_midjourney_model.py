"""Midjourney's task shapes as the gateway sends them, and the button layout under a picture."""

import pytest

from bot.clients.midjourney_errors import MidjourneyBadAnswer
from bot.clients.midjourney_tasks import MjButton, MjTask
from bot.midjourney.keyboard import MjPress, button_rows, keyboard


def test_a_task_is_read_tolerantly() -> None:
    task = MjTask.from_json(
        {
            "id": 1712345678901234,
            "action": "IMAGINE",
            "status": "IN_PROGRESS",
            "progress": "45%",
            "imageUrl": "https://cdn.example/x.webp?sig=1",
            "failReason": None,
            "prompt": "cat",
            "buttons": [
                {"customId": "MJ::JOB::upsample::1::ab", "emoji": "", "label": "U1", "type": 2, "style": 2},
                {"customId": "MJ::JOB::reroll::0::ab::SOLO", "emoji": "🔄", "label": "", "type": 2},
                {"customId": "MJ::nothing", "emoji": "", "label": ""},  # nothing to show: skipped
                {"emoji": "❤️", "label": "like"},  # no customId: skipped
                "garbage",
            ],
        }
    )
    assert (task.id, task.status, task.progress, task.fail_reason) == ("1712345678901234", "IN_PROGRESS", 45, "")
    assert task.buttons == (
        MjButton("MJ::JOB::upsample::1::ab", "U1"),
        MjButton("MJ::JOB::reroll::0::ab::SOLO", "🔄"),
    )
    assert not task.finished


@pytest.mark.parametrize("progress", [None, "", "abc", "100%", "250%"])
def test_odd_progress_values_are_clamped(progress: str | None) -> None:
    task = MjTask.from_json({"id": "1", "status": "SUCCESS", "progress": progress})
    assert 0 <= task.progress <= 100 and task.finished


@pytest.mark.parametrize("raw", [None, [], {}, {"id": ""}, {"status": "SUCCESS"}])
def test_a_task_without_id_is_a_bad_answer(raw: object) -> None:
    with pytest.raises(MidjourneyBadAnswer):
        MjTask.from_json(raw)


def test_grid_buttons_follow_midjourneys_layout() -> None:
    labels = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    rows = [[labels[i] for i in row] for row in button_rows(labels)]
    assert rows == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]


def test_upscale_buttons_are_packed_by_width() -> None:
    labels = ["Vary (Strong)", "Vary (Subtle)", "Upscale (Subtle)", "Zoom Out 2x", "⬅️", "➡️", "⬆️", "⬇️"]
    rows = button_rows(labels)
    assert sorted(i for row in rows for i in row) == list(range(len(labels)))
    for row in rows:
        assert len(row) <= 5 and sum(max(len(labels[i]), 3) for i in row) <= 28


def test_callback_data_is_short_and_round_trips() -> None:
    markup = keyboard([("k" * 12, "U1"), ("z" * 12, "🔄")])
    assert markup is not None
    data = [button.callback_data for row in markup.inline_keyboard for button in row]
    assert all(len(item.encode()) <= 64 for item in data)
    assert MjPress.unpack(data[0]).key == "k" * 12
    assert keyboard([]) is None

"""Photos: questions about them (vision), /edit and /draw, in private chats and groups, and every refusal."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest

from testkit.doubles.gateway import GatewayCall, GatewayDouble, openai_error
from testkit.doubles.telegram_api import Call, TelegramDouble
from testkit.media import image_size, make_jpeg, make_png, make_webp
from tests.e2e.harness import StartBot, new_person
from tests.e2e.steps import Conversation

_groups = itertools.count(-1001000000001, -1)
_colours = itertools.count(1)


def _unique_png(width: int = 64, height: int = 48) -> bytes:
    """A picture no other test sends, so gateway calls can be told apart by their bytes."""
    n = next(_colours)
    return make_png(width, height, (n * 37 % 256, n * 91 % 256, n * 13 % 256))


def _image_parts(call: GatewayCall) -> list[dict[str, Any]]:
    content = call.json["messages"][-1]["content"]
    return [part for part in content if part.get("type") == "image_url"]


def _data_url_bytes(url: str) -> tuple[str, bytes]:
    header, encoded = url.split(",", 1)
    assert header.startswith("data:") and header.endswith(";base64")
    return header[len("data:") : -len(";base64")], base64.b64decode(encoded)


async def _vision_call(gateway: GatewayDouble, picture: bytes) -> GatewayCall:
    """The vision request that carried this picture (or, when scaled, the only one with this question)."""
    return await gateway.wait_for(
        lambda call: (
            call.path.endswith("/chat/completions")
            and any(_data_url_bytes(part["image_url"]["url"])[1] == picture for part in _image_parts(call))
        )
    )


def _edit_calls_with(gateway: GatewayDouble, picture: bytes) -> list[GatewayCall]:
    return [
        call
        for call in gateway.calls_to("/images/edits")
        if any(upload.data == picture for upload in call.uploads("image"))
    ]


def _sent_picture(call: Call) -> bytes:
    data = call.files["photo"].data
    image_size(data)  # fully decodes: a real image, not just a header
    return data


@pytest.fixture
def group(telegram: TelegramDouble) -> dict[str, Any]:
    return telegram.group_chat(next(_groups), title="Picture club")


pytestmark_shared = pytest.mark.usefixtures("bot")


# --- vision -----------------------------------------------------------------------------------


@pytestmark_shared
async def test_a_photo_with_a_question_is_answered_by_the_vision_model(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    picture = make_jpeg(80, 60, (10, 200, 30))
    me.send_photo(picture, caption="what colour is this?")

    assert await me.reply_text() == "echo: what colour is this?"
    call = await _vision_call(gateway, picture)
    assert call.json["model"] == "gpt-4o"
    [part] = _image_parts(call)
    mime, sent = _data_url_bytes(part["image_url"]["url"])
    assert (mime, sent) == ("image/jpeg", picture)  # the full-size photo, typed from its bytes
    assert call.json["messages"][-1]["content"][0] == {"type": "text", "text": "what colour is this?"}
    assert "typing" in [c.params["action"] for c in me.calls_since("sendChatAction")]
    assert (await me.quota())["vision"] == (1, "20")


@pytestmark_shared
@pytest.mark.parametrize(
    ("language", "question"), [("en", "Describe this image."), ("zh-hans", "请描述这张图片。")]
)
async def test_a_photo_without_caption_gets_a_description_in_the_users_language(
    telegram: TelegramDouble, gateway: GatewayDouble, person, language: str, question: str
) -> None:
    me = Conversation(telegram, *person(language_code=language))
    picture = _unique_png()
    me.send_photo(picture)

    assert await me.reply_text() == f"echo: {question}"
    call = await _vision_call(gateway, picture)
    assert call.json["messages"][-1]["content"][0]["text"] == question


@pytestmark_shared
@pytest.mark.parametrize(
    ("declared", "maker", "expected"),
    [
        ("image/png", make_png, "image/png"),
        ("image/webp", make_webp, "image/webp"),
        ("image/jpeg", make_png, "image/png"),  # the sender's label is wrong: the bytes decide
    ],
)
async def test_an_image_sent_as_a_file_is_looked_at_too(
    telegram: TelegramDouble, gateway: GatewayDouble, person, declared: str, maker, expected: str
) -> None:
    me = Conversation(telegram, *person())
    n = next(_colours)
    picture = maker(50, 40, (n, 255 - n, 77))
    me.send_document(picture, "picture.bin", declared, caption="and this file?")

    assert await me.reply_text() == "echo: and this file?"
    [part] = _image_parts(await _vision_call(gateway, picture))
    assert _data_url_bytes(part["image_url"]["url"]) == (expected, picture)


@pytestmark_shared
async def test_a_very_large_image_is_scaled_down_before_it_is_sent(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    picture = _unique_png(4000, 3000)
    me.send_document(picture, "huge.png", "image/png", caption="count the pixels please")

    await me.reply_text()
    call = await gateway.wait_for(
        lambda c: c.path.endswith("/chat/completions") and "count the pixels" in str(c.json["messages"][-1])
    )
    [part] = _image_parts(call)
    mime, sent = _data_url_bytes(part["image_url"]["url"])
    kind, width, height = image_size(sent)
    assert (width, height) == (2048, 1536)
    assert mime == f"image/{kind}"


@pytestmark_shared
async def test_follow_up_text_can_refer_to_the_picture(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    me.send_photo(_unique_png(), caption="what is on this sign?")
    await me.reply_text()
    me.send_text("and what language was the sign in?")
    await me.reply_text()

    call = await gateway.wait_for(
        lambda c: (
            c.path.endswith("/chat/completions")
            and c.json["messages"][-1]["content"] == "and what language was the sign in?"
        )
    )
    history = [m["content"] for m in call.json["messages"][1:-1]]
    assert history == ["[sent a photo] what is on this sign?", "echo: what is on this sign?"]
    assert "base64" not in str(call.json)  # a note of the picture, never its bytes


# --- /edit ------------------------------------------------------------------------------------


@pytestmark_shared
async def test_edit_by_caption_sends_back_the_changed_photo(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    picture = _unique_png(96, 64)
    request = me.send_photo(picture, caption="/edit make it a watercolor")

    sent = await me.reply("sendPhoto")
    edited = _sent_picture(sent)
    assert image_size(edited)[1:] == (96, 64) and edited != picture
    assert sent.params["reply_parameters"]["message_id"] == request["message"]["message_id"]
    [call] = _edit_calls_with(gateway, picture)
    assert call.fields["model"] == "gpt-image-1"
    assert call.fields["prompt"] == "make it a watercolor"
    assert "upload_photo" in [c.params["action"] for c in me.calls_since("sendChatAction")]
    assert (await me.quota())["edit"] == (1, "5")


@pytestmark_shared
async def test_edit_by_reply_to_a_drawn_picture(telegram: TelegramDouble, gateway: GatewayDouble, person) -> None:
    me = Conversation(telegram, *person())
    me.send_text("/draw a fox in the snow")
    drawn = await me.reply("sendPhoto")
    drawn_bytes = _sent_picture(drawn)

    me.send_text("/edit remove the fox", reply_to=drawn.result)
    edited = await me.reply("sendPhoto")
    _sent_picture(edited)
    [call] = _edit_calls_with(gateway, drawn_bytes)
    assert call.fields["prompt"] == "remove the fox"


@pytestmark_shared
async def test_edit_of_an_album_sends_all_its_images(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    pictures = [_unique_png() for _ in range(3)]
    album = f"album-{next(_colours)}"
    me.send_photo(pictures[0], caption="/edit put them on one poster", media_group_id=album)
    for picture in pictures[1:]:
        me.send_photo(picture, media_group_id=album)

    _sent_picture(await me.reply("sendPhoto"))
    [call] = _edit_calls_with(gateway, pictures[0])
    assert [upload.data for upload in call.uploads("image")] == pictures
    assert call.fields["prompt"] == "put them on one poster"
    await telegram.wait_idle(0.8)
    assert len(me.calls_since("sendPhoto")) == 1  # one answer for the album, not one per picture
    assert not me.calls_since("sendMessage")


# --- /draw ------------------------------------------------------------------------------------


@pytestmark_shared
async def test_draw_sends_a_photo_captioned_with_the_revised_prompt(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    art = _unique_png(128, 128)
    gateway.when("/images/generations", lambda c: c.json["prompt"] == "a red fox in snow").reply_json(
        200,
        {
            "created": 1,
            "data": [{"b64_json": base64.b64encode(art).decode(), "revised_prompt": "A red fox <b>in</b> & snow"}],
        },
    )
    me.send_text("/draw a red fox in snow")

    sent = await me.reply("sendPhoto")
    assert _sent_picture(sent) == art
    assert sent.result["caption"] == "A red fox <b>in</b> & snow"  # escaped, so shown as the model wrote it
    [call] = [c for c in gateway.calls_to("/images/generations") if c.json["prompt"] == "a red fox in snow"]
    assert call.json["model"] == "gpt-image-1"
    assert (await me.quota())["draw"] == (1, "5")


# --- groups -----------------------------------------------------------------------------------


@pytestmark_shared
async def test_groups_answer_commands_and_photos_meant_for_the_bot_only(
    telegram: TelegramDouble, gateway: GatewayDouble, person, group
) -> None:
    user, _ = person("Bo")
    us = Conversation(telegram, user, group)

    us.send_text("/draw@WenwenTestBot a lighthouse")
    drawn = await us.reply("sendPhoto")
    _sent_picture(drawn)

    ignored = _unique_png()
    us.send_text("/draw@SomeOtherBot a lighthouse at night")
    telegram.send_photo(user, group, ignored, caption="look at my holiday")
    telegram.send_photo(user, group, _unique_png())
    await telegram.wait_idle(1.0)
    assert not us.calls_since()
    assert not [c for c in gateway.calls_to("/images/generations") if "at night" in c.json["prompt"]]

    mentioned = _unique_png()
    us.send_photo(mentioned, caption="@WenwenTestBot what is this?")
    call = await _vision_call(gateway, mentioned)
    assert call.json["messages"][-1]["content"][0]["text"] == "Bo: what is this?"

    replied = _unique_png()
    us.send_photo(replied, reply_to=drawn.result)
    await _vision_call(gateway, replied)

    # /edit as a reply to someone's photo, in the group.
    original = us.send_photo(_unique_png(70, 50))
    photo_bytes = telegram.files[original["message"]["photo"][-1]["file_id"]].data
    us.send_text("/edit@WenwenTestBot make it night", reply_to=original)
    edited = await us.reply("sendPhoto")
    _sent_picture(edited)
    assert _edit_calls_with(gateway, photo_bytes)


# --- refusals ---------------------------------------------------------------------------------


@pytestmark_shared
@pytest.mark.parametrize(
    ("command", "expected"),
    [("/draw", "/draw <description>"), ("/draw    ", "/draw <description>"), ("/edit", "/edit <change>")],
)
async def test_commands_without_their_argument_answer_with_usage_and_call_nothing(
    telegram: TelegramDouble, gateway: GatewayDouble, person, command: str, expected: str
) -> None:
    me = Conversation(telegram, *person())
    before = len(gateway.calls)
    me.send_text(command)
    assert expected in await me.reply_text()
    await telegram.wait_idle(0.3)
    assert len(gateway.calls) == before


@pytestmark_shared
async def test_edit_without_a_picture_explains_how(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    before = len(gateway.calls)
    me.send_text("/edit make it blue")
    assert "reply to a photo" in await me.reply_text()
    assert len(gateway.calls) == before


@pytestmark_shared
async def test_a_non_image_file_is_refused(telegram: TelegramDouble, gateway: GatewayDouble, person) -> None:
    me = Conversation(telegram, *person())
    before = len(gateway.calls)
    me.send_document(b"%PDF-1.4 not a picture", "report.pdf", "application/pdf")
    assert "pictures" in await me.reply_text()
    document = me.send_document(b"%PDF-1.4 again", "notes.pdf", "application/pdf")
    me.send_text("/edit make it pretty", reply_to=document)
    assert "pictures" in await me.reply_text()
    assert len(gateway.calls) == before


@pytestmark_shared
async def test_an_image_file_over_20_mb_is_refused_without_download(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    downloads, before = telegram.get_file_calls, len(gateway.calls)
    me.send_document(_unique_png(), "big.png", "image/png", caption="/edit sharpen", file_size=25 * 2**20)
    assert "20 MB" in await me.reply_text()
    await telegram.wait_idle(0.3)
    assert telegram.get_file_calls == downloads and len(gateway.calls) == before


@pytestmark_shared
async def test_a_file_labelled_as_image_that_is_not_one_is_refused_uncharged(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    before = len(gateway.calls)
    me.send_document(b"GIF? no, just text", "fake.jpg", "image/jpeg")
    assert "can't read that image" in await me.reply_text()
    assert len(gateway.calls) == before
    assert (await me.quota())["vision"][0] == 0


@pytestmark_shared
@pytest.mark.parametrize("endpoint", ["/images/generations", "/images/edits"])
async def test_a_safety_refusal_is_explained_and_not_charged(
    telegram: TelegramDouble, gateway: GatewayDouble, person, endpoint: str
) -> None:
    me = Conversation(telegram, *person())
    gateway.when(endpoint).reply_json(
        400,
        openai_error(
            400, "Your request was rejected as a result of our safety system.", code="moderation_blocked"
        ),
    )
    if endpoint == "/images/generations":
        me.send_text("/draw something forbidden")
    else:
        me.send_photo(_unique_png(), caption="/edit something forbidden")
    answer = await me.reply_text()
    assert "declined" in answer and "content rules" in answer
    assert "safety system" not in answer  # our words, not the upstream's
    kind = "draw" if endpoint == "/images/generations" else "edit"
    assert (await me.quota())[kind][0] == 0


@pytestmark_shared
@pytest.mark.parametrize("fault", ["status-500", "not-an-image"])
async def test_an_upstream_error_gets_an_apology_and_no_charge(
    telegram: TelegramDouble, gateway: GatewayDouble, person, fault: str
) -> None:
    me = Conversation(telegram, *person())
    rule = gateway.when("/images/edits")
    if fault == "status-500":
        rule.reply_status(500, "the GPU caught fire")
    else:
        rule.reply_json(200, {"created": 1, "data": [{"b64_json": base64.b64encode(b"not a png").decode()}]})
    me.send_photo(_unique_png(), caption="/edit add a hat")
    answer = await me.reply_text()
    assert answer.startswith("Sorry") and "GPU" not in answer
    assert not me.calls_since("sendPhoto")
    assert (await me.quota())["edit"][0] == 0


async def test_a_prompt_over_the_models_limit_is_refused(start_bot: StartBot, gateway: GatewayDouble) -> None:
    process = await start_bot(IMAGE_MODEL="dall-e-2")  # takes prompts of at most 1000 characters
    me = Conversation(process.telegram, *new_person(process.telegram))
    before = len(gateway.calls)
    me.send_text("/draw " + "a very detailed castle, " * 60)
    answer = await me.reply_text()
    assert "1000" in answer and "characters" in answer
    assert len(gateway.calls) == before

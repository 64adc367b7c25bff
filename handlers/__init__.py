"""Thin aiogram routers: parse the update, call a service, answer. No SQL, no HTTP here."""

from __future__ import annotations

from aiogram import Router

from handlers import (
    admin,
    chat,
    commands,
    drawing,
    errors,
    fallback,
    memory,
    midjourney,
    models,
    photos,
    search,
    settings,
    voice,
)


def build_routers() -> list[Router]:
    """Fresh routers for one Dispatcher (a router can be attached to only one), the catch-all last."""
    return [
        errors.build_router(),
        commands.build_router(),
        admin.build_router(),
        models.build_router(),
        settings.build_router(),
        drawing.build_router(),
        search.build_router(),
        memory.build_router(),
        midjourney.build_router(),
        voice.build_router(),
        photos.build_router(),
        chat.build_router(),
        fallback.build_router(),
    ]

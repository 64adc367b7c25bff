"""Suite-wide: say in the report header whether requests are validated against the API specs."""

from __future__ import annotations

from testkit.doubles.specs_location import spec_file, specs_dir

SPEC_FILES = ("telegram-bot-api.json", "openai-openapi.json")


def pytest_report_header() -> list[str]:
    missing = [name for name in SPEC_FILES if spec_file(name) is None]
    if not missing:
        return [f"API specs: found in {specs_dir()}; every request to the test doubles is validated"]
    return [
        f"API specs: NOT FOUND ({', '.join(missing)}) in {specs_dir()} (set API_SPECS_DIR); "
        "request validation against them is SKIPPED"
    ]

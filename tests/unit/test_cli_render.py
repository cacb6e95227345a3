"""The CLI's model table says what an omitted field means for each model."""

from __future__ import annotations

import io

from rich.console import Console

from reelhook.providers import get_model
from reelhook_cli.render import defaults_summary, print_models


def test_the_defaults_of_omitted_fields_are_named_per_model() -> None:
    freepik = get_model("freepik/veo-3-1-reference-to-video").catalog_entry()
    aihubmax = get_model("aihubmax/veo-3.1-reference-to-video").catalog_entry()
    kling = get_model("freepik/kling-v3-omni-pro-video-reference").catalog_entry()
    # The same omission, opposite outcomes: the table must say which.
    assert "audio on" in defaults_summary(freepik) and "resolution 720p" in defaults_summary(freepik)
    assert "audio off" in defaults_summary(aihubmax) and "resolution 1080p" in defaults_summary(aihubmax)
    assert 'negative_prompt "blur, distort, and low quality"' in defaults_summary(kling)
    # Fields with no documented default are not given one.
    assert "seed" not in defaults_summary(freepik)


def test_the_models_table_shows_the_defaults() -> None:
    entry = get_model("aihubmax/veo-3.1-reference-to-video").catalog_entry()
    for width in (200, 80):  # the table, and one block per model
        out = io.StringIO()
        print_models(Console(file=out, width=width, force_terminal=False), {"models": [entry]})
        text = " ".join(out.getvalue().split())
        assert "if omitted:" in text and "audio off" in text, text

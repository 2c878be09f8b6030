"""A mitmdump script that sets `stream_large_bodies` to 16k behind every addon's back (no configure
event, so no check sees it), as an option that slipped through would: mitmproxy's HTTP layer then
starts streaming a body it was buffering once 16 KiB of it arrived, before the `request` hook."""

from mitmproxy import ctx


def running() -> None:
    ctx.options._options["stream_large_bodies"].set("16k")

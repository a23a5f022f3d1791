#!/usr/bin/env python3
# Captioning from Python (PyGObject): a pipeline with onellmcaptionsink, captions through its "caption" signal
# and the "onellm-caption" bus messages.
#
#   examples/caption.py [FILE]
#
# Captions FILE (any video GStreamer decodes) every 2 s, or a test picture without FILE. Needs python3-gi and
# gir1.2-gstreamer-1.0. With an uninstalled build set GST_PLUGIN_PATH=build/gst (and ONELLM_MODEL=model.gguf
# unless the default model is installed).
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    Gst.init(None)
    if len(sys.argv) > 1:
        source = f'filesrc location="{sys.argv[1]}" ! decodebin'
    else:
        source = "videotestsrc num-buffers=120 ! video/x-raw,framerate=30/1"
    pipeline = Gst.parse_launch(
        f"{source} ! videoconvert ! onellmimagetok interval=2000000000 ! onellmencoder "
        "! onellmcaptionsink name=sink leaky=false max-tokens=32")
    loop = GLib.MainLoop()

    def on_caption(sink, text, pts, duration):
        # called on the sink's generation thread: keep it short
        print(f"{pts / Gst.SECOND:8.2f} s  {text}", flush=True)

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.ELEMENT and msg.get_structure().get_name() == "onellm-caption":
            s = msg.get_structure()
            print(f"           ({s.get_value('tokens')} tokens, {s.get_value('tokens-per-second'):.1f} tokens/s)")
        elif msg.type == Gst.MessageType.ERROR:
            error, _ = msg.parse_error()
            print(f"error: {error.message}", file=sys.stderr)
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            loop.quit()

    pipeline.get_by_name("sink").connect("caption", on_caption)
    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = bus.pop_filtered(Gst.MessageType.ERROR)
        if msg:
            print(f"error: {msg.parse_error()[0].message}", file=sys.stderr)
        pipeline.set_state(Gst.State.NULL)
        return 1
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    return 0


if __name__ == "__main__":
    sys.exit(main())

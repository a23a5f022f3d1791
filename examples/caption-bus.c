/* Embedding a captioning pipeline in a program: the captions arrive as "onellm-caption" bus messages.
 *
 *   build/examples/onellm-caption-bus [PIPELINE]
 *
 * Built by meson with the project. PIPELINE is a gst-launch description ending in an onellmcaptionsink; the
 * default captions a test picture once a second for 5 s. With an uninstalled build set
 * GST_PLUGIN_PATH=build/gst (and ONELLM_MODEL=path/to/model.gguf unless the default model is installed). */
#include <gst/gst.h>

#define DEFAULT_PIPELINE "videotestsrc num-buffers=150 ! video/x-raw,framerate=30/1 ! videoconvert " \
  "! onellmimagetok interval=1000000000 ! onellmencoder ! onellmcaptionsink leaky=false max-tokens=32"

static gboolean
on_message (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  GMainLoop *loop = user_data;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT: {
      const GstStructure *s = gst_message_get_structure (msg);
      guint64 pts, duration, latency;
      guint tokens;
      double rate;
      if (!gst_structure_has_name (s, "onellm-caption") ||
          !gst_structure_get (s, "pts", G_TYPE_UINT64, &pts, "duration", G_TYPE_UINT64, &duration,
                              "latency", G_TYPE_UINT64, &latency, "tokens", G_TYPE_UINT, &tokens,
                              "tokens-per-second", G_TYPE_DOUBLE, &rate, NULL))
        break;
      g_print ("%" GST_TIME_FORMAT " +%" GST_TIME_FORMAT " %s: %s\n    (%u tokens, %.1f tokens/s, ready %.2f s after "
               "the window arrived)\n", GST_TIME_ARGS (pts), GST_TIME_ARGS (duration),
               gst_structure_get_string (s, "modality"), gst_structure_get_string (s, "text"), tokens, rate,
               latency / 1e9);
      break;
    }
    case GST_MESSAGE_ERROR: {
      g_autoptr (GError) error = NULL;
      g_autofree char *debug = NULL;
      gst_message_parse_error (msg, &error, &debug);
      g_printerr ("error from %s: %s\n", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), error->message);
      g_main_loop_quit (loop);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit (loop);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  gst_init (&argc, &argv);
  GstElement *pipeline = gst_parse_launch (argc > 1 ? argv[1] : DEFAULT_PIPELINE, &error);
  if (pipeline == NULL) {
    g_printerr ("could not build the pipeline: %s\n", error->message);
    return 1;
  }
  GMainLoop *loop = g_main_loop_new (NULL, FALSE);
  GstBus *bus = gst_element_get_bus (pipeline);
  gst_bus_add_watch (bus, on_message, loop);
  int status = 0;
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    /* the error message says why (no model, no Vulkan device, ...) */
    GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (msg) {
      on_message (bus, msg, loop);
      gst_message_unref (msg);
    }
    status = 1;
  } else {
    g_main_loop_run (loop);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_bus_remove_watch (bus);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  g_main_loop_unref (loop);
  return status;
}

/* onellmcaptionsink: captions of each window as bus messages, a signal, stdout lines and SRT/WebVTT files. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <gst/base/gstbasesink.h>
#include "gstonellmelements.h"
#include "gstonellmgenerator.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_caption_sink_debug);
#define GST_CAT_DEFAULT gst_onellm_caption_sink_debug

typedef enum {
  GST_ONELLM_SUBTITLE_SRT,
  GST_ONELLM_SUBTITLE_WEBVTT,
} GstOnellmSubtitleFormat;

#define GST_TYPE_ONELLM_SUBTITLE_FORMAT (gst_onellm_subtitle_format_get_type ())
static GType gst_onellm_subtitle_format_get_type (void);
G_DEFINE_ENUM_TYPE (GstOnellmSubtitleFormat, gst_onellm_subtitle_format,
    G_DEFINE_ENUM_VALUE (GST_ONELLM_SUBTITLE_SRT, "srt"),
    G_DEFINE_ENUM_VALUE (GST_ONELLM_SUBTITLE_WEBVTT, "webvtt"))

/* How long a cue of a window without duration (a whole file: a point cloud, an fMRI scan) stays up. */
#define UNTIMED_CUE (5 * GST_SECOND)

#define GST_TYPE_ONELLM_CAPTION_SINK (gst_onellm_caption_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmCaptionSink, gst_onellm_caption_sink, GST, ONELLM_CAPTION_SINK, GstBaseSink)

struct _GstOnellmCaptionSink {
  GstBaseSink parent;
  char *model_path;
  GstOnellmModel *model;        /* under the object lock: the context helpers read and replace it */
  GstOnellmGenerator *gen;
  /* settings, under the object lock */
  gboolean print;
  char *location;
  GstOnellmSubtitleFormat format;
  /* the worker's while started */
  FILE *file;
  GstOnellmSubtitleFormat file_format;
  guint n_cues;
  gboolean printing;            /* the caption in progress is being printed piece by piece */
  gsize printed;                /* bytes of it printed */
};

enum {
  PROP_0,
  PROP_MODEL,
  PROP_PRINT,
  PROP_LOCATION,
  PROP_FORMAT,
  PROP_GENERATOR,
};

enum {
  SIGNAL_CAPTION,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE_WITH_CODE (GstOnellmCaptionSink, gst_onellm_caption_sink, GST_TYPE_BASE_SINK,
    GST_DEBUG_CATEGORY_INIT (gst_onellm_caption_sink_debug, "onellmcaptionsink", 0, "OneLLM caption sink"))
GST_ELEMENT_REGISTER_DEFINE (onellmcaptionsink, "onellmcaptionsink", GST_RANK_NONE, GST_TYPE_ONELLM_CAPTION_SINK)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_ONELLM_EMBEDDINGS_CAPS));

static void
gst_onellm_caption_sink_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (object);
  if (prop_id >= PROP_GENERATOR && prop_id < PROP_GENERATOR + GST_ONELLM_GENERATOR_N_PROPS) {
    gst_onellm_generator_set_property (self->gen, prop_id - PROP_GENERATOR, value);
    return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      break;
    case PROP_PRINT:
      self->print = g_value_get_boolean (value);
      break;
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_FORMAT:
      self->format = g_value_get_enum (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_onellm_caption_sink_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (object);
  if (prop_id >= PROP_GENERATOR && prop_id < PROP_GENERATOR + GST_ONELLM_GENERATOR_N_PROPS) {
    gst_onellm_generator_get_property (self->gen, prop_id - PROP_GENERATOR, value);
    return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_PRINT:
      g_value_set_boolean (value, self->print);
      break;
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_FORMAT:
      g_value_set_enum (value, self->format);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT). */
static void
append_time (GString *out, GstClockTime t, char separator)
{
  guint64 ms = t / GST_MSECOND;
  g_string_append_printf (out, "%02" G_GUINT64_FORMAT ":%02u:%02u%c%03u", ms / 3600000, (guint) (ms / 60000 % 60),
                          (guint) (ms / 1000 % 60), separator, (guint) (ms % 1000));
}

/* Cue text: no blank lines (they end a cue in both formats); WebVTT also escapes its markup characters, so
 * "-->" and tags in a caption stay text. */
static void
append_cue_text (GString *out, const char *text, gboolean webvtt)
{
  gboolean line_start = TRUE;
  for (const char *p = text; *p; p++) {
    if (*p == '\r' || (*p == '\n' && line_start))
      continue;
    if (webvtt && *p == '&')
      g_string_append (out, "&amp;");
    else if (webvtt && *p == '<')
      g_string_append (out, "&lt;");
    else if (webvtt && *p == '>')
      g_string_append (out, "&gt;");
    else
      g_string_append_c (out, *p);
    line_start = *p == '\n';
  }
  while (out->len && out->str[out->len - 1] == '\n')
    g_string_truncate (out, out->len - 1);
}

static void
write_cue (GstOnellmCaptionSink *self, const GstOnellmCaptionText *caption)
{
  gboolean webvtt = self->file_format == GST_ONELLM_SUBTITLE_WEBVTT;
  GstClockTime start = caption->stream_time != GST_CLOCK_TIME_NONE ? caption->stream_time : 0;
  GstClockTime length = caption->duration != GST_CLOCK_TIME_NONE ? caption->duration : UNTIMED_CUE;
  g_autoptr (GString) text = g_string_new (NULL);
  append_cue_text (text, caption->text, webvtt);
  if (text->len == 0)
    return;
  GString *cue = g_string_new (NULL);
  if (!webvtt)
    g_string_append_printf (cue, "%u\n", ++self->n_cues);
  append_time (cue, start, webvtt ? '.' : ',');
  g_string_append (cue, " --> ");
  append_time (cue, start + length, webvtt ? '.' : ',');
  g_string_append_printf (cue, "\n%s\n\n", text->str);
  if (fwrite (cue->str, 1, cue->len, self->file) != cue->len || fflush (self->file) != 0)
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE, ("Could not write the subtitles: %s", g_strerror (errno)), (NULL));
  g_string_free (cue, TRUE);
}

/* Prints what was not printed yet of the caption (the text of partial captions grows). */
static void
print_piece (GstOnellmCaptionSink *self, const GstOnellmCaptionText *caption)
{
  if (!self->printing) {
    g_print ("[%" GST_TIME_FORMAT "] ", GST_TIME_ARGS (caption->pts));
    self->printing = TRUE;
    self->printed = 0;
  }
  gsize len = strlen (caption->text);
  if (len > self->printed)
    g_print ("%s", caption->text + self->printed);
  self->printed = MAX (len, self->printed);
}

/* Worker thread: the caption goes to the bus, the signal, stdout and the subtitle file. */
static GstFlowReturn
deliver_caption (GstElement *element, const GstOnellmCaptionText *caption)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (element);
  gboolean print;
  GST_OBJECT_LOCK (self);
  print = self->print;
  GST_OBJECT_UNLOCK (self);

  if (caption->partial) {
    gst_element_post_message (element, gst_message_new_element (GST_OBJECT (self),
        gst_structure_new ("onellm-caption-partial", "text", G_TYPE_STRING, caption->text,
                           "pts", G_TYPE_UINT64, caption->pts, "duration", G_TYPE_UINT64, caption->duration,
                           "modality", G_TYPE_STRING, ol_modality_name (caption->modality), NULL)));
    if (print)
      print_piece (self, caption);
    return GST_FLOW_OK;
  }
  gst_element_post_message (element, gst_message_new_element (GST_OBJECT (self),
      gst_structure_new ("onellm-caption", "text", G_TYPE_STRING, caption->text,
                         "pts", G_TYPE_UINT64, caption->pts, "duration", G_TYPE_UINT64, caption->duration,
                         "running-time", G_TYPE_UINT64, caption->running_time,
                         "stream-time", G_TYPE_UINT64, caption->stream_time,
                         "modality", G_TYPE_STRING, ol_modality_name (caption->modality),
                         "tokens", G_TYPE_UINT, caption->n_tokens,
                         "tokens-per-second", G_TYPE_DOUBLE, caption->tokens_per_second,
                         "latency", G_TYPE_UINT64, caption->latency, NULL)));
  g_signal_emit (self, signals[SIGNAL_CAPTION], 0, caption->text, caption->pts, caption->duration);
  if (print) {
    print_piece (self, caption);
    g_print ("\n");
  }
  self->printing = FALSE;
  if (self->file)
    write_cue (self, caption);
  return GST_FLOW_OK;
}

static gboolean
gst_onellm_caption_sink_start (GstOnellmCaptionSink *self)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *location = NULL;

  GST_OBJECT_LOCK (self);
  location = g_strdup (self->location);
  self->file_format = self->format;
  GST_OBJECT_UNLOCK (self);
  if (location) {
    self->file = g_fopen (location, "wb");
    if (self->file == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE, ("Could not open \"%s\" for writing: %s", location,
                         g_strerror (errno)), (NULL));
      return FALSE;
    }
    self->n_cues = 0;
    if (self->file_format == GST_ONELLM_SUBTITLE_WEBVTT)
      fputs ("WEBVTT\n\n", self->file);
  }
  if (!gst_onellm_model_acquire (GST_ELEMENT (self), &self->model_path, &self->model))
    return FALSE;
  if (!gst_onellm_generator_start (self->gen, self->model, &error)) {
    gst_onellm_model_post_error (GST_ELEMENT (self), "Could not prepare the language model", error);
    return FALSE;
  }
  self->printing = FALSE;
  return TRUE;
}

static void
gst_onellm_caption_sink_stop (GstOnellmCaptionSink *self)
{
  gst_onellm_generator_stop (self->gen);
  if (self->file) {
    if (fclose (self->file) != 0)
      GST_ELEMENT_WARNING (self, RESOURCE, CLOSE, ("Could not close the subtitle file: %s", g_strerror (errno)),
                           (NULL));
    self->file = NULL;
  }
  gst_onellm_model_release (GST_ELEMENT (self), &self->model);
}

/* The model is looked for once the pipeline is linked and the neighbours may hold it (READY→PAUSED), as
 * the other elements do; GstBaseSink's start would come earlier. */
static GstStateChangeReturn
gst_onellm_caption_sink_change_state (GstElement *element, GstStateChange transition)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !gst_onellm_caption_sink_start (self)) {
    gst_onellm_caption_sink_stop (self);
    return GST_STATE_CHANGE_FAILURE;
  }
  ret = GST_ELEMENT_CLASS (gst_onellm_caption_sink_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
      (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    gst_onellm_caption_sink_stop (self);
  return ret;
}

static gboolean
gst_onellm_caption_sink_set_caps (GstBaseSink *sink, GstCaps *caps)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (sink);
  g_autoptr (GError) error = NULL;
  if (!gst_onellm_generator_set_format (self->gen, caps, &error)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Cannot caption %" GST_PTR_FORMAT ": %s", caps, error->message),
                       (NULL));
    return FALSE;
  }
  return TRUE;
}

static GstFlowReturn
gst_onellm_caption_sink_render (GstBaseSink *sink, GstBuffer *buffer)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (sink);
  GstSegment segment;
  GST_OBJECT_LOCK (self);
  gst_segment_copy_into (&sink->segment, &segment);
  GST_OBJECT_UNLOCK (self);
  return gst_onellm_generator_submit (self->gen, gst_buffer_ref (buffer), &segment);
}

static gboolean
gst_onellm_caption_sink_event (GstBaseSink *sink, GstEvent *event)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (sink);
  /* the EOS message waits for the last caption */
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS)
    gst_onellm_generator_drain (self->gen);
  return GST_BASE_SINK_CLASS (gst_onellm_caption_sink_parent_class)->event (sink, event);
}

static gboolean
gst_onellm_caption_sink_unlock (GstBaseSink *sink)
{
  gst_onellm_generator_set_flushing (GST_ONELLM_CAPTION_SINK (sink)->gen, TRUE);
  return TRUE;
}

static gboolean
gst_onellm_caption_sink_unlock_stop (GstBaseSink *sink)
{
  gst_onellm_generator_set_flushing (GST_ONELLM_CAPTION_SINK (sink)->gen, FALSE);
  return TRUE;
}

static gboolean
gst_onellm_caption_sink_query (GstBaseSink *sink, GstQuery *query)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (sink);
  if (gst_onellm_model_handle_context_query (GST_ELEMENT (self), query, &self->model))
    return TRUE;
  if (!GST_BASE_SINK_CLASS (gst_onellm_caption_sink_parent_class)->query (sink, query))
    return FALSE;
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    /* a caption is delivered one generation time after its window arrived */
    gboolean live;
    GstClockTime min, max, generation = gst_onellm_generator_get_latency (self->gen);
    gst_query_parse_latency (query, &live, &min, &max);
    gst_query_set_latency (query, live, min + generation, max == GST_CLOCK_TIME_NONE ? max : max + generation);
  }
  return TRUE;
}

static void
gst_onellm_caption_sink_set_context (GstElement *element, GstContext *context)
{
  if (gst_onellm_model_set_context (element, context, &GST_ONELLM_CAPTION_SINK (element)->model))
    GST_ELEMENT_CLASS (gst_onellm_caption_sink_parent_class)->set_context (element, context);
}

static void
gst_onellm_caption_sink_finalize (GObject *object)
{
  GstOnellmCaptionSink *self = GST_ONELLM_CAPTION_SINK (object);
  gst_onellm_generator_free (self->gen);
  g_free (self->model_path);
  g_free (self->location);
  if (self->model)
    gst_onellm_model_unref (self->model);
  G_OBJECT_CLASS (gst_onellm_caption_sink_parent_class)->finalize (object);
}

static void
gst_onellm_caption_sink_init (GstOnellmCaptionSink *self)
{
  static const GstOnellmGeneratorFuncs funcs = { deliver_caption, NULL, NULL };
  self->gen = gst_onellm_generator_new (GST_ELEMENT (self), &funcs);
  self->format = GST_ONELLM_SUBTITLE_SRT;
  /* a caption takes its own time to generate: waiting for the clock first would only add to it */
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
}

static void
gst_onellm_caption_sink_class_init (GstOnellmCaptionSinkClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *sink_class = GST_BASE_SINK_CLASS (klass);

  gobject_class->set_property = gst_onellm_caption_sink_set_property;
  gobject_class->get_property = gst_onellm_caption_sink_get_property;
  gobject_class->finalize = gst_onellm_caption_sink_finalize;
  element_class->change_state = gst_onellm_caption_sink_change_state;
  element_class->set_context = gst_onellm_caption_sink_set_context;
  sink_class->set_caps = gst_onellm_caption_sink_set_caps;
  sink_class->render = gst_onellm_caption_sink_render;
  sink_class->event = gst_onellm_caption_sink_event;
  sink_class->unlock = gst_onellm_caption_sink_unlock;
  sink_class->unlock_stop = gst_onellm_caption_sink_unlock_stop;
  sink_class->query = gst_onellm_caption_sink_query;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model", "OneLLM model file (GGUF); unset: $ONELLM_MODEL, else the "
                           "default model of the installation. Elements with the same file share one loaded copy",
                           NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_PRINT,
      g_param_spec_boolean ("print", "Print", "Print each caption to stdout as \"[H:MM:SS.nnnnnnnnn] text\" "
                            "(with streaming, piece by piece)", FALSE,
                            G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location", "Subtitle file written with one cue per caption (stream "
                           "time of its window; empty captions are left out); unset: none", NULL,
                           G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_FORMAT,
      g_param_spec_enum ("format", "Format", "Format of the subtitle file at location",
                         GST_TYPE_ONELLM_SUBTITLE_FORMAT, GST_ONELLM_SUBTITLE_SRT,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  gst_onellm_generator_install_properties (gobject_class, PROP_GENERATOR);

  /**
   * GstOnellmCaptionSink::caption:
   * @sink: the element
   * @text: the caption
   * @pts: start of the window it describes
   * @duration: length of that window (GST_CLOCK_TIME_NONE if unknown)
   *
   * Emitted for every caption, from the element's generation thread.
   */
  signals[SIGNAL_CAPTION] = g_signal_new ("caption", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                          NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_UINT64, G_TYPE_UINT64);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM caption sink", "Sink/Text",
      "Answers a prompt about each window of embeddings with OneLLM's language model, on a thread of its own, and "
      "delivers the captions as \"onellm-caption\" element messages, a \"caption\" signal, stdout lines and "
      "SRT/WebVTT files",
      "gst-onellm");
  gst_type_mark_as_plugin_api (GST_TYPE_ONELLM_SUBTITLE_FORMAT, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ONELLM_POSITION_MODE, 0);
}

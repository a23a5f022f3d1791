/* onellmcaption: the LLM input block of each window → a text caption, generated on a worker thread. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include "gstonellmelements.h"
#include "gstonellmgenerator.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_caption_debug);
#define GST_CAT_DEFAULT gst_onellm_caption_debug

#define GST_TYPE_ONELLM_CAPTION (gst_onellm_caption_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmCaption, gst_onellm_caption, GST, ONELLM_CAPTION, GstElement)

struct _GstOnellmCaption {
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  char *model_path;
  GstOnellmModel *model;        /* under the object lock: the context helpers read and replace it */
  GstOnellmGenerator *gen;
  GstSegment segment;           /* of the windows arriving (streaming thread) */
  gboolean caps_sent;
};

enum {
  PROP_0,
  PROP_MODEL,
  PROP_GENERATOR,
};

G_DEFINE_TYPE_WITH_CODE (GstOnellmCaption, gst_onellm_caption, GST_TYPE_ELEMENT,
    GST_DEBUG_CATEGORY_INIT (gst_onellm_caption_debug, "onellmcaption", 0, "OneLLM captioner"))
GST_ELEMENT_REGISTER_DEFINE (onellmcaption, "onellmcaption", GST_RANK_NONE, GST_TYPE_ONELLM_CAPTION)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_ONELLM_EMBEDDINGS_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

static void
gst_onellm_caption_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (object);
  if (prop_id >= PROP_GENERATOR && prop_id < PROP_GENERATOR + GST_ONELLM_GENERATOR_N_PROPS) {
    gst_onellm_generator_set_property (self->gen, prop_id - PROP_GENERATOR, value);
  } else if (prop_id == PROP_MODEL) {
    GST_OBJECT_LOCK (self);
    g_free (self->model_path);
    self->model_path = g_value_dup_string (value);
    GST_OBJECT_UNLOCK (self);
  } else {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gst_onellm_caption_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (object);
  if (prop_id >= PROP_GENERATOR && prop_id < PROP_GENERATOR + GST_ONELLM_GENERATOR_N_PROPS) {
    gst_onellm_generator_get_property (self->gen, prop_id - PROP_GENERATOR, value);
  } else if (prop_id == PROP_MODEL) {
    GST_OBJECT_LOCK (self);
    g_value_set_string (value, self->model_path);
    GST_OBJECT_UNLOCK (self);
  } else {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

/* Worker thread: one text buffer per caption (and per partial caption while streaming). */
static GstFlowReturn
push_caption (GstElement *element, const GstOnellmCaptionText *caption)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (element);
  gsize len = strlen (caption->text);
  GstBuffer *buffer = gst_buffer_new_memdup (caption->text, len);
  GST_BUFFER_PTS (buffer) = caption->pts;
  GST_BUFFER_DURATION (buffer) = caption->duration;
  if (caption->partial)
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  return gst_pad_push (self->srcpad, buffer);
}

static GstFlowReturn
push_event (GstElement *element, GstEvent *event)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (element);
  gboolean eos = GST_EVENT_TYPE (event) == GST_EVENT_EOS;
  if (!gst_pad_push_event (self->srcpad, event) && eos)
    GST_DEBUG_OBJECT (self, "EOS was not taken downstream");
  return GST_FLOW_OK;
}

/* A dropped window leaves a gap in the text, so that textoverlay and muxers need not wait for it. */
static void
window_dropped (GstElement *element, GstBuffer *window)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (element);
  if (GST_BUFFER_PTS_IS_VALID (window))
    gst_onellm_generator_queue_event (self->gen, gst_event_new_gap (GST_BUFFER_PTS (window),
                                                                    GST_BUFFER_DURATION (window)));
}

static gboolean
set_caps (GstOnellmCaption *self, GstCaps *caps)
{
  g_autoptr (GError) error = NULL;
  if (!gst_onellm_generator_set_format (self->gen, caps, &error)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Cannot caption %" GST_PTR_FORMAT ": %s", caps, error->message),
                       (NULL));
    return FALSE;
  }
  if (!self->caps_sent) {
    gst_onellm_generator_queue_event (self->gen, gst_event_new_caps (gst_pad_get_pad_template_caps (self->srcpad)));
    self->caps_sent = TRUE;
  }
  return TRUE;
}

static gboolean
sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = set_caps (self, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment (event, &self->segment);
      break;
    case GST_EVENT_FLUSH_START:
      gst_onellm_generator_set_flushing (self->gen, TRUE);
      return gst_pad_push_event (self->srcpad, event);
    case GST_EVENT_FLUSH_STOP: {
      /* downstream first: the stream-start and caps kept through the flush follow it */
      gboolean ok = gst_pad_push_event (self->srcpad, event);
      gst_onellm_generator_set_flushing (self->gen, FALSE);
      gst_segment_init (&self->segment, GST_FORMAT_TIME);
      return ok;
    }
    default:
      break;
  }
  if (!GST_EVENT_IS_SERIALIZED (event))
    return gst_pad_event_default (pad, parent, event);
  /* in order with the captions of the windows before it; EOS thus follows the last caption */
  gst_onellm_generator_queue_event (self->gen, event);
  return TRUE;
}

static GstFlowReturn
sink_chain (GstPad *pad, GstObject *parent, GstBuffer *buffer)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (parent);
  return gst_onellm_generator_submit (self->gen, buffer, &self->segment);
}

static gboolean
query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (parent);
  if (gst_onellm_model_handle_context_query (GST_ELEMENT (self), query, &self->model))
    return TRUE;
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY && pad == self->srcpad) {
    /* a caption leaves one generation time after its window arrived */
    gboolean live;
    GstClockTime min, max, generation = gst_onellm_generator_get_latency (self->gen);
    if (!gst_pad_peer_query (self->sinkpad, query))
      return FALSE;
    gst_query_parse_latency (query, &live, &min, &max);
    min += generation;
    if (max != GST_CLOCK_TIME_NONE)
      max += generation;
    GST_DEBUG_OBJECT (self, "latency: live %d, min %" GST_TIME_FORMAT " (generation %" GST_TIME_FORMAT ")", live,
                      GST_TIME_ARGS (min), GST_TIME_ARGS (generation));
    gst_query_set_latency (query, live, min, max);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
start (GstOnellmCaption *self)
{
  g_autoptr (GError) error = NULL;

  if (!gst_onellm_model_acquire (GST_ELEMENT (self), &self->model_path, &self->model))
    return FALSE;
  if (!gst_onellm_generator_start (self->gen, self->model, &error)) {
    gst_onellm_model_post_error (GST_ELEMENT (self), "Could not prepare the language model", error);
    return FALSE;
  }
  gst_segment_init (&self->segment, GST_FORMAT_TIME);
  self->caps_sent = FALSE;
  return TRUE;
}

static void
stop (GstOnellmCaption *self)
{
  gst_onellm_generator_stop (self->gen);
  gst_onellm_model_release (GST_ELEMENT (self), &self->model);
}

static GstStateChangeReturn
gst_onellm_caption_change_state (GstElement *element, GstStateChange transition)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!start (self)) {
        stop (self);
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* a chain call waiting for room in the queue must return before the pads can deactivate */
      gst_onellm_generator_set_flushing (self->gen, TRUE);
      break;
    default:
      break;
  }
  ret = GST_ELEMENT_CLASS (gst_onellm_caption_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
      (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    stop (self);
  return ret;
}

static void
gst_onellm_caption_set_context (GstElement *element, GstContext *context)
{
  if (gst_onellm_model_set_context (element, context, &GST_ONELLM_CAPTION (element)->model))
    GST_ELEMENT_CLASS (gst_onellm_caption_parent_class)->set_context (element, context);
}

static void
gst_onellm_caption_finalize (GObject *object)
{
  GstOnellmCaption *self = GST_ONELLM_CAPTION (object);
  gst_onellm_generator_free (self->gen);
  g_free (self->model_path);
  if (self->model)
    gst_onellm_model_unref (self->model);
  G_OBJECT_CLASS (gst_onellm_caption_parent_class)->finalize (object);
}

static void
gst_onellm_caption_init (GstOnellmCaption *self)
{
  static const GstOnellmGeneratorFuncs funcs = { push_caption, push_event, window_dropped };
  self->gen = gst_onellm_generator_new (GST_ELEMENT (self), &funcs);
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, sink_chain);
  gst_pad_set_event_function (self->sinkpad, sink_event);
  gst_pad_set_query_function (self->sinkpad, query);
  GST_PAD_SET_ACCEPT_TEMPLATE (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, query);
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
  gst_segment_init (&self->segment, GST_FORMAT_TIME);
}

static void
gst_onellm_caption_class_init (GstOnellmCaptionClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_onellm_caption_set_property;
  gobject_class->get_property = gst_onellm_caption_get_property;
  gobject_class->finalize = gst_onellm_caption_finalize;
  element_class->change_state = gst_onellm_caption_change_state;
  element_class->set_context = gst_onellm_caption_set_context;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model", "OneLLM model file (GGUF); unset: $ONELLM_MODEL, else the "
                           "default model of the installation. Elements with the same file share one loaded copy",
                           NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  gst_onellm_generator_install_properties (gobject_class, PROP_GENERATOR);
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "OneLLM captioner", "Filter/Converter/Text",
      "Answers a prompt about each window of embeddings with OneLLM's language model, on a thread of its own: "
      "one UTF-8 text buffer per caption with the timestamps of the window it describes",
      "gst-onellm");
}

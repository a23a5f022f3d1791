/* Base class of the modality tokenizer elements: model context, output caps, windows and timestamps. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmtokenizer.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_onellm_tokenizer_debug);
#define GST_CAT_DEFAULT gst_onellm_tokenizer_debug

enum {
  PROP_0,
  PROP_MODEL,
  PROP_WINDOW,
  PROP_INTERVAL,
};

typedef struct {
  GstPad *srcpad, *sinkpad;
  char *model_path;
  GstClockTime window, interval;
  GstOnellmModel *model;        /* under the object lock: the context helpers read and replace it */
  OlEncoder *encoder;
  GstCaps *src_caps;
  gboolean caps_pending, segment_pending;
  GstSegment segment;
} GstOnellmTokenizerPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (GstOnellmTokenizer, gst_onellm_tokenizer, GST_TYPE_ELEMENT,
    G_ADD_PRIVATE (GstOnellmTokenizer);
    GST_DEBUG_CATEGORY_INIT (gst_onellm_tokenizer_debug, "onellmtokenizer", 0, "OneLLM tokenizer base class"))

#define PRIV(self) ((GstOnellmTokenizerPrivate *) gst_onellm_tokenizer_get_instance_private (self))

static void
gst_onellm_tokenizer_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstOnellmTokenizerPrivate *priv = PRIV (GST_ONELLM_TOKENIZER (object));
  GST_OBJECT_LOCK (object);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (priv->model_path);
      priv->model_path = g_value_dup_string (value);
      break;
    case PROP_WINDOW:
      priv->window = g_value_get_uint64 (value);
      break;
    case PROP_INTERVAL:
      priv->interval = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (object);
}

static void
gst_onellm_tokenizer_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstOnellmTokenizerPrivate *priv = PRIV (GST_ONELLM_TOKENIZER (object));
  GST_OBJECT_LOCK (object);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, priv->model_path);
      break;
    case PROP_WINDOW:
      g_value_set_uint64 (value, priv->window);
      break;
    case PROP_INTERVAL:
      g_value_set_uint64 (value, priv->interval);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (object);
}

void
gst_onellm_tokenizer_class_set_modality (GstOnellmTokenizerClass *klass, OlModality modality)
{
  g_autofree char *desc = g_strdup_printf (GST_ONELLM_TOKENS_CAPS_FORMAT, ol_modality_name (modality));
  GstCaps *caps = gst_caps_from_string (desc);
  klass->modality = modality;
  gst_element_class_add_pad_template (GST_ELEMENT_CLASS (klass),
                                      gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref (caps);
}

void
gst_onellm_tokenizer_class_install_window_properties (GstOnellmTokenizerClass *klass,
                                                      GstClockTime default_window, GstClockTime max_window,
                                                      GstClockTime default_interval)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  /* GObject does not inherit these: the properties of a class go to its own */
  gobject_class->set_property = gst_onellm_tokenizer_set_property;
  gobject_class->get_property = gst_onellm_tokenizer_get_property;
  if (default_window != GST_CLOCK_TIME_NONE)
    g_object_class_install_property (
        gobject_class, PROP_WINDOW,
        g_param_spec_uint64 ("window", "Window",
                             "Length of the stretch of input one output describes, in "
                             "nanoseconds",
                             GST_MSECOND, max_window == GST_CLOCK_TIME_NONE ? G_MAXUINT64 : max_window,
                             default_window,
                             G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_INTERVAL,
      g_param_spec_uint64 ("interval", "Interval",
                           default_window != GST_CLOCK_TIME_NONE
                               ? "Time from the start of one window to the start of the next, in nanoseconds "
                                 "(less than window: overlapping windows; more: input between them is "
                                 "skipped)"
                               : "Time from one tokenized frame to the next, in nanoseconds (0: every frame)",
                           default_window != GST_CLOCK_TIME_NONE ? GST_MSECOND : 0, G_MAXUINT64,
                           default_interval,
                           G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
}

GstClockTime
gst_onellm_tokenizer_get_window (GstOnellmTokenizer *self)
{
  GstClockTime v;
  GST_OBJECT_LOCK (self);
  v = PRIV (self)->window;
  GST_OBJECT_UNLOCK (self);
  return v;
}

GstClockTime
gst_onellm_tokenizer_get_interval (GstOnellmTokenizer *self)
{
  GstClockTime v;
  GST_OBJECT_LOCK (self);
  v = PRIV (self)->interval;
  GST_OBJECT_UNLOCK (self);
  return v;
}

GstPad *
gst_onellm_tokenizer_get_sink_pad (GstOnellmTokenizer *self)
{
  return PRIV (self)->sinkpad;
}

const OlModelInfo *
gst_onellm_tokenizer_get_model_info (GstOnellmTokenizer *self)
{
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  g_return_val_if_fail (priv->encoder != NULL, NULL);
  return ol_model_get_info (gst_onellm_model_get_model (priv->model));
}

const OlModalityInfo *
gst_onellm_tokenizer_get_modality_info (GstOnellmTokenizer *self)
{
  const OlModelInfo *info = gst_onellm_tokenizer_get_model_info (self);
  return info ? &info->modality[GST_ONELLM_TOKENIZER_GET_CLASS (self)->modality] : NULL;
}

gsize
gst_onellm_tokenizer_input_size (GstOnellmTokenizer *self)
{
  const OlModalityInfo *mi = gst_onellm_tokenizer_get_modality_info (self);
  gsize n = 1;
  for (guint d = 0; d < mi->n_input_dims; d++)
    n *= mi->input_shape[d];
  return n;
}

/* Caps, then the segment, before the first buffer or serialized event that goes downstream. */
static void
push_pending (GstOnellmTokenizer *self)
{
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  if (priv->caps_pending && priv->src_caps) {
    gst_pad_push_event (priv->srcpad, gst_event_new_caps (priv->src_caps));
    priv->caps_pending = FALSE;
  }
  if (priv->segment_pending) {
    gst_pad_push_event (priv->srcpad, gst_event_new_segment (&priv->segment));
    priv->segment_pending = FALSE;
  }
}

GstFlowReturn
gst_onellm_tokenizer_push_window (GstOnellmTokenizer *self, const float *input, GstClockTime pts,
                                  GstClockTime duration)
{
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  OlModality modality = GST_ONELLM_TOKENIZER_GET_CLASS (self)->modality;
  g_autoptr (GError) error = NULL;
  GstMapInfo map;

  gsize n = ol_encoder_tokens_size (priv->encoder, modality);
  GstBuffer *out = gst_buffer_new_allocate (NULL, n * sizeof (float), NULL);
  gst_buffer_map (out, &map, GST_MAP_WRITE);
  gboolean ok = ol_encoder_tokenize (priv->encoder, modality, input, (float *) map.data, &error);
  gst_buffer_unmap (out, &map);
  if (!ok) {
    gst_buffer_unref (out);
    gst_onellm_model_post_error (GST_ELEMENT (self), "Tokenizing failed", error);
    return GST_FLOW_ERROR;
  }
  GST_BUFFER_PTS (out) = pts;
  GST_BUFFER_DURATION (out) = duration;
  GST_LOG_OBJECT (self, "window at %" GST_TIME_FORMAT " lasting %" GST_TIME_FORMAT, GST_TIME_ARGS (pts),
                  GST_TIME_ARGS (duration));
  push_pending (self);
  return gst_pad_push (priv->srcpad, out);
}

GstFlowReturn
gst_onellm_tokenizer_input_error (GstOnellmTokenizer *self, const GError *error)
{
  GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("%s", error->message), ("the engine refused the input"));
  return GST_FLOW_ERROR;
}

static void
reset (GstOnellmTokenizer *self)
{
  GstOnellmTokenizerClass *klass = GST_ONELLM_TOKENIZER_GET_CLASS (self);
  if (klass->reset)
    klass->reset (self);
}

static gboolean
sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstOnellmTokenizer *self = GST_ONELLM_TOKENIZER (parent);
  GstOnellmTokenizerClass *klass = GST_ONELLM_TOKENIZER_GET_CLASS (self);
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  gboolean driving = pad == priv->sinkpad;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      GST_DEBUG_OBJECT (pad, "caps %" GST_PTR_FORMAT, caps);
      if (driving)
        reset (self);
      gboolean ok = klass->set_caps (self, pad, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_SEGMENT:
      if (!driving)
        break;
      gst_event_copy_segment (event, &priv->segment);
      /* file parsers get bytes: their outputs are timed from zero */
      if (priv->segment.format != GST_FORMAT_TIME)
        gst_segment_init (&priv->segment, GST_FORMAT_TIME);
      priv->segment_pending = TRUE;
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_EOS:
      if (!driving)
        break;
      if (klass->drain && klass->drain (self) != GST_FLOW_OK)
        GST_DEBUG_OBJECT (self, "drain at EOS did not complete");
      push_pending (self);
      return gst_pad_push_event (priv->srcpad, event);
    case GST_EVENT_GAP:
      if (!driving)
        break;
      push_pending (self);
      return gst_pad_push_event (priv->srcpad, event);
    case GST_EVENT_FLUSH_START:
      if (klass->unlock)
        klass->unlock (self);
      if (!driving)
        break;
      return gst_pad_push_event (priv->srcpad, event);
    case GST_EVENT_FLUSH_STOP:
      if (!driving)
        break;
      reset (self);
      priv->segment_pending = TRUE;
      return gst_pad_push_event (priv->srcpad, event);
    default:
      if (driving || !GST_EVENT_IS_SERIALIZED (event))
        return gst_pad_event_default (pad, parent, event);
      break;
  }
  /* serialized events of the other pads describe a stream that does not leave this element */
  gst_event_unref (event);
  return TRUE;
}

static GstFlowReturn
sink_chain (GstPad *pad, GstObject *parent, GstBuffer *buffer)
{
  GstOnellmTokenizer *self = GST_ONELLM_TOKENIZER (parent);
  return GST_ONELLM_TOKENIZER_GET_CLASS (self)->handle_buffer (self, pad, buffer);
}

static gboolean
sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstOnellmTokenizer *self = GST_ONELLM_TOKENIZER (parent);
  if (gst_onellm_model_handle_context_query (GST_ELEMENT (self), query, &PRIV (self)->model))
    return TRUE;
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstOnellmTokenizer *self = GST_ONELLM_TOKENIZER (parent);
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CONTEXT:
      if (gst_onellm_model_handle_context_query (GST_ELEMENT (self), query, &priv->model))
        return TRUE;
      break;
    case GST_QUERY_CAPS: {
      GstCaps *filter, *caps;
      gst_query_parse_caps (query, &filter);
      GST_OBJECT_LOCK (self);
      caps = priv->src_caps ? gst_caps_ref (priv->src_caps) : gst_pad_get_pad_template_caps (pad);
      GST_OBJECT_UNLOCK (self);
      if (filter) {
        GstCaps *both = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref (caps);
        caps = both;
      }
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_LATENCY: {
      /* a window goes out once its last input arrived: live latency grows by the window */
      gboolean live;
      GstClockTime min, max, window = gst_onellm_tokenizer_get_window (self);
      if (!gst_pad_peer_query (priv->sinkpad, query))
        return FALSE;
      gst_query_parse_latency (query, &live, &min, &max);
      if (window != GST_CLOCK_TIME_NONE) {
        min += window;
        if (max != GST_CLOCK_TIME_NONE)
          max += window;
      }
      gst_query_set_latency (query, live, min, max);
      return TRUE;
    }
    default:
      break;
  }
  return gst_pad_query_default (pad, parent, query);
}

GstPad *
gst_onellm_tokenizer_add_sink_pad (GstOnellmTokenizer *self, GstPadTemplate *templ, const char *name)
{
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  GstPad *pad = gst_pad_new_from_template (templ, name);
  gst_pad_set_chain_function (pad, sink_chain);
  gst_pad_set_event_function (pad, sink_event);
  gst_pad_set_query_function (pad, sink_query);
  GST_PAD_SET_ACCEPT_TEMPLATE (pad);
  gst_element_add_pad (GST_ELEMENT (self), pad);
  if (priv->sinkpad == NULL)
    priv->sinkpad = pad;
  return pad;
}

static gboolean
start (GstOnellmTokenizer *self)
{
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  GstOnellmTokenizerClass *klass = GST_ONELLM_TOKENIZER_GET_CLASS (self);
  g_autoptr (GError) error = NULL;

  if (!gst_onellm_model_acquire (GST_ELEMENT (self), &priv->model_path, &priv->model))
    return FALSE;
  OlModel *model = gst_onellm_model_get_model (priv->model);
  const OlModelInfo *info = ol_model_get_info (model);
  const char *name = ol_modality_name (klass->modality);
  if (!info->has_encoder || !ol_model_has_modality (model, klass->modality)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("The model %s has no %s modality",
                       gst_onellm_model_get_path (priv->model), name), (NULL));
    return FALSE;
  }
  priv->encoder = ol_encoder_new (model, &error);
  if (priv->encoder == NULL) {
    gst_onellm_model_post_error (GST_ELEMENT (self), "Could not prepare the encoder", error);
    return FALSE;
  }
  const OlModalityInfo *mi = &info->modality[klass->modality];
  GstCaps *caps = gst_caps_new_simple ("application/x-onellm-tokens", "modality", G_TYPE_STRING, name,
                                       "frames", G_TYPE_INT, (int) mi->frames, "tokens", G_TYPE_INT,
                                       (int) mi->tokens, "width", G_TYPE_INT, (int) info->clip_dim, NULL);
  GST_OBJECT_LOCK (self);
  gst_caps_replace (&priv->src_caps, caps);
  GST_OBJECT_UNLOCK (self);
  gst_caps_unref (caps);
  priv->caps_pending = TRUE;
  gst_segment_init (&priv->segment, GST_FORMAT_TIME);
  priv->segment_pending = TRUE;
  reset (self);
  return TRUE;
}

static void
stop (GstOnellmTokenizer *self)
{
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  reset (self);
  g_clear_pointer (&priv->encoder, ol_encoder_free);
  GST_OBJECT_LOCK (self);
  gst_caps_replace (&priv->src_caps, NULL);
  GST_OBJECT_UNLOCK (self);
  gst_onellm_model_release (GST_ELEMENT (self), &priv->model);
}

static GstStateChangeReturn
gst_onellm_tokenizer_change_state (GstElement *element, GstStateChange transition)
{
  GstOnellmTokenizer *self = GST_ONELLM_TOKENIZER (element);
  GstOnellmTokenizerClass *klass = GST_ONELLM_TOKENIZER_GET_CLASS (self);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!start (self)) {
        stop (self);
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      if (klass->unlock)
        klass->unlock (self);
      break;
    default:
      break;
  }
  ret = GST_ELEMENT_CLASS (gst_onellm_tokenizer_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
      (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    stop (self);
  return ret;
}

static void
gst_onellm_tokenizer_set_context (GstElement *element, GstContext *context)
{
  if (gst_onellm_model_set_context (element, context, &PRIV (GST_ONELLM_TOKENIZER (element))->model))
    GST_ELEMENT_CLASS (gst_onellm_tokenizer_parent_class)->set_context (element, context);
}

static void
gst_onellm_tokenizer_finalize (GObject *object)
{
  GstOnellmTokenizerPrivate *priv = PRIV (GST_ONELLM_TOKENIZER (object));
  g_free (priv->model_path);
  if (priv->model)
    gst_onellm_model_unref (priv->model);
  G_OBJECT_CLASS (gst_onellm_tokenizer_parent_class)->finalize (object);
}

static void
gst_onellm_tokenizer_init (GstOnellmTokenizer *self)
{
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  priv->window = priv->interval = GST_CLOCK_TIME_NONE;
}

/* Pads and defaults come from the final class, which instance init does not see yet. */
static void
gst_onellm_tokenizer_constructed (GObject *object)
{
  GstOnellmTokenizer *self = GST_ONELLM_TOKENIZER (object);
  GstOnellmTokenizerPrivate *priv = PRIV (self);
  GstPadTemplate *sink = gst_element_class_get_pad_template (GST_ELEMENT_GET_CLASS (self), "sink");
  GParamSpec *window = g_object_class_find_property (G_OBJECT_GET_CLASS (self), "window");
  GParamSpec *interval = g_object_class_find_property (G_OBJECT_GET_CLASS (self), "interval");

  G_OBJECT_CLASS (gst_onellm_tokenizer_parent_class)->constructed (object);
  if (window)
    priv->window = G_PARAM_SPEC_UINT64 (window)->default_value;
  if (interval)
    priv->interval = G_PARAM_SPEC_UINT64 (interval)->default_value;
  priv->srcpad =
      gst_pad_new_from_template (gst_element_class_get_pad_template (GST_ELEMENT_GET_CLASS (self), "src"),
                                 "src");
  gst_pad_set_query_function (priv->srcpad, src_query);
  gst_pad_use_fixed_caps (priv->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), priv->srcpad);
  if (sink)
    gst_onellm_tokenizer_add_sink_pad (self, sink, "sink");
}

static void
gst_onellm_tokenizer_class_init (GstOnellmTokenizerClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_onellm_tokenizer_set_property;
  gobject_class->get_property = gst_onellm_tokenizer_get_property;
  gobject_class->finalize = gst_onellm_tokenizer_finalize;
  gobject_class->constructed = gst_onellm_tokenizer_constructed;
  element_class->change_state = gst_onellm_tokenizer_change_state;
  element_class->set_context = gst_onellm_tokenizer_set_context;

  g_object_class_install_property (
      gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
                           "OneLLM model file (GGUF); unset: $ONELLM_MODEL, else the "
                           "default model of the installation. Elements with the same file share one loaded "
                           "copy",
                           NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  gst_type_mark_as_plugin_api (GST_TYPE_ONELLM_TOKENIZER, 0);
}

void
gst_onellm_file_init (GstOnellmFile *f)
{
  f->bytes = g_byte_array_new ();
  f->pts = 0;
}

void
gst_onellm_file_free (GstOnellmFile *f)
{
  g_clear_pointer (&f->bytes, g_byte_array_unref);
}

void
gst_onellm_file_clear (GstOnellmFile *f)
{
  g_byte_array_set_size (f->bytes, 0);
  f->pts = 0;
}

void
gst_onellm_file_push (GstOnellmFile *f, GstBuffer *buffer)
{
  gsize size = gst_buffer_get_size (buffer), len = f->bytes->len;
  if (len == 0 && GST_BUFFER_PTS_IS_VALID (buffer))
    f->pts = GST_BUFFER_PTS (buffer);
  g_byte_array_set_size (f->bytes, (guint) (len + size));
  gst_buffer_extract (buffer, 0, f->bytes->data + len, size);
  gst_buffer_unref (buffer);
}

void
gst_onellm_samples_init (GstOnellmSamples *s)
{
  memset (s, 0, sizeof (*s));
  s->data = g_byte_array_new ();
  s->start = GST_CLOCK_TIME_NONE;
}

void
gst_onellm_samples_clear (GstOnellmSamples *s)
{
  g_byte_array_set_size (s->data, 0);
  s->start = GST_CLOCK_TIME_NONE;
  s->n_frames = 0;
  s->skip = 0;
  s->covered = 0;
}

void
gst_onellm_samples_free (GstOnellmSamples *s)
{
  g_clear_pointer (&s->data, g_byte_array_unref);
}

void
gst_onellm_samples_set_format (GstOnellmSamples *s, guint bpf, gint rate)
{
  gst_onellm_samples_clear (s);
  s->bpf = bpf;
  s->rate = rate;
}

static GstClockTime
frames_to_time (const GstOnellmSamples *s, guint64 n)
{
  return gst_util_uint64_scale_round (n, GST_SECOND, s->rate);
}

void
gst_onellm_samples_push (GstOnellmSamples *s, GstBuffer *buffer)
{
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  GstMapInfo map;
  if (s->bpf == 0 || !gst_buffer_map (buffer, &map, GST_MAP_READ))
    return;
  guint64 n = map.size / s->bpf;
  guint64 skip = MIN (s->skip, n);
  if (s->start != GST_CLOCK_TIME_NONE && pts != GST_CLOCK_TIME_NONE) {
    GstClockTime expected = s->n_frames ? s->start + frames_to_time (s, s->n_frames)
                                        : s->start - frames_to_time (s, s->skip);
    if (GST_CLOCK_DIFF (expected, pts) > 40 * GST_MSECOND ||
        GST_CLOCK_DIFF (pts, expected) > 40 * GST_MSECOND) {
      GST_DEBUG ("timestamp gap: expected %" GST_TIME_FORMAT ", got %" GST_TIME_FORMAT ": window restarts",
                 GST_TIME_ARGS (expected), GST_TIME_ARGS (pts));
      gst_onellm_samples_clear (s);
      skip = 0;
    }
  }
  if (s->start == GST_CLOCK_TIME_NONE)
    s->start = pts != GST_CLOCK_TIME_NONE ? pts : 0;
  s->skip -= skip;
  g_byte_array_append (s->data, map.data + skip * s->bpf, (guint) ((n - skip) * s->bpf));
  s->n_frames += n - skip;
  gst_buffer_unmap (buffer, &map);
}

guint64
gst_onellm_samples_window_frames (const GstOnellmSamples *s, GstClockTime window)
{
  return MAX (gst_util_uint64_scale_round (window, s->rate, GST_SECOND), 1);
}

void
gst_onellm_samples_window_done (GstOnellmSamples *s, guint64 window_frames, guint64 interval_frames)
{
  guint64 drop = MIN (interval_frames, s->n_frames);
  g_byte_array_remove_range (s->data, 0, (guint) (drop * s->bpf));
  s->start += frames_to_time (s, interval_frames);
  s->n_frames -= drop;
  s->skip = interval_frames - drop;
  s->covered = window_frames > interval_frames ? window_frames - interval_frames : 0;
}

void
gst_onellm_frame_scratch_init (GstOnellmFrameScratch *scratch)
{
  memset (scratch, 0, sizeof (*scratch));
  scratch->gray = g_byte_array_new ();
  gst_video_info_init (&scratch->in_info);
}

void
gst_onellm_frame_scratch_clear (GstOnellmFrameScratch *scratch)
{
  g_clear_pointer (&scratch->gray, g_byte_array_unref);
  g_clear_pointer (&scratch->convert, gst_video_converter_free);
  gst_clear_buffer (&scratch->rgb);
}

void
gst_onellm_video_frame_to_image (const GstVideoFrame *frame, GstOnellmFrameScratch *scratch, OlImage *image)
{
  GstVideoFormat format = GST_VIDEO_FRAME_FORMAT (frame);
  int w = GST_VIDEO_FRAME_WIDTH (frame), h = GST_VIDEO_FRAME_HEIGHT (frame);
  const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
  int stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0);
  image->width = w;
  image->height = h;
  image->data = data;
  image->stride = stride;
  if (ol_pixel_format_from_name (gst_video_format_to_string (format), &image->format))
    return;
  if (format == GST_VIDEO_FORMAT_GRAY16_LE) {
    g_byte_array_set_size (scratch->gray, (guint) (w * h));
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        scratch->gray->data[(gsize) y * w + x] = data[(gsize) y * stride + 2 * x + 1];
    image->data = scratch->gray->data;
    image->stride = w;
    image->format = OL_PIXEL_GRAY8;
    return;
  }
  if (scratch->convert == NULL || !gst_video_info_is_equal (&scratch->in_info, &frame->info)) {
    g_clear_pointer (&scratch->convert, gst_video_converter_free);
    gst_clear_buffer (&scratch->rgb);
    scratch->in_info = frame->info;
    /* the converter changes the format only: everything else as the input */
    gst_video_info_set_interlaced_format (&scratch->rgb_info, GST_VIDEO_FORMAT_RGB,
                                          GST_VIDEO_INFO_INTERLACE_MODE (&frame->info), w, h);
    GST_VIDEO_INFO_FPS_N (&scratch->rgb_info) = GST_VIDEO_INFO_FPS_N (&frame->info);
    GST_VIDEO_INFO_FPS_D (&scratch->rgb_info) = GST_VIDEO_INFO_FPS_D (&frame->info);
    GST_VIDEO_INFO_PAR_N (&scratch->rgb_info) = GST_VIDEO_INFO_PAR_N (&frame->info);
    GST_VIDEO_INFO_PAR_D (&scratch->rgb_info) = GST_VIDEO_INFO_PAR_D (&frame->info);
    scratch->convert = gst_video_converter_new (&scratch->in_info, &scratch->rgb_info, NULL);
    scratch->rgb = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&scratch->rgb_info), NULL);
  }
  GstVideoFrame rgb;
  gst_video_frame_map (&rgb, &scratch->rgb_info, scratch->rgb, GST_MAP_WRITE);
  gst_video_converter_frame (scratch->convert, frame, &rgb);
  /* system memory: the bytes stay where they are after unmapping */
  image->data = GST_VIDEO_FRAME_PLANE_DATA (&rgb, 0);
  image->stride = GST_VIDEO_FRAME_PLANE_STRIDE (&rgb, 0);
  image->format = OL_PIXEL_RGB;
  gst_video_frame_unmap (&rgb);
}

gboolean
gst_onellm_tokenizer_frame_due (GstOnellmTokenizer *self, GstBuffer *frame, GstClockTime *next,
                                GstClockTime *duration)
{
  GstClockTime pts = GST_BUFFER_PTS (frame), interval = gst_onellm_tokenizer_get_interval (self);
  if (pts == GST_CLOCK_TIME_NONE || interval == 0) {
    *duration = GST_BUFFER_DURATION (frame);
    return TRUE;
  }
  if (*next != GST_CLOCK_TIME_NONE && pts < *next)
    return FALSE;
  /* keep to the interval grid unless the stream jumped past it */
  *next = *next == GST_CLOCK_TIME_NONE || pts >= *next + interval ? pts + interval : *next + interval;
  *duration = interval;
  return TRUE;
}

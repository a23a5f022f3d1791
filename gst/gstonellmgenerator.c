/* Caption generation on a worker thread, shared by onellmcaption and onellmcaptionsink. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmgenerator.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_generator_debug);
#define GST_CAT_DEFAULT gst_onellm_generator_debug

G_DEFINE_ENUM_TYPE (GstOnellmPositionMode, gst_onellm_position_mode,
    G_DEFINE_ENUM_VALUE (OL_POSITION_OFFICIAL, "official"),
    G_DEFINE_ENUM_VALUE (OL_POSITION_CORRECT, "correct"))

#define DEFAULT_MAX_TOKENS 128
#define DEFAULT_LEAKY TRUE
#define DEFAULT_MAX_QUEUED 16
#define DEFAULT_STREAMING FALSE

/* A window to caption, or an event to pass on in order with the captions. */
typedef struct {
  GstBuffer *window;
  GstEvent *event;
  OlModality modality;
  GstClockTime running_time, stream_time;
  gint64 arrival;               /* monotonic µs */
} Item;

struct _GstOnellmGenerator {
  GstElement *element;
  GstOnellmGeneratorFuncs funcs;

  GMutex lock;
  GCond cond;
  /* settings */
  char *prompt;
  guint max_tokens, max_queued;
  float temperature, top_p;
  guint64 seed;
  OlPositionMode position_mode;
  gboolean leaky, streaming;
  /* state */
  GstOnellmModel *model;
  OlSession *session;           /* the worker's alone while it runs */
  GThread *thread;
  GQueue queue;                 /* Item */
  guint n_windows;              /* windows in queue */
  gboolean busy;                /* the worker handles an item */
  gboolean flushing, quit;
  GCancellable *cancellable;    /* of the generation in progress (the worker's reference) */
  GstFlowReturn last_flow;
  gboolean have_format;
  OlModality modality;
  guint64 processed, dropped;
  GstClockTime latency;
};

static void
item_free (Item *item)
{
  gst_clear_buffer (&item->window);
  gst_clear_event (&item->event);
  g_free (item);
}

GstOnellmGenerator *
gst_onellm_generator_new (GstElement *element, const GstOnellmGeneratorFuncs *funcs)
{
  static gsize debug_init = 0;
  if (g_once_init_enter (&debug_init)) {
    GST_DEBUG_CATEGORY_INIT (gst_onellm_generator_debug, "onellmgenerator", 0, "OneLLM caption generation");
    g_once_init_leave (&debug_init, 1);
  }
  GstOnellmGenerator *gen = g_new0 (GstOnellmGenerator, 1);
  OlGenerateParams defaults;
  ol_generate_params_init (&defaults);
  gen->element = element;
  gen->funcs = *funcs;
  g_mutex_init (&gen->lock);
  g_cond_init (&gen->cond);
  g_queue_init (&gen->queue);
  gen->max_tokens = DEFAULT_MAX_TOKENS;
  gen->max_queued = DEFAULT_MAX_QUEUED;
  gen->temperature = defaults.temperature;
  gen->top_p = defaults.top_p;
  gen->seed = defaults.seed;
  gen->position_mode = OL_POSITION_OFFICIAL;
  gen->leaky = DEFAULT_LEAKY;
  gen->streaming = DEFAULT_STREAMING;
  gen->last_flow = GST_FLOW_OK;
  return gen;
}

void
gst_onellm_generator_free (GstOnellmGenerator *gen)
{
  gst_onellm_generator_stop (gen);
  g_free (gen->prompt);
  g_mutex_clear (&gen->lock);
  g_cond_clear (&gen->cond);
  g_free (gen);
}

void
gst_onellm_generator_install_properties (GObjectClass *klass, guint first_id)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  OlGenerateParams d;
  ol_generate_params_init (&d);
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt", "The question asked about every window; unset: the model's "
                           "caption prompt for the stream's modality (e.g. \"Provide a one-sentence caption for the "
                           "provided image.\")", NULL, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_MAX_TOKENS,
      g_param_spec_uint ("max-tokens", "Maximum tokens", "Most tokens generated per caption", 1, 4096,
                         DEFAULT_MAX_TOKENS, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_TEMPERATURE,
      g_param_spec_float ("temperature", "Temperature", "Sampling temperature; 0 takes the most likely token", 0,
                          100, d.temperature, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_TOP_P,
      g_param_spec_float ("top-p", "Top-p", "Nucleus sampling: draw from the most likely tokens that make up this "
                          "probability mass", 0, 1, d.top_p, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_SEED,
      g_param_spec_uint64 ("seed", "Seed", "Seed of the sampler, the same for every caption (equal windows give "
                           "equal captions)", 0, G_MAXUINT64, d.seed, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_POSITION_MODE,
      g_param_spec_enum ("position-mode", "Position mode", "Decoding positions after the modality block: "
                         "\"official\" as the released OneLLM code, \"correct\" right after the prompt "
                         "(docs/language.md)", GST_TYPE_ONELLM_POSITION_MODE, OL_POSITION_OFFICIAL,
                         rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_LEAKY,
      g_param_spec_boolean ("leaky", "Leaky", "TRUE: a window arriving while a caption is being generated is "
                            "dropped (counted in \"dropped\", posted as a QoS message), so live sources never wait; "
                            "FALSE: it waits in a queue of max-queued windows, past which upstream waits",
                            DEFAULT_LEAKY, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_MAX_QUEUED,
      g_param_spec_uint ("max-queued", "Maximum queued", "Windows that may wait for their caption when not "
                         "leaky", 1, 1024, DEFAULT_MAX_QUEUED, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_STREAMING,
      g_param_spec_boolean ("streaming", "Streaming", "Also deliver the caption so far while it is generated, "
                            "once per new piece of text", DEFAULT_STREAMING, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (klass, first_id + GST_ONELLM_GENERATOR_PROP_DROPPED,
      g_param_spec_uint64 ("dropped", "Dropped", "Windows dropped since the element started because a caption "
                           "was being generated (leaky)", 0, G_MAXUINT64, 0,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

void
gst_onellm_generator_set_property (GstOnellmGenerator *gen, guint id, const GValue *value)
{
  g_mutex_lock (&gen->lock);
  switch (id) {
    case GST_ONELLM_GENERATOR_PROP_PROMPT:
      g_free (gen->prompt);
      gen->prompt = g_value_dup_string (value);
      break;
    case GST_ONELLM_GENERATOR_PROP_MAX_TOKENS:
      gen->max_tokens = g_value_get_uint (value);
      break;
    case GST_ONELLM_GENERATOR_PROP_TEMPERATURE:
      gen->temperature = g_value_get_float (value);
      break;
    case GST_ONELLM_GENERATOR_PROP_TOP_P:
      gen->top_p = g_value_get_float (value);
      break;
    case GST_ONELLM_GENERATOR_PROP_SEED:
      gen->seed = g_value_get_uint64 (value);
      break;
    case GST_ONELLM_GENERATOR_PROP_POSITION_MODE:
      gen->position_mode = g_value_get_enum (value);
      break;
    case GST_ONELLM_GENERATOR_PROP_LEAKY:
      gen->leaky = g_value_get_boolean (value);
      g_cond_broadcast (&gen->cond);
      break;
    case GST_ONELLM_GENERATOR_PROP_MAX_QUEUED:
      gen->max_queued = g_value_get_uint (value);
      g_cond_broadcast (&gen->cond);
      break;
    case GST_ONELLM_GENERATOR_PROP_STREAMING:
      gen->streaming = g_value_get_boolean (value);
      break;
    default:
      g_return_if_reached ();
  }
  g_mutex_unlock (&gen->lock);
}

void
gst_onellm_generator_get_property (GstOnellmGenerator *gen, guint id, GValue *value)
{
  g_mutex_lock (&gen->lock);
  switch (id) {
    case GST_ONELLM_GENERATOR_PROP_PROMPT:
      g_value_set_string (value, gen->prompt);
      break;
    case GST_ONELLM_GENERATOR_PROP_MAX_TOKENS:
      g_value_set_uint (value, gen->max_tokens);
      break;
    case GST_ONELLM_GENERATOR_PROP_TEMPERATURE:
      g_value_set_float (value, gen->temperature);
      break;
    case GST_ONELLM_GENERATOR_PROP_TOP_P:
      g_value_set_float (value, gen->top_p);
      break;
    case GST_ONELLM_GENERATOR_PROP_SEED:
      g_value_set_uint64 (value, gen->seed);
      break;
    case GST_ONELLM_GENERATOR_PROP_POSITION_MODE:
      g_value_set_enum (value, gen->position_mode);
      break;
    case GST_ONELLM_GENERATOR_PROP_LEAKY:
      g_value_set_boolean (value, gen->leaky);
      break;
    case GST_ONELLM_GENERATOR_PROP_MAX_QUEUED:
      g_value_set_uint (value, gen->max_queued);
      break;
    case GST_ONELLM_GENERATOR_PROP_STREAMING:
      g_value_set_boolean (value, gen->streaming);
      break;
    case GST_ONELLM_GENERATOR_PROP_DROPPED:
      g_value_set_uint64 (value, gen->dropped);
      break;
    default:
      g_return_if_reached ();
  }
  g_mutex_unlock (&gen->lock);
}

/* Streaming text of one generation. */
typedef struct {
  GstOnellmGenerator *gen;
  GstOnellmCaptionText caption;
  GString *text;
  GCancellable *cancellable;
  GstFlowReturn flow;
} Generation;

static gboolean
on_piece (const char *piece, gint32 token, gpointer user_data)
{
  Generation *g = user_data;
  if (g_cancellable_is_cancelled (g->cancellable))
    return FALSE;
  if (token >= 0)
    g->caption.n_tokens++;
  if (*piece == '\0')
    return TRUE;
  g_string_append (g->text, piece);
  g->caption.text = g->text->str;
  g->caption.partial = TRUE;
  g->flow = g->gen->funcs.caption (g->gen->element, &g->caption);
  return g->flow == GST_FLOW_OK;
}

static void
set_flow (GstOnellmGenerator *gen, GstFlowReturn flow)
{
  g_mutex_lock (&gen->lock);
  if (flow != GST_FLOW_OK && !gen->flushing && gen->last_flow == GST_FLOW_OK)
    gen->last_flow = flow;
  g_mutex_unlock (&gen->lock);
}

static void
generate (GstOnellmGenerator *gen, Item *item, GCancellable *cancellable)
{
  OlModel *model = gst_onellm_model_get_model (gen->model);
  g_autoptr (GError) error = NULL;
  g_autofree char *prompt = NULL;
  OlGenerateParams params;
  gboolean streaming;
  GstMapInfo map;

  ol_generate_params_init (&params);
  g_mutex_lock (&gen->lock);
  prompt = g_strdup (gen->prompt);
  params.max_tokens = gen->max_tokens;
  params.temperature = gen->temperature;
  params.top_p = gen->top_p;
  params.seed = gen->seed;
  streaming = gen->streaming;
  g_mutex_unlock (&gen->lock);
  const char *question = prompt ? prompt : ol_model_get_info (model)->modality[item->modality].default_prompt;

  Generation g = {
    .gen = gen, .text = g_string_new (NULL), .cancellable = cancellable, .flow = GST_FLOW_OK,
    .caption = {
      .modality = item->modality, .pts = GST_BUFFER_PTS (item->window), .duration = GST_BUFFER_DURATION (item->window),
      .running_time = item->running_time, .stream_time = item->stream_time,
    },
  };
  OlGenerateResult result = { 0 };
  gint64 start = g_get_monotonic_time ();
  gst_buffer_map (item->window, &map, GST_MAP_READ);
  const float *blocks[] = { (const float *) map.data };
  ol_session_reset (gen->session);
  gboolean ok = ol_session_chat (gen->session, question, blocks, 1, &params, streaming ? on_piece : NULL, &g,
                                 cancellable, &result, &error);
  gst_buffer_unmap (item->window, &map);
  gint64 end = g_get_monotonic_time ();

  if (ok && g.flow == GST_FLOW_OK && !g_cancellable_is_cancelled (cancellable)) {
    double seconds = result.prefill_seconds + result.decode_seconds;
    g.caption.text = result.text;
    g.caption.partial = FALSE;
    g.caption.n_tokens = result.tokens->len;
    g.caption.tokens_per_second = seconds > 0 ? result.tokens->len / seconds : 0;
    g.caption.latency = (GstClockTime) (end - item->arrival) * GST_USECOND;
    GST_DEBUG_OBJECT (gen->element, "caption of %" GST_TIME_FORMAT " in %.3f s (prefill of %u tokens %.3f s, %u "
                      "tokens %.3f s): \"%s\"", GST_TIME_ARGS (g.caption.pts), (end - start) / 1e6,
                      result.n_prompt_tokens, result.prefill_seconds, result.tokens->len, result.decode_seconds,
                      result.text);
    set_flow (gen, gen->funcs.caption (gen->element, &g.caption));

    GstClockTime took = (GstClockTime) (end - start) * GST_USECOND;
    gboolean grew = FALSE;
    g_mutex_lock (&gen->lock);
    if (took > gen->latency) {
      gen->latency = took + took / 4;
      grew = TRUE;
    }
    g_mutex_unlock (&gen->lock);
    if (grew)
      gst_element_post_message (gen->element, gst_message_new_latency (GST_OBJECT (gen->element)));
  } else if (ok || g_error_matches (error, OL_ERROR, OL_ERROR_CANCELLED)) {
    GST_DEBUG_OBJECT (gen->element, "caption of %" GST_TIME_FORMAT " not delivered: cancelled, or refused "
                      "downstream (%s)", GST_TIME_ARGS (g.caption.pts), gst_flow_get_name (g.flow));
    set_flow (gen, g.flow);
  } else if (!g_cancellable_is_cancelled (cancellable)) {
    gst_onellm_model_post_error (gen->element, "Caption generation failed", error);
    set_flow (gen, GST_FLOW_ERROR);
  }
  ol_generate_result_clear (&result);
  g_string_free (g.text, TRUE);
}

static gpointer
worker (gpointer data)
{
  GstOnellmGenerator *gen = data;
  g_mutex_lock (&gen->lock);
  while (TRUE) {
    /* nothing goes downstream while it flushes */
    while (!gen->quit && (gen->flushing || g_queue_is_empty (&gen->queue)))
      g_cond_wait (&gen->cond, &gen->lock);
    if (gen->quit)
      break;
    Item *item = g_queue_pop_head (&gen->queue);
    GCancellable *cancellable = NULL;
    gen->busy = TRUE;
    if (item->window) {
      gen->n_windows--;
      cancellable = gen->cancellable = g_cancellable_new ();
    }
    g_cond_broadcast (&gen->cond);
    g_mutex_unlock (&gen->lock);

    if (item->window) {
      generate (gen, item, cancellable);
    } else if (gen->funcs.event) {
      set_flow (gen, gen->funcs.event (gen->element, g_steal_pointer (&item->event)));
    }
    item_free (item);

    g_mutex_lock (&gen->lock);
    gen->cancellable = NULL;
    g_clear_object (&cancellable);
    gen->busy = FALSE;
    g_cond_broadcast (&gen->cond);
  }
  g_mutex_unlock (&gen->lock);
  return NULL;
}

/* Prompt tokens of the longest question the session may be asked. */
static gsize
longest_prompt (OlModel *model, const char *prompt)
{
  const OlModelInfo *info = ol_model_get_info (model);
  gsize longest = 0;
  for (int m = -1; m < OL_N_MODALITIES; m++) {
    const char *q = m < 0 ? prompt : info->modality[m].present ? info->modality[m].default_prompt : NULL;
    if (q == NULL)
      continue;
    OlPromptTurn turn = { q, NULL };
    g_autofree char *text = ol_prompt_build (NULL, &turn, 1);
    gsize n;
    g_free (ol_tokenizer_encode (ol_model_get_tokenizer (model), text, -1, TRUE, FALSE, &n));
    longest = MAX (longest, n);
  }
  return longest;
}

gboolean
gst_onellm_generator_start (GstOnellmGenerator *gen, GstOnellmModel *model, GError **error)
{
  OlModel *m = gst_onellm_model_get_model (model);
  const OlModelInfo *info = ol_model_get_info (m);
  OlSessionParams params;
  g_autofree char *prompt = NULL;

  g_return_val_if_fail (gen->thread == NULL, FALSE);
  ol_session_params_init (&params);
  g_mutex_lock (&gen->lock);
  prompt = g_strdup (gen->prompt);
  params.position_mode = gen->position_mode;
  guint max_tokens = gen->max_tokens;
  g_mutex_unlock (&gen->lock);
  /* the cache holds one question, one block and the answer: no more (the model's whole context would
   * cost gigabytes for a 7B model) */
  gsize need = longest_prompt (m, prompt) + 2 + info->n_resample + max_tokens + 1;
  params.n_ctx = (guint) MIN (need, info->context_length);
  gen->session = ol_session_new (m, &params, error);
  if (gen->session == NULL)
    return FALSE;
  gen->model = gst_onellm_model_ref (model);
  gen->quit = gen->flushing = FALSE;
  gen->last_flow = GST_FLOW_OK;
  gen->processed = gen->dropped = 0;
  gen->latency = 0;
  gen->have_format = FALSE;
  gen->thread = g_thread_new ("onellm-caption", worker, gen);
  return TRUE;
}

/* Under the lock: cancels the generation in progress and drops the queued windows. A flush also drops the
 * events that describe the flushed data (segments, gaps, EOS, non-sticky events); stream-start, caps and tags
 * stay, to go downstream once the flush is over. */
static void
drop_queued (GstOnellmGenerator *gen, gboolean flush)
{
  if (gen->cancellable)
    g_cancellable_cancel (gen->cancellable);
  for (GList *l = gen->queue.head, *next; l; l = next) {
    Item *item = l->data;
    next = l->next;
    if (item->window || (flush && (!GST_EVENT_IS_STICKY (item->event) ||
                                   GST_EVENT_TYPE (item->event) == GST_EVENT_SEGMENT ||
                                   GST_EVENT_TYPE (item->event) == GST_EVENT_EOS))) {
      g_queue_delete_link (&gen->queue, l);
      item_free (item);
    }
  }
  gen->n_windows = 0;
  g_cond_broadcast (&gen->cond);
}

void
gst_onellm_generator_stop (GstOnellmGenerator *gen)
{
  if (gen->thread == NULL)
    return;
  g_mutex_lock (&gen->lock);
  gen->quit = gen->flushing = TRUE;
  drop_queued (gen, TRUE);
  g_mutex_unlock (&gen->lock);
  g_thread_join (gen->thread);
  g_queue_clear_full (&gen->queue, (GDestroyNotify) item_free);
  gen->thread = NULL;
  g_clear_pointer (&gen->session, ol_session_free);
  g_clear_pointer (&gen->model, gst_onellm_model_unref);
}

gboolean
gst_onellm_generator_set_format (GstOnellmGenerator *gen, const GstCaps *caps, GError **error)
{
  g_return_val_if_fail (gen->model != NULL, FALSE);
  OlModel *model = gst_onellm_model_get_model (gen->model);
  const OlModelInfo *info = ol_model_get_info (model);
  GstStructure *s = gst_caps_get_structure (caps, 0);
  const char *name = gst_structure_get_string (s, "modality");
  OlModality modality;
  int tokens = 0, width = 0;

  if (name == NULL || !ol_modality_from_name (name, &modality)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "unknown modality \"%s\" in the caps",
                 name ? name : "(none)");
    return FALSE;
  }
  if (!ol_model_has_modality (model, modality)) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "the model %s has no %s modality",
                 gst_onellm_model_get_path (gen->model), name);
    return FALSE;
  }
  gst_structure_get_int (s, "tokens", &tokens);
  gst_structure_get_int (s, "width", &width);
  if (tokens != (int) (2 + info->n_resample) || width != (int) info->dim) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "embeddings of %d × %d do not fit the model, which "
                 "takes %u × %u", tokens, width, 2 + info->n_resample, info->dim);
    return FALSE;
  }
  g_mutex_lock (&gen->lock);
  if (gen->have_format && modality != gen->modality) {
    GST_DEBUG_OBJECT (gen->element, "modality changes: the windows of the old one are dropped");
    drop_queued (gen, FALSE);
    while (gen->busy)
      g_cond_wait (&gen->cond, &gen->lock);
  }
  gen->modality = modality;
  gen->have_format = TRUE;
  g_mutex_unlock (&gen->lock);
  return TRUE;
}

static GstClockTime
to_running_time (const GstSegment *segment, GstClockTime t)
{
  return segment && segment->format == GST_FORMAT_TIME ? gst_segment_to_running_time (segment, GST_FORMAT_TIME, t)
                                                       : t;
}

static GstClockTime
to_stream_time (const GstSegment *segment, GstClockTime t)
{
  return segment && segment->format == GST_FORMAT_TIME ? gst_segment_to_stream_time (segment, GST_FORMAT_TIME, t)
                                                       : t;
}

GstFlowReturn
gst_onellm_generator_submit (GstOnellmGenerator *gen, GstBuffer *window, const GstSegment *segment)
{
  GstClockTime pts = GST_BUFFER_PTS (window);
  GstFlowReturn ret;

  g_mutex_lock (&gen->lock);
  while (!gen->flushing && !gen->leaky && gen->n_windows >= gen->max_queued)
    g_cond_wait (&gen->cond, &gen->lock);
  if (gen->flushing || !gen->have_format) {
    ret = gen->flushing ? GST_FLOW_FLUSHING : GST_FLOW_NOT_NEGOTIATED;
    g_mutex_unlock (&gen->lock);
    gst_buffer_unref (window);
    return ret;
  }
  const OlModelInfo *info = ol_model_get_info (gst_onellm_model_get_model (gen->model));
  gsize want = (gsize) (2 + info->n_resample) * info->dim * sizeof (float);
  if (gst_buffer_get_size (window) != want) {
    g_mutex_unlock (&gen->lock);
    GST_ELEMENT_ERROR (gen->element, STREAM, FORMAT, ("A window of %" G_GSIZE_FORMAT " bytes where the caps "
                       "promise %" G_GSIZE_FORMAT, gst_buffer_get_size (window), want), (NULL));
    gst_buffer_unref (window);
    return GST_FLOW_ERROR;
  }
  ret = gen->last_flow;
  if (gen->leaky && (gen->cancellable != NULL || gen->n_windows > 0)) {
    guint64 processed = gen->processed, dropped = ++gen->dropped;
    g_mutex_unlock (&gen->lock);
    GST_INFO_OBJECT (gen->element, "busy: window at %" GST_TIME_FORMAT " dropped (%" G_GUINT64_FORMAT " so far)",
                     GST_TIME_ARGS (pts), dropped);
    GstMessage *qos = gst_message_new_qos (GST_OBJECT (gen->element), FALSE, to_running_time (segment, pts),
                                           to_stream_time (segment, pts), pts, GST_BUFFER_DURATION (window));
    gst_message_set_qos_stats (qos, GST_FORMAT_BUFFERS, processed, dropped);
    gst_element_post_message (gen->element, qos);
    if (gen->funcs.dropped)
      gen->funcs.dropped (gen->element, window);
    gst_buffer_unref (window);
    return ret;
  }
  Item *item = g_new0 (Item, 1);
  item->window = window;
  item->modality = gen->modality;
  item->running_time = to_running_time (segment, pts);
  item->stream_time = to_stream_time (segment, pts);
  item->arrival = g_get_monotonic_time ();
  g_queue_push_tail (&gen->queue, item);
  gen->n_windows++;
  gen->processed++;
  g_cond_broadcast (&gen->cond);
  g_mutex_unlock (&gen->lock);
  return ret;
}

void
gst_onellm_generator_queue_event (GstOnellmGenerator *gen, GstEvent *event)
{
  Item *item = g_new0 (Item, 1);
  item->event = event;
  g_mutex_lock (&gen->lock);
  g_queue_push_tail (&gen->queue, item);
  g_cond_broadcast (&gen->cond);
  g_mutex_unlock (&gen->lock);
}

void
gst_onellm_generator_drain (GstOnellmGenerator *gen)
{
  g_mutex_lock (&gen->lock);
  while (!gen->flushing && (gen->busy || !g_queue_is_empty (&gen->queue)))
    g_cond_wait (&gen->cond, &gen->lock);
  g_mutex_unlock (&gen->lock);
}

void
gst_onellm_generator_set_flushing (GstOnellmGenerator *gen, gboolean flushing)
{
  g_mutex_lock (&gen->lock);
  if (flushing) {
    gen->flushing = TRUE;
    drop_queued (gen, TRUE);
  } else {
    while (gen->busy)
      g_cond_wait (&gen->cond, &gen->lock);
    gen->flushing = gen->quit;
    gen->last_flow = GST_FLOW_OK;
    g_cond_broadcast (&gen->cond);
  }
  g_mutex_unlock (&gen->lock);
}

GstClockTime
gst_onellm_generator_get_latency (GstOnellmGenerator *gen)
{
  GstClockTime latency;
  g_mutex_lock (&gen->lock);
  latency = gen->latency;
  g_mutex_unlock (&gen->lock);
  return latency;
}

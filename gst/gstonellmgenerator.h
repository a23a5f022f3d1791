/* Caption generation on a worker thread, shared by onellmcaption and onellmcaptionsink. */
#pragma once

#include <gst/gst.h>
#include "gstonellmcontext.h"

G_BEGIN_DECLS

/* What onellmencoder produces and the captioners take: (2 + n_resample) × dim native-endian float32 per
 * buffer, the LLM input block of one window (start tag, the UPM outputs, end tag). */
#define GST_ONELLM_MODALITY_NAMES "{ image, video, audio, point, depth, normal, fmri, imu }"
#define GST_ONELLM_EMBEDDINGS_CAPS "application/x-onellm-embeddings, modality = (string) " \
  GST_ONELLM_MODALITY_NAMES ", tokens = (int) [ 1, MAX ], width = (int) [ 1, MAX ]"

#define GST_TYPE_ONELLM_POSITION_MODE (gst_onellm_position_mode_get_type ())
GType gst_onellm_position_mode_get_type (void);

/* The generator's properties, installed on an element class from first_id on (see
 * gst_onellm_generator_install_properties). */
enum {
  GST_ONELLM_GENERATOR_PROP_PROMPT,
  GST_ONELLM_GENERATOR_PROP_MAX_TOKENS,
  GST_ONELLM_GENERATOR_PROP_TEMPERATURE,
  GST_ONELLM_GENERATOR_PROP_TOP_P,
  GST_ONELLM_GENERATOR_PROP_SEED,
  GST_ONELLM_GENERATOR_PROP_POSITION_MODE,
  GST_ONELLM_GENERATOR_PROP_LEAKY,
  GST_ONELLM_GENERATOR_PROP_MAX_QUEUED,
  GST_ONELLM_GENERATOR_PROP_STREAMING,
  GST_ONELLM_GENERATOR_PROP_DROPPED,
  GST_ONELLM_GENERATOR_N_PROPS
};

typedef struct _GstOnellmGenerator GstOnellmGenerator;

/* One caption, or while streaming the caption so far (partial). Times are those of the window it
 * describes; running and stream time come from the segment the window arrived in. */
typedef struct {
  const char *text;
  gboolean partial;
  OlModality modality;
  GstClockTime pts, duration, running_time, stream_time;
  guint n_tokens;               /* tokens generated */
  double tokens_per_second;     /* n_tokens over the generation's time, prefill included */
  GstClockTime latency;         /* from the window's arrival at the element to this text */
} GstOnellmCaptionText;

/* What the element does with the generator's results. caption and event run on the worker thread, in the
 * order the windows and events were queued; a flow other than OK is kept and returned by the next
 * gst_onellm_generator_submit (not-linked, flushing, EOS from downstream). dropped runs on the thread that
 * submitted a window the generator dropped (leaky); it may queue events. */
typedef struct {
  GstFlowReturn (*caption) (GstElement *element, const GstOnellmCaptionText *caption);
  GstFlowReturn (*event) (GstElement *element, GstEvent *event);
  void (*dropped) (GstElement *element, GstBuffer *window);
} GstOnellmGeneratorFuncs;

GstOnellmGenerator *gst_onellm_generator_new (GstElement *element, const GstOnellmGeneratorFuncs *funcs);
void gst_onellm_generator_free (GstOnellmGenerator *gen);

/* Installs the properties (prompt, max-tokens, temperature, top-p, seed, position-mode, leaky, max-queued,
 * streaming, dropped) with ids first_id + GST_ONELLM_GENERATOR_PROP_*; the element's set_property and
 * get_property pass ids in that range on with the offset removed. */
void gst_onellm_generator_install_properties (GObjectClass *klass, guint first_id);
void gst_onellm_generator_set_property (GstOnellmGenerator *gen, guint id, const GValue *value);
void gst_onellm_generator_get_property (GstOnellmGenerator *gen, guint id, GValue *value);

/* READY→PAUSED: a session on the model (sized for the prompts and max-tokens) and the worker thread.
 * Engine errors are OL_ERROR GErrors. */
gboolean gst_onellm_generator_start (GstOnellmGenerator *gen, GstOnellmModel *model, GError **error);
/* PAUSED→READY: cancels the generation in progress, drops what is queued, joins the worker. */
void gst_onellm_generator_stop (GstOnellmGenerator *gen);

/* The format of the embeddings (from caps). A modality the model does not have, or a block of another
 * size than the model's, is an OL_ERROR_INVALID_ARGUMENT/UNSUPPORTED naming both. A change of format
 * cancels the generation in progress and drops the windows queued in the old one. */
gboolean gst_onellm_generator_set_format (GstOnellmGenerator *gen, const GstCaps *caps, GError **error);

/* Streaming thread: one window of embeddings (takes the buffer), timed in segment. Busy and leaky: the
 * window is dropped, counted, logged and posted as a QoS message; not leaky: it waits in the queue, and when
 * max-queued windows wait already, this call waits for room. Returns GST_FLOW_FLUSHING while flushing, else
 * the last flow of the element's callbacks. */
GstFlowReturn gst_onellm_generator_submit (GstOnellmGenerator *gen, GstBuffer *window, const GstSegment *segment);
/* Queues a serialized event (takes it) for funcs->event, behind the windows queued before it. */
void gst_onellm_generator_queue_event (GstOnellmGenerator *gen, GstEvent *event);
/* Waits until every queued window has its caption (or the generator flushes). */
void gst_onellm_generator_drain (GstOnellmGenerator *gen);
/* TRUE (flush-start, unlock, stopping): cancels the generation in progress, drops everything queued and
 * wakes the waiting threads; FALSE (flush-stop): waits for the cancelled generation to end, then accepts
 * windows again. */
void gst_onellm_generator_set_flushing (GstOnellmGenerator *gen, gboolean flushing);

/* The generation time the element adds to its latency: 0 before the first caption, then 1.25 × the longest
 * generation so far. When it grows the generator posts a LATENCY message so that live pipelines re-query. */
GstClockTime gst_onellm_generator_get_latency (GstOnellmGenerator *gen);

G_END_DECLS

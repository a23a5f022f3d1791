/* Base class of the modality tokenizer elements: model context, output caps, windows and timestamps. */
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>
#include "gstonellmcontext.h"

G_BEGIN_DECLS

#define GST_TYPE_ONELLM_TOKENIZER (gst_onellm_tokenizer_get_type ())
G_DECLARE_DERIVABLE_TYPE (GstOnellmTokenizer, gst_onellm_tokenizer, GST, ONELLM_TOKENIZER, GstElement)

/* Output caps: T×L×W float32 tokens per buffer, one buffer per window (see docs/elements.md). */
#define GST_ONELLM_TOKENS_CAPS_FORMAT "application/x-onellm-tokens, modality = (string) %s, " \
  "frames = (int) [ 1, MAX ], tokens = (int) [ 1, MAX ], width = (int) [ 1, MAX ]"

/* The tokenizer owns its source pad and the sink pad made from the class's "sink" pad template; a class
 * without one (depth and normal maps) adds its pads itself with gst_onellm_tokenizer_add_sink_pad. The
 * first sink pad added drives the stream: its segment, EOS and flushes are forwarded downstream. Buffers
 * reach handle_buffer on the pad's streaming thread; the subclass preprocesses a window into the model's
 * input tensor and hands it to gst_onellm_tokenizer_push_window, which runs the modality tokenizer of
 * the engine and pushes the tokens. */
struct _GstOnellmTokenizerClass {
  GstElementClass parent_class;

  OlModality modality;

  /* Caps arrived on pad. FALSE refuses them (post an element error saying why if the template alone
   * does not explain it). */
  gboolean (*set_caps) (GstOnellmTokenizer *self, GstPad *pad, GstCaps *caps);
  GstFlowReturn (*handle_buffer) (GstOnellmTokenizer *self, GstPad *pad, GstBuffer *buffer);
  /* EOS on the driving pad: emit what is pending (optional). */
  GstFlowReturn (*drain) (GstOnellmTokenizer *self);
  /* Forget pending data: flush, stop, and before the first buffer of new caps (optional). */
  void (*reset) (GstOnellmTokenizer *self);
  /* The element stops (PAUSED→READY): wake anything waiting in handle_buffer (optional). */
  void (*unlock) (GstOnellmTokenizer *self);
};

/* Sets the modality of a subclass and its "src" pad template (the tokens caps of that modality). */
void gst_onellm_tokenizer_class_set_modality (GstOnellmTokenizerClass *klass, OlModality modality);

/* Installs "window" and "interval" (nanoseconds) on a subclass; the base class stores them. max_window
 * GST_CLOCK_TIME_NONE: no upper bound. A class without a window length (one frame per interval) passes
 * default_window GST_CLOCK_TIME_NONE and gets "interval" only. */
void gst_onellm_tokenizer_class_install_window_properties (GstOnellmTokenizerClass *klass,
                                                           GstClockTime default_window,
                                                           GstClockTime max_window,
                                                           GstClockTime default_interval);

GstPad *gst_onellm_tokenizer_add_sink_pad (GstOnellmTokenizer *self, GstPadTemplate *templ, const char *name);
GstPad *gst_onellm_tokenizer_get_sink_pad (GstOnellmTokenizer *self);

GstClockTime gst_onellm_tokenizer_get_window (GstOnellmTokenizer *self);
GstClockTime gst_onellm_tokenizer_get_interval (GstOnellmTokenizer *self);

/* The loaded model (valid from READY→PAUSED to PAUSED→READY) and the modality's shapes in it. */
const OlModelInfo *gst_onellm_tokenizer_get_model_info (GstOnellmTokenizer *self);
const OlModalityInfo *gst_onellm_tokenizer_get_modality_info (GstOnellmTokenizer *self);
/* Elements of the modality's model input tensor (the product of OlModalityInfo.input_shape). */
gsize gst_onellm_tokenizer_input_size (GstOnellmTokenizer *self);

/* Tokenizes input (the model input tensor of the class's modality) and pushes the tokens with the
 * window's timestamps. An engine error becomes an element error and GST_FLOW_ERROR. */
GstFlowReturn gst_onellm_tokenizer_push_window (GstOnellmTokenizer *self, const float *input,
                                                GstClockTime pts, GstClockTime duration);

/* Posts an engine error about the input as an element error (a stream format error) and returns
 * GST_FLOW_ERROR. */
GstFlowReturn gst_onellm_tokenizer_input_error (GstOnellmTokenizer *self, const GError *error);

/* Video formats the tokenizers take: the packed layouts the engine reads (engine/preprocess.h) as they are,
 * and the common YUV layouts of cameras and decoders, converted to RGB with GstVideoConverter (what
 * videoconvert would do) only for the frames that are tokenized. */
#define GST_ONELLM_VIDEO_FORMATS "{ RGB, BGR, RGBA, BGRA, ARGB, ABGR, RGBx, BGRx, xRGB, xBGR, GRAY8, I420, YV12, " \
  "NV12, NV21, YUY2, UYVY }"

/* What gst_onellm_video_frame_to_image needs to convert frames; one per stream. */
typedef struct {
  GByteArray *gray;             /* GRAY16_LE reduced to 8 bits */
  GstVideoConverter *convert;   /* YUV to RGB for frames of in_info */
  GstVideoInfo in_info, rgb_info;
  GstBuffer *rgb;
} GstOnellmFrameScratch;

void gst_onellm_frame_scratch_init (GstOnellmFrameScratch *scratch);
void gst_onellm_frame_scratch_clear (GstOnellmFrameScratch *scratch);

/* The frame as an engine image, valid until the next call with the same scratch: packed layouts as they are,
 * GRAY16_LE reduced to its high byte, YUV converted to RGB. */
void gst_onellm_video_frame_to_image (const GstVideoFrame *frame, GstOnellmFrameScratch *scratch,
                                      OlImage *image);

/* One frame per interval: whether the frame at pts goes out, given the time *next the next one is due
 * (GST_CLOCK_TIME_NONE: the first frame), which moves on; *duration: what the output covers (the interval,
 * or the frame's own duration with interval 0). */
gboolean gst_onellm_tokenizer_frame_due (GstOnellmTokenizer *self, GstBuffer *frame, GstClockTime *next,
                                         GstClockTime *duration);

/* A whole file arriving as buffers until EOS (filesrc into a tokenizer in file mode), with the timestamp of
 * its first buffer (0 when that had none). */
typedef struct {
  GByteArray *bytes;
  GstClockTime pts;
} GstOnellmFile;

void gst_onellm_file_init (GstOnellmFile *f);
void gst_onellm_file_free (GstOnellmFile *f);
/* Forgets the bytes (flush, restart, or the file was consumed). */
void gst_onellm_file_clear (GstOnellmFile *f);
/* Appends the buffer's bytes; takes the buffer. */
void gst_onellm_file_push (GstOnellmFile *f, GstBuffer *buffer);

/* Samples accumulated for a sliding window over an interleaved stream (audio, IMU). Times are those of
 * the stream's buffers; a timestamp more than 40 ms away from where the samples so far end (a gap, a
 * jump) restarts the window there. */
typedef struct {
  GByteArray *data;     /* interleaved frames from `start` on */
  guint bpf;            /* bytes per frame */
  gint rate;
  GstClockTime start;   /* time of the first frame of data, GST_CLOCK_TIME_NONE before any */
  guint64 n_frames;     /* frames in data */
  guint64 skip;         /* frames still to drop from the input: an interval longer than the window */
  guint64 covered;      /* leading frames of data that an emitted window already held */
} GstOnellmSamples;

void gst_onellm_samples_init (GstOnellmSamples *s);
void gst_onellm_samples_free (GstOnellmSamples *s);
/* Forgets the samples (flush, restart). */
void gst_onellm_samples_clear (GstOnellmSamples *s);
void gst_onellm_samples_set_format (GstOnellmSamples *s, guint bpf, gint rate);
void gst_onellm_samples_push (GstOnellmSamples *s, GstBuffer *buffer);
/* Frames in a window of the given length (at least one). */
guint64 gst_onellm_samples_window_frames (const GstOnellmSamples *s, GstClockTime window);
/* A window of window_frames from the start went out: the next one starts interval_frames later. */
void gst_onellm_samples_window_done (GstOnellmSamples *s, guint64 window_frames, guint64 interval_frames);

G_END_DECLS

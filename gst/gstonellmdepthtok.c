/* onellmdepthtok: depth maps (with their RGB photos when linked) → OneLLM depth tokens. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstonellmelements.h"
#include "gstonellmmaptok.h"

GST_DEBUG_CATEGORY_STATIC (gst_onellm_depth_tok_debug);

#define GST_TYPE_ONELLM_DEPTH_TOK (gst_onellm_depth_tok_get_type ())
G_DECLARE_FINAL_TYPE (GstOnellmDepthTok, gst_onellm_depth_tok, GST, ONELLM_DEPTH_TOK, GstOnellmMapTok)

struct _GstOnellmDepthTok {
  GstOnellmMapTok parent;
};

G_DEFINE_TYPE (GstOnellmDepthTok, gst_onellm_depth_tok, GST_TYPE_ONELLM_MAP_TOK)
GST_ELEMENT_REGISTER_DEFINE (onellmdepthtok, "onellmdepthtok", GST_RANK_NONE, GST_TYPE_ONELLM_DEPTH_TOK)

static void
gst_onellm_depth_tok_init (GstOnellmDepthTok *self)
{
}

static void
gst_onellm_depth_tok_class_init (GstOnellmDepthTokClass *klass)
{
  GST_DEBUG_CATEGORY_INIT (gst_onellm_depth_tok_debug, "onellmdepthtok", 0, "OneLLM depth tokenizer");
  /* 16-bit depth (Omnidata PNGs, depth cameras) is reduced to its high byte */
  gst_onellm_map_tok_class_setup (
      GST_ONELLM_MAP_TOK_CLASS (klass), OL_MODALITY_DEPTH,
      "{ GRAY8, GRAY16_LE, RGB, BGR, RGBA, BGRA, ARGB, ABGR, RGBx, BGRx, xRGB, xBGR, I420, YV12, NV12, NV21, "
      "YUY2, UYVY }",
      gst_onellm_depth_tok_debug, "OneLLM depth tokenizer",
      "Turns depth maps, with their RGB photos on the optional rgb pad, into OneLLM depth tokens for "
      "onellmencoder, one map per interval");
}

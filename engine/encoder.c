/* The encoder path on the device: modality tokenizers, CLIP ViT and the UPM recorded once per modality. */
#include "encoder.h"
#include "ops.h"
#include "preprocess-private.h"

#include <math.h>
#include <string.h>

typedef struct {
  OlGraph *tokenize;      /* input → tokens */
  OlGraph *encode;        /* tokens → embeddings */
  OlGraph *full;          /* both, one submission */
  float *routing;         /* [n_resample, experts] */
  OlTensor **route;       /* per expert [W, R]: routing[r, e] repeated over the row, the factor of row r */
} ModalityState;

struct _OlEncoder {
  OlModel *model;
  OlDevice *dev;
  const OlModelInfo *info;
  /* Working buffers as flat F32 tensors sized for the largest modality; views give them shapes. */
  OlTensor *input;        /* host-visible: the model input (fMRI padded to the weight's width) */
  OlTensor *ids;          /* host-visible I32: the point groups' neighbour indices */
  OlTensor *tokens;       /* [W, L, F] */
  OlTensor *cols;         /* im2col patches, gathered point features and their projection, fMRI linear output */
  OlTensor *x, *h, *q, *k, *v, *a;
  OlTensor *ffn;          /* CLIP MLP hidden, or the UPM's gate and up halves */
  OlTensor *clip;         /* [W, L + 1]: after ln_post and the frame mean */
  OlTensor *seq, *up;     /* [W, R + L + 1]: the UPM input and one expert's stream */
  OlTensor *mix;          /* [W, R] */
  OlTensor *out;          /* [D, R + 2] */
  ModalityState mod[OL_N_MODALITIES];
  gint32 *fps, *knn;      /* point groups of the last point input */
  int last;               /* modality of the last encode, -1 before the first */
};

/* A view of the F32 buffer tensor base from element first, with the given shape. */
static OlTensor
view_at (const OlTensor *base, gint64 first, guint n_dims, gint64 ne0, gint64 ne1, gint64 ne2, gint64 ne3)
{
  g_return_val_if_fail (base->type == OL_TYPE_F32 && first + ne0 * ne1 * ne2 * ne3 <= ol_tensor_n_elements (base),
                        *base);
  OlTensor v = *base;
  v.owns_buffer = FALSE;
  v.offset += (guint64) first * sizeof (float);
  v.n_dims = n_dims;
  v.ne[0] = ne0;
  v.ne[1] = ne1;
  v.ne[2] = ne2;
  v.ne[3] = ne3;
  return v;
}

static OlTensor
span_at (const OlTensor *base, gint64 first, guint n_dims, gint64 ne0, gint64 ne1, gint64 ne2)
{
  return view_at (base, first, n_dims, ne0, ne1, ne2, 1);
}

static OlTensor
span (const OlTensor *base, guint n_dims, gint64 ne0, gint64 ne1, gint64 ne2)
{
  return view_at (base, 0, n_dims, ne0, ne1, ne2, 1);
}

/* A weight by its formatted name. The loader checked every weight, so a missing one is a programming error. */
static const OlTensor *
weight (OlEncoder *enc, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static const OlTensor *
weight (OlEncoder *enc, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  const OlTensor *t = ol_model_get_tensor (enc->model, name);
  if (t == NULL)
    g_error ("encoder: weight '%s' missing from a loaded model", name);
  return t;
}

static gboolean
image_like (OlModality m)
{
  return m == OL_MODALITY_IMAGE || m == OL_MODALITY_VIDEO || m == OL_MODALITY_DEPTH || m == OL_MODALITY_NORMAL;
}

/* ---- sizes ---- */

static gint64
input_elements (const OlModelInfo *in, OlModality m)
{
  const OlModalityInfo *mi = &in->modality[m];
  gint64 n = 1;
  for (guint d = 0; d < mi->n_input_dims; d++)
    n *= mi->input_shape[d];
  return n;
}

/* Elements of the input buffer: the model input, the fMRI row padded to the weight's width. */
static gint64
input_buffer_elements (OlEncoder *enc, OlModality m)
{
  if (m == OL_MODALITY_FMRI)
    return weight (enc, "mod.fmri.linear.weight")->ne[0];
  return input_elements (enc->info, m);
}

/* Point groups projected per matmul: the [W, groups · group_size] projections of the released model
 * (134 MB) would exceed some devices' storage-buffer range, so they are made and max-pooled in chunks. */
static gint64
point_chunk (const OlModelInfo *in)
{
  const OlModalityInfo *mi = &in->modality[OL_MODALITY_POINT];
  gint64 bytes = (gint64) in->clip_dim * mi->group_size * sizeof (float);
  return CLAMP ((32 << 20) / bytes, 1, (gint64) mi->tokens);
}

static gint64
cols_elements (const OlModelInfo *in, OlModality m)
{
  const OlModalityInfo *mi = &in->modality[m];
  gint64 W = in->clip_dim, L = mi->tokens;
  if (image_like (m))
    return 3LL * in->patch_size * in->patch_size * L * mi->frames;
  switch (m) {
    case OL_MODALITY_AUDIO: return (gint64) mi->kernel[0] * mi->kernel[1] * L;
    case OL_MODALITY_IMU: return 6LL * mi->kernel[1] * L;
    case OL_MODALITY_POINT: return (6 * L + W * point_chunk (in)) * mi->group_size;
    case OL_MODALITY_FMRI: return W * L;
    default: g_assert_not_reached ();
  }
}

gsize
ol_encoder_tokens_size (OlEncoder *enc, OlModality m)
{
  g_return_val_if_fail (enc != NULL && m < OL_N_MODALITIES, 0);
  const OlModalityInfo *mi = &enc->info->modality[m];
  return (gsize) enc->info->clip_dim * mi->tokens * mi->frames;
}

gsize
ol_encoder_embeddings_size (OlEncoder *enc)
{
  g_return_val_if_fail (enc != NULL, 0);
  return (gsize) enc->info->dim * (enc->info->n_resample + 2);
}

/* ---- recording ---- */

static void
record_tokenize (OlEncoder *enc, OlGraph *g, OlModality m)
{
  const OlModelInfo *in = enc->info;
  const OlModalityInfo *mi = &in->modality[m];
  gint64 W = in->clip_dim, L = mi->tokens, F = mi->frames;
  OlTensor tok = span (enc->tokens, 3, W, L, F);
  if (image_like (m)) {
    gint64 P = in->patch_size, S = in->image_size;
    OlTensor x = view_at (enc->input, 0, 4, S, S, 3, F);
    OlTensor cols = span (enc->cols, 3, 3 * P * P, L, F);
    OlTensor w = ol_tensor_reshape (weight (enc, "clip.patch_embd.weight"), 2, (gint64[]) { 3 * P * P, W });
    ol_op_im2col (g, &cols, &x, P, P, P, P);
    ol_op_matmul (g, &tok, &cols, &w, NULL, FALSE);
    return;
  }
  switch (m) {
    case OL_MODALITY_AUDIO: {
      gint64 kh = mi->kernel[0], kw = mi->kernel[1];
      OlTensor x = span (enc->input, 3, mi->input_shape[2], mi->input_shape[1], 1);
      OlTensor cols = span (enc->cols, 2, kh * kw, L, 1);
      OlTensor w = ol_tensor_reshape (weight (enc, "mod.audio.conv.weight"), 2, (gint64[]) { kh * kw, W });
      ol_op_im2col (g, &cols, &x, kh, kw, mi->stride, mi->stride);
      ol_op_matmul (g, &tok, &cols, &w, weight (enc, "mod.audio.conv.bias"), FALSE);
      break;
    }
    case OL_MODALITY_IMU: {
      /* Conv1d over [6, T] is a 2-D convolution of a 6-channel image of height 1. */
      gint64 kw = mi->kernel[1];
      OlTensor x = span (enc->input, 3, mi->input_shape[1], 1, 6);
      OlTensor cols = span (enc->cols, 2, 6 * kw, L, 1);
      OlTensor w = ol_tensor_reshape (weight (enc, "mod.imu.conv.weight"), 2, (gint64[]) { 6 * kw, W });
      ol_op_im2col (g, &cols, &x, 1, kw, 1, 1);
      ol_op_matmul (g, &tok, &cols, &w, NULL, FALSE);
      break;
    }
    case OL_MODALITY_POINT: {
      /* Each group's neighbours gathered by index; the 1×1 conv is a linear map of their 6 features; max
       * over each group. */
      gint64 K = mi->group_size, chunk = point_chunk (in);
      OlTensor points = span (enc->input, 2, 6, mi->input_shape[0], 1);
      OlTensor x = span (enc->cols, 2, 6, L * K, 1);
      OlTensor tok2 = span (enc->tokens, 2, W, L, 1);
      ol_op_get_rows (g, &x, &points, enc->ids);
      for (gint64 g0 = 0; g0 < L; g0 += chunk) {
        gint64 c = MIN (chunk, L - g0);
        OlTensor xs = ol_tensor_rows (&x, g0 * K, c * K), ts = ol_tensor_rows (&tok2, g0, c);
        OlTensor y = span_at (enc->cols, 6 * L * K, 2, W, c * K, 1);
        ol_op_matmul (g, &y, &xs, weight (enc, "mod.point.conv.weight"), weight (enc, "mod.point.conv.bias"), FALSE);
        ol_op_group_max (g, &ts, &y, K);
      }
      break;
    }
    case OL_MODALITY_FMRI: {
      /* Linear to L·W outputs, then token t, channel c = y[c·L + t]: a transpose of y seen as [L, W]. */
      const OlTensor *w = weight (enc, "mod.fmri.linear.weight");
      OlTensor x = span (enc->input, 2, w->ne[0], 1, 1);
      OlTensor y = span (enc->cols, 2, L * W, 1, 1);
      OlTensor yt = span (enc->cols, 2, L, W, 1);
      OlTensor t2 = span (enc->tokens, 2, W, L, 1);
      ol_op_matmul (g, &y, &x, w, weight (enc, "mod.fmri.linear.bias"), FALSE);
      ol_op_transpose (g, &t2, &yt);
      break;
    }
    default:
      g_assert_not_reached ();
  }
}

/* One pre-LN CLIP block on x [W, n, F]: packed QKV as three row ranges of one weight, QuickGELU MLP. */
static void
record_clip_block (OlEncoder *enc, OlGraph *g, guint l, const OlTensor *x, gint64 n, gint64 F)
{
  const OlModelInfo *in = enc->info;
  gint64 W = in->clip_dim, M = in->clip_ffn_dim;
  float eps = in->clip_eps;
  OlTensor h = span (enc->h, 3, W, n, F), a = span (enc->a, 3, W, n, F), f = span (enc->ffn, 3, M, n, F);
  OlTensor qkv[3] = { span (enc->q, 3, W, n, F), span (enc->k, 3, W, n, F), span (enc->v, 3, W, n, F) };
  const OlTensor *qkv_w = weight (enc, "clip.blk.%u.attn_qkv.weight", l);
  const OlTensor *qkv_b = weight (enc, "clip.blk.%u.attn_qkv.bias", l);

  ol_op_layer_norm (g, &h, x, weight (enc, "clip.blk.%u.ln1.weight", l), weight (enc, "clip.blk.%u.ln1.bias", l), eps);
  for (int i = 0; i < 3; i++) {
    OlTensor wi = ol_tensor_rows (qkv_w, i * W, W);
    OlTensor bi = span_at (qkv_b, i * W, 1, W, 1, 1);
    ol_op_matmul (g, &qkv[i], &h, &wi, &bi, FALSE);
  }
  guint heads = in->clip_heads;
  ol_op_attention (g, &a, &qkv[0], &qkv[1], &qkv[2], heads, heads, 1.0f / sqrtf ((float) (W / heads)), FALSE, NULL);
  ol_op_matmul (g, x, &a, weight (enc, "clip.blk.%u.attn_out.weight", l), weight (enc, "clip.blk.%u.attn_out.bias", l),
                TRUE);
  ol_op_layer_norm (g, &h, x, weight (enc, "clip.blk.%u.ln2.weight", l), weight (enc, "clip.blk.%u.ln2.bias", l), eps);
  ol_op_matmul (g, &f, &h, weight (enc, "clip.blk.%u.ffn_up.weight", l), weight (enc, "clip.blk.%u.ffn_up.bias", l),
                FALSE);
  ol_op_quick_gelu (g, &f, &f);
  ol_op_matmul (g, x, &f, weight (enc, "clip.blk.%u.ffn_down.weight", l),
                weight (enc, "clip.blk.%u.ffn_down.bias", l), TRUE);
}

/* One UPM block on u [W, S]: LLaMA-style (RMSNorm, SwiGLU) without RoPE or mask. */
static void
record_upm_block (OlEncoder *enc, OlGraph *g, guint e, guint l, const OlTensor *u, gint64 S)
{
  const OlModelInfo *in = enc->info;
  gint64 W = in->upm_dim, U = in->upm_ffn_dim;
  float eps = in->upm_eps;
  OlTensor h = span (enc->h, 2, W, S, 1), a = span (enc->a, 2, W, S, 1);
  OlTensor q = span (enc->q, 2, W, S, 1), k = span (enc->k, 2, W, S, 1), v = span (enc->v, 2, W, S, 1);
  OlTensor gate = span (enc->ffn, 2, U, S, 1), upv = span_at (enc->ffn, U * S, 2, U, S, 1);
#define BW(s) weight (enc, "upm.expert.%u.blk.%u." s, e, l)
  ol_op_rms_norm (g, &h, u, BW ("attn_norm.weight"), eps);
  ol_op_matmul (g, &q, &h, BW ("attn_q.weight"), NULL, FALSE);
  ol_op_matmul (g, &k, &h, BW ("attn_k.weight"), NULL, FALSE);
  ol_op_matmul (g, &v, &h, BW ("attn_v.weight"), NULL, FALSE);
  guint heads = in->upm_heads;
  ol_op_attention (g, &a, &q, &k, &v, heads, heads, 1.0f / sqrtf ((float) (W / heads)), FALSE, NULL);
  ol_op_matmul (g, u, &a, BW ("attn_output.weight"), NULL, TRUE);
  ol_op_rms_norm (g, &h, u, BW ("ffn_norm.weight"), eps);
  ol_op_matmul (g, &gate, &h, BW ("ffn_gate.weight"), NULL, FALSE);
  ol_op_matmul (g, &upv, &h, BW ("ffn_up.weight"), NULL, FALSE);
  ol_op_swiglu (g, &gate, &gate, &upv);
  ol_op_matmul (g, u, &gate, BW ("ffn_down.weight"), NULL, TRUE);
#undef BW
}

static void
record_encode (OlEncoder *enc, OlGraph *g, OlModality m)
{
  const OlModelInfo *in = enc->info;
  const OlModalityInfo *mi = &in->modality[m];
  const char *mn = ol_modality_name (m);
  gint64 W = in->clip_dim, L = mi->tokens, F = mi->frames, n = L + 1, R = in->n_resample, S = R + n;
  float eps = in->clip_eps;

  /* CLIP input: per frame the class token, then the tokens; plus the positional embedding. */
  OlTensor x = span (enc->x, 3, W, n, F);
  OlTensor tok = span (enc->tokens, 2, W, L * F, 1);
  const OlTensor *cls = weight (enc, "clip.class_embd");
  for (gint64 f = 0; f < F; f++) {
    OlTensor row = ol_tensor_rows (&x, f * n, 1), rows = ol_tensor_rows (&x, f * n + 1, L);
    OlTensor src = ol_tensor_rows (&tok, f * L, L);
    ol_op_copy (g, &row, cls);
    ol_op_copy (g, &rows, &src);
  }
  ol_op_add (g, &x, &x, image_like (m) ? weight (enc, "clip.pos_embd") : weight (enc, "mod.%s.pos_embd", mn));
  ol_op_layer_norm (g, &x, &x, weight (enc, "clip.pre_ln.weight"), weight (enc, "clip.pre_ln.bias"), eps);
  for (guint l = 0; l < in->clip_layers; l++)
    record_clip_block (enc, g, l, &x, n, F);
  OlTensor clip = span (enc->clip, 2, W, n, 1);
  if (F == 1) {
    ol_op_layer_norm (g, &clip, &x, weight (enc, "clip.post_ln.weight"), weight (enc, "clip.post_ln.bias"), eps);
  } else {
    OlTensor h = span (enc->h, 3, W, n, F);
    ol_op_layer_norm (g, &h, &x, weight (enc, "clip.post_ln.weight"), weight (enc, "clip.post_ln.bias"), eps);
    ol_op_mean_frames (g, &clip, &h);
  }

  /* UPM input: the resample tokens as they are, then clip_proj1 (linear + LayerNorm) of every CLIP row. */
  OlTensor seq = span (enc->seq, 2, W, S, 1), u = span (enc->up, 2, W, S, 1);
  OlTensor head = ol_tensor_rows (&seq, 0, R), proj = ol_tensor_rows (&seq, R, n);
  ol_op_copy (g, &head, weight (enc, "mod.%s.resample_tokens", mn));
  ol_op_matmul (g, &proj, &clip, weight (enc, "mod.%s.proj1.weight", mn), weight (enc, "mod.%s.proj1.bias", mn), FALSE);
  ol_op_layer_norm (g, &proj, &proj, weight (enc, "mod.%s.proj1_norm.weight", mn),
                    weight (enc, "mod.%s.proj1_norm.bias", mn), eps);

  /* Every expert runs the whole sequence; its first R rows, scaled row-wise by the routing weight, add up. */
  OlTensor mix = span (enc->mix, 2, W, R, 1), ur = ol_tensor_rows (&u, 0, R);
  for (guint e = 0; e < in->upm_experts; e++) {
    ol_op_copy (g, &u, &seq);
    for (guint l = 0; l < in->upm_layers; l++)
      record_upm_block (enc, g, e, l, &u, S);
    if (e == 0) {
      ol_op_mul (g, &mix, &ur, enc->mod[m].route[e]);
    } else {
      ol_op_mul (g, &ur, &ur, enc->mod[m].route[e]);
      ol_op_add (g, &mix, &mix, &ur);
    }
  }

  /* clip_proj2 (linear + LayerNorm) between the start and end tags. */
  OlTensor out = span (enc->out, 2, in->dim, R + 2, 1);
  OlTensor first = ol_tensor_rows (&out, 0, 1), body = ol_tensor_rows (&out, 1, R), last = ol_tensor_rows (&out, R + 1, 1);
  ol_op_copy (g, &first, weight (enc, "mod.%s.start_tag", mn));
  ol_op_matmul (g, &body, &mix, weight (enc, "mod.%s.proj2.weight", mn), weight (enc, "mod.%s.proj2.bias", mn), FALSE);
  ol_op_layer_norm (g, &body, &body, weight (enc, "mod.%s.proj2_norm.weight", mn),
                    weight (enc, "mod.%s.proj2_norm.bias", mn), eps);
  ol_op_copy (g, &last, weight (enc, "mod.%s.end_tag", mn));
}

typedef enum { STAGE_TOKENIZE, STAGE_ENCODE, STAGE_FULL } Stage;

/* The recording of a stage for a modality, made on first use. */
static OlGraph *
stage_graph (OlEncoder *enc, OlModality m, Stage stage, GError **error)
{
  ModalityState *st = &enc->mod[m];
  OlGraph **slot = stage == STAGE_TOKENIZE ? &st->tokenize : stage == STAGE_ENCODE ? &st->encode : &st->full;
  if (*slot != NULL)
    return *slot;
  OlGraph *g = ol_graph_new (enc->dev, error);
  if (g == NULL)
    return NULL;
  ol_graph_begin (g);
  if (stage != STAGE_ENCODE)
    record_tokenize (enc, g, m);
  if (stage != STAGE_TOKENIZE)
    record_encode (enc, g, m);
  if (!ol_graph_end (g, error)) {
    g_prefix_error (error, "encoder (%s): ", ol_modality_name (m));
    ol_graph_free (g);
    return NULL;
  }
  *slot = g;
  return g;
}

/* ---- routing ---- */

/* The router MLP on the resample tokens (fc1, exact GELU, fc2) on the device, then sigmoid and the
 * normalisation over experts on the host: input-independent, so computed once per modality. */
static gboolean
compute_routing (OlEncoder *enc, OlModality m, GError **error)
{
  const OlModelInfo *in = enc->info;
  const char *mn = ol_modality_name (m);
  ModalityState *st = &enc->mod[m];
  gint64 W = in->clip_dim, R = in->n_resample, E = in->upm_experts;
  const OlTensor *fc1 = weight (enc, "mod.%s.router.fc1.weight", mn);
  gint64 H = fc1->ne[1];
  gboolean ok = FALSE;
  OlGraph *g = NULL;
  OlTensor *hid = ol_tensor_new (enc->dev, OL_TYPE_F32, 2, (gint64[]) { H, R }, OL_MEMORY_DEVICE, error);
  OlTensor *logits = hid ? ol_tensor_new (enc->dev, OL_TYPE_F32, 2, (gint64[]) { E, R }, OL_MEMORY_DEVICE, error) : NULL;
  g_autofree float *z = g_new (float, E * R);
  g_autofree float *rows = g_new (float, W * R);
  if (logits == NULL || (g = ol_graph_new (enc->dev, error)) == NULL)
    goto out;
  ol_graph_begin (g);
  ol_op_matmul (g, hid, weight (enc, "mod.%s.resample_tokens", mn), fc1, weight (enc, "mod.%s.router.fc1.bias", mn),
                FALSE);
  ol_op_gelu (g, hid, hid);
  ol_op_matmul (g, logits, hid, weight (enc, "mod.%s.router.fc2.weight", mn),
                weight (enc, "mod.%s.router.fc2.bias", mn), FALSE);
  if (!ol_graph_end (g, error) || !ol_graph_run (g, error) || !ol_tensor_read (logits, z, error))
    goto out;
  st->routing = g_new (float, E * R);
  for (gint64 r = 0; r < R; r++) {
    float sum = 0;
    for (gint64 e = 0; e < E; e++) {
      st->routing[r * E + e] = 1.0f / (1.0f + expf (-z[r * E + e]));
      sum += st->routing[r * E + e];
    }
    for (gint64 e = 0; e < E; e++)
      st->routing[r * E + e] /= sum;
  }
  st->route = g_new0 (OlTensor *, E);
  for (gint64 e = 0; e < E; e++) {
    for (gint64 r = 0; r < R; r++)
      for (gint64 c = 0; c < W; c++)
        rows[r * W + c] = st->routing[r * E + e];
    st->route[e] = ol_tensor_new (enc->dev, OL_TYPE_F32, 2, (gint64[]) { W, R }, OL_MEMORY_DEVICE, error);
    if (st->route[e] == NULL || !ol_tensor_write (st->route[e], rows, error))
      goto out;
  }
  ok = TRUE;
out:
  if (!ok)
    g_prefix_error (error, "encoder (%s routing): ", mn);
  ol_graph_free (g);
  ol_tensor_free (hid);
  ol_tensor_free (logits);
  return ok;
}

/* ---- lifetime ---- */

void
ol_encoder_free (OlEncoder *enc)
{
  if (enc == NULL)
    return;
  for (int m = 0; m < OL_N_MODALITIES; m++) {
    ModalityState *st = &enc->mod[m];
    g_clear_pointer (&st->tokenize, ol_graph_free);
    g_clear_pointer (&st->encode, ol_graph_free);
    g_clear_pointer (&st->full, ol_graph_free);
    if (st->route)
      for (guint e = 0; e < enc->info->upm_experts; e++)
        ol_tensor_free (st->route[e]);
    g_free (st->route);
    g_free (st->routing);
  }
  OlTensor **bufs[] = { &enc->input, &enc->ids, &enc->tokens, &enc->cols, &enc->x, &enc->h, &enc->q, &enc->k, &enc->v, &enc->a,
                        &enc->ffn, &enc->clip, &enc->seq, &enc->up, &enc->mix, &enc->out };
  for (gsize i = 0; i < G_N_ELEMENTS (bufs); i++)
    g_clear_pointer (bufs[i], ol_tensor_free);
  g_free (enc->fps);
  g_free (enc->knn);
  g_free (enc);
}

static OlTensor *
flat (OlEncoder *enc, gint64 n, OlMemoryKind kind, GError **error)
{
  return ol_tensor_new (enc->dev, OL_TYPE_F32, 1, (gint64[]) { MAX (n, 1) }, kind, error);
}

OlEncoder *
ol_encoder_new (OlModel *model, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  const OlModelInfo *in = ol_model_get_info (model);
  if (!in->has_encoder) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "%s: the model has no encoder (architecture '%s')",
                 ol_model_get_path (model), in->architecture);
    return NULL;
  }
  OlEncoder *enc = g_new0 (OlEncoder, 1);
  enc->model = model;
  enc->dev = ol_model_get_device (model);
  enc->info = in;
  enc->last = -1;

  gint64 W = in->clip_dim, R = in->n_resample;
  gint64 n_input = 0, n_tokens = 0, n_cols = 0, n_act = 0, n_ffn = 0, n_clip = 0, n_seq = 0, max_points = 0;
  for (int m = 0; m < OL_N_MODALITIES; m++) {
    const OlModalityInfo *mi = &in->modality[m];
    if (!mi->present)
      continue;
    gint64 n = mi->tokens + 1, F = mi->frames, S = R + n;
    n_input = MAX (n_input, input_buffer_elements (enc, m));
    n_tokens = MAX (n_tokens, W * mi->tokens * F);
    n_cols = MAX (n_cols, cols_elements (in, m));
    n_act = MAX (n_act, W * MAX (n * F, S));
    n_ffn = MAX (n_ffn, MAX ((gint64) in->clip_ffn_dim * n * F, 2LL * in->upm_ffn_dim * S));
    n_clip = MAX (n_clip, W * n);
    n_seq = MAX (n_seq, W * S);
    if (m == OL_MODALITY_POINT)
      max_points = (gint64) mi->tokens * mi->group_size;
  }
  if ((enc->input = flat (enc, n_input, OL_MEMORY_HOST, error)) == NULL ||
      (enc->tokens = flat (enc, n_tokens, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->cols = flat (enc, n_cols, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->x = flat (enc, n_act, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->h = flat (enc, n_act, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->q = flat (enc, n_act, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->k = flat (enc, n_act, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->v = flat (enc, n_act, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->a = flat (enc, n_act, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->ffn = flat (enc, n_ffn, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->clip = flat (enc, n_clip, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->seq = flat (enc, n_seq, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->up = flat (enc, n_seq, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->mix = flat (enc, W * R, OL_MEMORY_DEVICE, error)) == NULL ||
      (enc->out = flat (enc, (gint64) in->dim * (R + 2), OL_MEMORY_DEVICE, error)) == NULL)
    goto fail;
  if (max_points > 0) {
    enc->fps = g_new (gint32, in->modality[OL_MODALITY_POINT].tokens);
    enc->knn = g_new (gint32, max_points);
    enc->ids = ol_tensor_new (enc->dev, OL_TYPE_I32, 1, (gint64[]) { max_points }, OL_MEMORY_HOST, error);
    if (enc->ids == NULL)
      goto fail;
  }
  for (int m = 0; m < OL_N_MODALITIES; m++)
    if (in->modality[m].present && !compute_routing (enc, m, error))
      goto fail;
  return enc;

fail:
  g_prefix_error (error, "encoder: ");
  ol_encoder_free (enc);
  return NULL;
}

/* ---- running ---- */

static gboolean
check_modality (OlEncoder *enc, OlModality m, GError **error)
{
  if (m >= OL_N_MODALITIES || !enc->info->modality[m].present) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "the model has no %s modality",
                 m < OL_N_MODALITIES ? ol_modality_name (m) : "such");
    return FALSE;
  }
  return TRUE;
}

/* Checks the model input and writes what the tokenizer graph reads: the input itself (the fMRI row padded
 * with zeros to the weight's width) and for points the neighbour indices of every group, searched on the
 * host (furthest point sampling is sequential). */
static gboolean
upload_input (OlEncoder *enc, OlModality m, const float *input, GError **error)
{
  const OlModalityInfo *mi = &enc->info->modality[m];
  gint64 n = input_elements (enc->info, m);
  g_autofree char *what = g_strdup_printf ("%s input", ol_modality_name (m));
  if (!ol_check_finite (input, n, what, error))
    return FALSE;
  if (m == OL_MODALITY_POINT) {
    OlPointParams params = { .n_points = mi->input_shape[0], .n_groups = mi->tokens, .group_size = mi->group_size };
    if (!ol_point_group_indices (input, &params, enc->fps, enc->knn, error) ||
        !ol_tensor_write (enc->ids, enc->knn, error))
      return FALSE;
  }
  gint64 width = input_buffer_elements (enc, m);
  OlTensor t = span (enc->input, 1, width, 1, 1);
  if (width == n)
    return ol_tensor_write (&t, input, error);
  g_autofree float *padded = g_new0 (float, width);
  memcpy (padded, input, n * sizeof (float));
  return ol_tensor_write (&t, padded, error);
}

gboolean
ol_encoder_tokenize (OlEncoder *enc, OlModality m, const float *input, float *tokens, GError **error)
{
  g_return_val_if_fail (enc != NULL && input != NULL && tokens != NULL, FALSE);
  OlGraph *g;
  if (!check_modality (enc, m, error) || !upload_input (enc, m, input, error) ||
      (g = stage_graph (enc, m, STAGE_TOKENIZE, error)) == NULL || !ol_graph_run (g, error))
    return FALSE;
  OlTensor t = span (enc->tokens, 1, ol_encoder_tokens_size (enc, m), 1, 1);
  return ol_tensor_read (&t, tokens, error);
}

static gboolean
read_embeddings (OlEncoder *enc, OlModality m, float *embeddings, GError **error)
{
  enc->last = m;
  OlTensor t = span (enc->out, 1, ol_encoder_embeddings_size (enc), 1, 1);
  return ol_tensor_read (&t, embeddings, error);
}

gboolean
ol_encoder_encode (OlEncoder *enc, OlModality m, const float *tokens, float *embeddings, GError **error)
{
  g_return_val_if_fail (enc != NULL && tokens != NULL && embeddings != NULL, FALSE);
  if (!check_modality (enc, m, error))
    return FALSE;
  gsize n = ol_encoder_tokens_size (enc, m);
  g_autofree char *what = g_strdup_printf ("%s tokens", ol_modality_name (m));
  OlTensor t = span (enc->tokens, 1, n, 1, 1);
  OlGraph *g;
  if (!ol_check_finite (tokens, n, what, error) || !ol_tensor_write (&t, tokens, error) ||
      (g = stage_graph (enc, m, STAGE_ENCODE, error)) == NULL || !ol_graph_run (g, error))
    return FALSE;
  return read_embeddings (enc, m, embeddings, error);
}

gboolean
ol_encoder_run (OlEncoder *enc, OlModality m, const float *input, guint n_dims, const gint64 *shape,
                float *embeddings, GError **error)
{
  g_return_val_if_fail (enc != NULL && input != NULL && embeddings != NULL && (shape != NULL || n_dims == 0), FALSE);
  if (!check_modality (enc, m, error) || !ol_encoder_check_input_shape (enc, m, n_dims, shape, error))
    return FALSE;
  OlGraph *g;
  if (!upload_input (enc, m, input, error) || (g = stage_graph (enc, m, STAGE_FULL, error)) == NULL ||
      !ol_graph_run (g, error))
    return FALSE;
  return read_embeddings (enc, m, embeddings, error);
}

gboolean
ol_encoder_check_input_shape (OlEncoder *enc, OlModality m, guint n_dims, const gint64 *shape, GError **error)
{
  g_return_val_if_fail (enc != NULL && (shape != NULL || n_dims == 0), FALSE);
  if (!check_modality (enc, m, error))
    return FALSE;
  const OlModalityInfo *mi = &enc->info->modality[m];
  /* fMRI also comes as a bare row of voxels. */
  guint skip = m == OL_MODALITY_FMRI && n_dims == mi->n_input_dims - 1 ? 1 : 0;
  gboolean ok = n_dims + skip == mi->n_input_dims;
  for (guint d = 0; ok && d < n_dims; d++)
    ok = shape[d] == mi->input_shape[d + skip];
  if (!ok) {
    GString *got = g_string_new ("["), *want = g_string_new ("[");
    for (guint d = 0; d < n_dims; d++)
      g_string_append_printf (got, "%s%" G_GINT64_FORMAT, d ? ", " : "", shape[d]);
    for (guint d = 0; d < mi->n_input_dims; d++)
      g_string_append_printf (want, "%s%u", d ? ", " : "", mi->input_shape[d]);
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "%s input has shape %s], the model takes %s]",
                 ol_modality_name (m), got->str, want->str);
    g_string_free (got, TRUE);
    g_string_free (want, TRUE);
  }
  return ok;
}

gboolean
ol_encoder_get_clip_output (OlEncoder *enc, float *out, GError **error)
{
  g_return_val_if_fail (enc != NULL && out != NULL, FALSE);
  if (enc->last < 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "no encode has run yet");
    return FALSE;
  }
  OlTensor t = span (enc->clip, 1, (gint64) enc->info->clip_dim * (enc->info->modality[enc->last].tokens + 1), 1, 1);
  return ol_tensor_read (&t, out, error);
}

const float *
ol_encoder_get_routing (OlEncoder *enc, OlModality m)
{
  g_return_val_if_fail (enc != NULL && m < OL_N_MODALITIES, NULL);
  return enc->mod[m].routing;
}

/* Model loading: GGUF metadata → hyperparameters, tensors checked against them and uploaded to the device. */
#include "model.h"
#include "gguf.h"
#include "tokenizer.h"

#include <string.h>

struct _OlModel {
  OlDevice *dev;
  char *path;
  OlModelInfo info;
  OlTokenizer *tokenizer;
  GHashTable *tensors;   /* name -> OlTensor* (owned) */
};

static const char *const modality_names[OL_N_MODALITIES] = {
  "image", "video", "audio", "point", "depth", "normal", "fmri", "imu",
};
/* The official code's names for depth and normal maps, accepted as aliases. */
static const char *const checkpoint_names[OL_N_MODALITIES] = {
  "image", "video", "audio", "point", "rgbd", "rgbn", "fmri", "imu",
};

const char *
ol_modality_name (OlModality m)
{
  g_return_val_if_fail (m < OL_N_MODALITIES, "unknown");
  return modality_names[m];
}

gboolean
ol_modality_from_name (const char *name, OlModality *m)
{
  for (int i = 0; i < OL_N_MODALITIES; i++) {
    if (g_ascii_strcasecmp (name, modality_names[i]) == 0 || g_ascii_strcasecmp (name, checkpoint_names[i]) == 0) {
      *m = i;
      return TRUE;
    }
  }
  return FALSE;
}

static void
info_clear (OlModelInfo *info)
{
  g_free (info->architecture);
  g_free (info->name);
  g_free (info->prompt_template);
  for (int i = 0; i < OL_N_MODALITIES; i++)
    g_free (info->modality[i].default_prompt);
  memset (info, 0, sizeof (*info));
}

void
ol_model_free (OlModel *model)
{
  if (model == NULL)
    return;
  if (model->tensors)
    g_hash_table_destroy (model->tensors);
  g_clear_pointer (&model->tokenizer, ol_tokenizer_free);
  info_clear (&model->info);
  g_free (model->path);
  g_free (model);
}

const OlModelInfo *
ol_model_get_info (const OlModel *model)
{
  return &model->info;
}

OlDevice *
ol_model_get_device (const OlModel *model)
{
  return model->dev;
}

OlTokenizer *
ol_model_get_tokenizer (const OlModel *model)
{
  return model->tokenizer;
}

const char *
ol_model_get_path (const OlModel *model)
{
  return model->path;
}

char *
ol_model_default_path (void)
{
  const char *env = g_getenv ("ONELLM_MODEL");
  if (env != NULL && *env != '\0')
    return g_strdup (env);
  if (g_file_test (OL_BUILD_MODEL, G_FILE_TEST_IS_REGULAR))
    return g_strdup (OL_BUILD_MODEL);
  return g_strdup (OL_INSTALLED_MODEL);
}

gboolean
ol_model_has_modality (const OlModel *model, OlModality m)
{
  return m < OL_N_MODALITIES && model->info.modality[m].present;
}

const OlTensor *
ol_model_get_tensor (const OlModel *model, const char *name)
{
  return g_hash_table_lookup (model->tensors, name);
}

/* Metadata readers that accept any integer encoding the writers in the wild use. */
static gboolean
get_uint (const OlGguf *gguf, const char *key, guint *out, GError **error)
{
  OlGgufValue v;
  if (!ol_gguf_get_value (gguf, key, &v, error))
    return FALSE;
  guint64 x = 0;
  gint64 sx = 0;
  gboolean is_signed = FALSE;
  switch (v.type) {
    case OL_GGUF_TYPE_UINT8: x = v.data[0]; break;
    case OL_GGUF_TYPE_UINT16: x = v.data[0] | (v.data[1] << 8); break;
    case OL_GGUF_TYPE_UINT32: { guint32 t; memcpy (&t, v.data, 4); x = GUINT32_FROM_LE (t); } break;
    case OL_GGUF_TYPE_UINT64: { guint64 t; memcpy (&t, v.data, 8); x = GUINT64_FROM_LE (t); } break;
    case OL_GGUF_TYPE_INT32: { gint32 t; memcpy (&t, v.data, 4); sx = GINT32_FROM_LE (t); is_signed = TRUE; } break;
    case OL_GGUF_TYPE_INT64: { gint64 t; memcpy (&t, v.data, 8); sx = GINT64_FROM_LE (t); is_signed = TRUE; } break;
    default:
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "metadata '%s' is a %s, expected an integer", key,
                   ol_gguf_type_name (v.type));
      return FALSE;
  }
  if (is_signed) {
    if (sx < 0) {
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "metadata '%s' is negative", key);
      return FALSE;
    }
    x = sx;
  }
  if (x > G_MAXINT32) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "metadata '%s' = %" G_GUINT64_FORMAT " is out of range",
                 key, x);
    return FALSE;
  }
  *out = (guint) x;
  return TRUE;
}

static gboolean
get_uint_or (const OlGguf *gguf, const char *key, guint fallback, guint *out, GError **error)
{
  if (!ol_gguf_has_key (gguf, key)) {
    *out = fallback;
    return TRUE;
  }
  return get_uint (gguf, key, out, error);
}

static gboolean
get_float_or (const OlGguf *gguf, const char *key, float fallback, float *out, GError **error)
{
  if (!ol_gguf_has_key (gguf, key)) {
    *out = fallback;
    return TRUE;
  }
  return ol_gguf_get_f32 (gguf, key, out, error);
}

static gboolean
positive (const char *what, guint v, GError **error)
{
  if (v == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "hyperparameter %s is 0", what);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_llm_info (const OlGguf *gguf, OlModelInfo *in, GError **error)
{
  const char *arch = in->architecture;
  char key[128];
#define KEY(suffix) (g_snprintf (key, sizeof (key), "%s." suffix, arch), key)
  if (!get_uint (gguf, KEY ("embedding_length"), &in->dim, error) ||
      !get_uint (gguf, KEY ("block_count"), &in->n_layers, error) ||
      !get_uint (gguf, KEY ("feed_forward_length"), &in->ffn_dim, error) ||
      !get_uint (gguf, KEY ("attention.head_count"), &in->n_heads, error) ||
      !get_uint_or (gguf, KEY ("attention.head_count_kv"), in->n_heads, &in->n_kv_heads, error) ||
      !get_uint_or (gguf, KEY ("context_length"), 2048, &in->context_length, error) ||
      !ol_gguf_get_f32 (gguf, KEY ("attention.layer_norm_rms_epsilon"), &in->norm_eps, error) ||
      !get_float_or (gguf, KEY ("rope.freq_base"), 10000.0f, &in->rope_theta, error))
    return FALSE;
#undef KEY
  if (!positive ("embedding_length", in->dim, error) || !positive ("block_count", in->n_layers, error) ||
      !positive ("attention.head_count", in->n_heads, error) ||
      !positive ("attention.head_count_kv", in->n_kv_heads, error) || !positive ("context_length", in->context_length, error))
    return FALSE;
  if (in->dim % in->n_heads != 0 || in->n_heads % in->n_kv_heads != 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%u heads do not divide width %u or %u KV heads",
                 in->n_heads, in->dim, in->n_kv_heads);
    return FALSE;
  }
  in->head_dim = in->dim / in->n_heads;
  return TRUE;
}

static gboolean
read_encoder_info (const OlGguf *gguf, OlModelInfo *in, GError **error)
{
  if (!get_uint (gguf, "onellm.clip.embedding_length", &in->clip_dim, error) ||
      !get_uint (gguf, "onellm.clip.block_count", &in->clip_layers, error) ||
      !get_uint (gguf, "onellm.clip.attention.head_count", &in->clip_heads, error) ||
      !get_uint (gguf, "onellm.clip.feed_forward_length", &in->clip_ffn_dim, error) ||
      !get_uint_or (gguf, "onellm.clip.patch_size", 14, &in->patch_size, error) ||
      !get_uint_or (gguf, "onellm.clip.image_size", 224, &in->image_size, error) ||
      !get_float_or (gguf, "onellm.clip.attention.layer_norm_epsilon", 1e-5f, &in->clip_eps, error) ||
      !get_uint (gguf, "onellm.upm.expert_count", &in->upm_experts, error) ||
      !get_uint (gguf, "onellm.upm.block_count", &in->upm_layers, error) ||
      !get_uint_or (gguf, "onellm.upm.embedding_length", in->clip_dim, &in->upm_dim, error) ||
      !get_uint (gguf, "onellm.upm.attention.head_count", &in->upm_heads, error) ||
      !get_uint (gguf, "onellm.upm.feed_forward_length", &in->upm_ffn_dim, error) ||
      !get_uint_or (gguf, "onellm.upm.resample_token_count", 30, &in->n_resample, error) ||
      !get_float_or (gguf, "onellm.upm.attention.layer_norm_rms_epsilon", 1e-5f, &in->upm_eps, error))
    return FALSE;
  if (!positive ("clip.embedding_length", in->clip_dim, error) || !positive ("clip.attention.head_count", in->clip_heads, error) ||
      !positive ("clip.patch_size", in->patch_size, error) || !positive ("upm.expert_count", in->upm_experts, error) ||
      !positive ("upm.attention.head_count", in->upm_heads, error) || !positive ("upm.resample_token_count", in->n_resample, error))
    return FALSE;
  if (in->clip_dim % in->clip_heads != 0 || in->upm_dim % in->upm_heads != 0 || in->upm_dim != in->clip_dim ||
      in->image_size % in->patch_size != 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "inconsistent encoder hyperparameters (CLIP width %u, "
                 "%u heads; UPM width %u, %u heads; image %u, patch %u)", in->clip_dim, in->clip_heads, in->upm_dim,
                 in->upm_heads, in->image_size, in->patch_size);
    return FALSE;
  }
  return TRUE;
}

/* The shapes of spec §2.1 from the per-modality metadata and the tokenizer weights, so that reduced
 * models with other sizes load the same way. */
static gboolean
read_modalities (OlModel *model, const OlGguf *gguf, GError **error)
{
  OlModelInfo *in = &model->info;
  const char *const *names;
  gsize n;
  if (!ol_gguf_get_string_array (gguf, "onellm.modalities", &names, &n, error))
    return FALSE;
  for (gsize i = 0; i < n; i++) {
    OlModality m;
    if (!ol_modality_from_name (names[i], &m)) {
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "unknown modality '%s'", names[i]);
      return FALSE;
    }
    OlModalityInfo *mi = &in->modality[m];
    const char *mn = modality_names[m];
    char key[128];
    guint token_count, default_frames = m == OL_MODALITY_VIDEO ? 15 : (m == OL_MODALITY_DEPTH || m == OL_MODALITY_NORMAL) ? 2 : 1;
    const char *prompt = NULL;
    mi->present = TRUE;
#define MKEY(s) (g_snprintf (key, sizeof (key), "onellm.modality.%s." s, mn), key)
    if (!get_uint_or (gguf, MKEY ("frames"), default_frames, &mi->frames, error) || !positive (key, mi->frames, error) ||
        !get_uint (gguf, MKEY ("token_count"), &token_count, error) || !positive (key, token_count, error) ||
        (ol_gguf_has_key (gguf, MKEY ("prompt")) && !ol_gguf_get_string (gguf, key, &prompt, error)))
      return FALSE;
    mi->tokens = token_count - 1;
    mi->default_prompt = g_strdup (prompt ? prompt : "Describe this.");
    switch (m) {
      case OL_MODALITY_IMAGE:
      case OL_MODALITY_VIDEO:
      case OL_MODALITY_DEPTH:
      case OL_MODALITY_NORMAL: {
        guint grid = in->image_size / in->patch_size;
        if (mi->tokens != grid * grid) {
          g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s has %u tokens, a %u-pixel image gives %u", mn,
                       mi->tokens, in->image_size, grid * grid);
          return FALSE;
        }
        guint shape[4] = { mi->frames, 3, in->image_size, in->image_size };
        mi->n_input_dims = m == OL_MODALITY_IMAGE ? 3 : 4;
        memcpy (mi->input_shape, m == OL_MODALITY_IMAGE ? shape + 1 : shape, mi->n_input_dims * sizeof (guint));
        break;
      }
      case OL_MODALITY_AUDIO: {
        guint mels, frames, stride;
        const OlGgufTensor *conv = ol_gguf_find_tensor (gguf, "mod.audio.conv.weight");
        if (!get_uint (gguf, MKEY ("mel_bins"), &mels, error) || !get_uint (gguf, MKEY ("target_length"), &frames, error) ||
            !get_uint (gguf, MKEY ("patch_stride"), &stride, error) || !positive (key, stride, error) ||
            !get_float_or (gguf, MKEY ("norm_mean"), -4.2677393f, &mi->norm_mean, error) ||
            !get_float_or (gguf, MKEY ("norm_std"), 9.1379948f, &mi->norm_std, error))
          return FALSE;
        if (conv == NULL || conv->n_dims != 4 || conv->ne[0] > frames || conv->ne[1] > mels ||
            ((mels - conv->ne[1]) / stride + 1) * ((frames - conv->ne[0]) / stride + 1) != mi->tokens)
          goto bad_tokenizer;
        mi->kernel[0] = conv->ne[1];
        mi->kernel[1] = conv->ne[0];
        mi->stride = stride;
        mi->n_input_dims = 3;
        mi->input_shape[0] = 1;
        mi->input_shape[1] = mels;
        mi->input_shape[2] = frames;
        break;
      }
      case OL_MODALITY_POINT: {
        guint points, group;
        if (!get_uint (gguf, MKEY ("point_count"), &points, error) || !get_uint (gguf, MKEY ("group_size"), &group, error) ||
            !positive (key, group, error))
          return FALSE;
        if (points < mi->tokens || points < group) {
          g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "point: %u points cannot make %u groups of %u", points,
                       mi->tokens, group);
          return FALSE;
        }
        mi->group_size = group;
        mi->n_input_dims = 2;
        mi->input_shape[0] = points;
        mi->input_shape[1] = 6;
        break;
      }
      case OL_MODALITY_IMU: {
        guint length;
        const OlGgufTensor *conv = ol_gguf_find_tensor (gguf, "mod.imu.conv.weight");
        if (!get_uint (gguf, MKEY ("length"), &length, error))
          return FALSE;
        if (conv == NULL || conv->n_dims != 3 || conv->ne[1] != 6 || length < conv->ne[0] ||
            length - conv->ne[0] + 1 != mi->tokens)
          goto bad_tokenizer;
        mi->kernel[0] = 1;
        mi->kernel[1] = conv->ne[0];
        mi->stride = 1;
        mi->n_input_dims = 2;
        mi->input_shape[0] = 6;
        mi->input_shape[1] = length;
        break;
      }
      case OL_MODALITY_FMRI: {
        guint voxels;
        if (!get_uint (gguf, MKEY ("voxel_count"), &voxels, error) || !positive (key, voxels, error))
          return FALSE;
        mi->n_input_dims = 2;
        mi->input_shape[0] = 1;
        mi->input_shape[1] = voxels;
        break;
      }
      default:
        g_assert_not_reached ();
    }
#undef MKEY
    continue;
bad_tokenizer:
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "the %s tokenizer weight is missing or does not match "
                 "the modality's metadata", mn);
    return FALSE;
  }
  return TRUE;
}

/* How each used tensor goes to the device. */
enum { UPLOAD_AS_IS = 1, UPLOAD_F32 };

/* Checks that name exists with the given GGML shape (0 = any) and a type the engine reads. */
static gboolean
expect (const OlGguf *gguf, GHashTable *seen, const char *name, gint64 ne0, gint64 ne1, gint64 ne2, gint64 ne3,
        GError **error)
{
  const OlGgufTensor *t = ol_gguf_find_tensor (gguf, name);
  if (t == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "tensor '%s' is missing", name);
    return FALSE;
  }
  const gint64 want[4] = { ne0, ne1, ne2, ne3 };
  for (int i = 0; i < 4; i++) {
    if (want[i] != 0 && t->ne[i] != want[i]) {
      g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE,
                   "tensor '%s' has shape [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT "], expected [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT "] (0 = any)", name, t->ne[0], t->ne[1], t->ne[2], t->ne[3],
                   ne0, ne1, ne2, ne3);
      return FALSE;
    }
  }
  if (t->n_dims > 2 && t->ne[2] * t->ne[3] > 1 && want[2] == 0 && want[3] == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "tensor '%s' has %u dimensions, expected 2", name, t->n_dims);
    return FALSE;
  }
  /* The tensors of more dimensions are convolution kernels, which the encoder reshapes to another row
   * length; the device layout of Q rows is per row (types.h). onellm-quantize leaves them as they are. */
  if (t->ne[2] * t->ne[3] > 1 && ol_type_has_device_layout (t->type)) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "tensor '%s' is %s with more than two dimensions",
                 name, ol_type_name (t->type));
    return FALSE;
  }
  g_hash_table_insert (seen, (gpointer) t->name, GINT_TO_POINTER (UPLOAD_AS_IS));
  return TRUE;
}

/* Vectors and embeddings that are added to activations or read by elementwise shaders are uploaded
 * as F32 whatever their stored type (converters store 2-D ones such as positional embeddings in the
 * weight type). */
static gboolean
expect_f32 (const OlGguf *gguf, GHashTable *seen, const char *name, gint64 ne0, gint64 ne1, GError **error)
{
  if (!expect (gguf, seen, name, ne0, ne1, 0, 0, error))
    return FALSE;
  const OlGgufTensor *t = ol_gguf_find_tensor (gguf, name);
  g_hash_table_insert (seen, (gpointer) t->name, GINT_TO_POINTER (UPLOAD_F32));
  return TRUE;
}

#define E(...) if (!expect (gguf, seen, __VA_ARGS__, error)) return FALSE
#define F(...) if (!expect_f32 (gguf, seen, __VA_ARGS__, error)) return FALSE

static gboolean
check_llm_tensors (const OlGguf *gguf, const OlModelInfo *in, GHashTable *seen, GError **error)
{
  char n[128];
  gint64 kv = (gint64) in->n_kv_heads * in->head_dim;
  E ("token_embd.weight", in->dim, in->n_vocab, 0, 0);
  F ("output_norm.weight", in->dim, 0);
  E ("output.weight", in->dim, in->n_vocab, 0, 0);
  for (guint l = 0; l < in->n_layers; l++) {
#define BLK(s) (g_snprintf (n, sizeof (n), "blk.%u." s, l), n)
    F (BLK ("attn_norm.weight"), in->dim, 0);
    E (BLK ("attn_q.weight"), in->dim, in->dim, 0, 0);
    E (BLK ("attn_k.weight"), in->dim, kv, 0, 0);
    E (BLK ("attn_v.weight"), in->dim, kv, 0, 0);
    E (BLK ("attn_output.weight"), in->dim, in->dim, 0, 0);
    F (BLK ("ffn_norm.weight"), in->dim, 0);
    E (BLK ("ffn_gate.weight"), in->dim, in->ffn_dim, 0, 0);
    E (BLK ("ffn_up.weight"), in->dim, in->ffn_dim, 0, 0);
    E (BLK ("ffn_down.weight"), in->ffn_dim, in->dim, 0, 0);
#undef BLK
  }
  return TRUE;
}

static gboolean
check_encoder_tensors (const OlGguf *gguf, const OlModelInfo *in, GHashTable *seen, GError **error)
{
  char n[160];
  gint64 d = in->clip_dim, p = in->patch_size, grid = in->image_size / in->patch_size;
  E ("clip.patch_embd.weight", p, p, 3, d);
  F ("clip.class_embd", d, 0);
  F ("clip.pos_embd", d, grid * grid + 1);
  F ("clip.pre_ln.weight", d, 0);
  F ("clip.pre_ln.bias", d, 0);
  F ("clip.post_ln.weight", d, 0);
  F ("clip.post_ln.bias", d, 0);
  for (guint l = 0; l < in->clip_layers; l++) {
#define BLK(s) (g_snprintf (n, sizeof (n), "clip.blk.%u." s, l), n)
    F (BLK ("ln1.weight"), d, 0);
    F (BLK ("ln1.bias"), d, 0);
    E (BLK ("attn_qkv.weight"), d, 3 * d, 0, 0);
    F (BLK ("attn_qkv.bias"), 3 * d, 0);
    E (BLK ("attn_out.weight"), d, d, 0, 0);
    F (BLK ("attn_out.bias"), d, 0);
    F (BLK ("ln2.weight"), d, 0);
    F (BLK ("ln2.bias"), d, 0);
    E (BLK ("ffn_up.weight"), d, in->clip_ffn_dim, 0, 0);
    F (BLK ("ffn_up.bias"), in->clip_ffn_dim, 0);
    E (BLK ("ffn_down.weight"), in->clip_ffn_dim, d, 0, 0);
    F (BLK ("ffn_down.bias"), d, 0);
#undef BLK
  }
  for (guint e = 0; e < in->upm_experts; e++) {
    for (guint l = 0; l < in->upm_layers; l++) {
#define BLK(s) (g_snprintf (n, sizeof (n), "upm.expert.%u.blk.%u." s, e, l), n)
      F (BLK ("attn_norm.weight"), d, 0);
      E (BLK ("attn_q.weight"), d, d, 0, 0);
      E (BLK ("attn_k.weight"), d, d, 0, 0);
      E (BLK ("attn_v.weight"), d, d, 0, 0);
      E (BLK ("attn_output.weight"), d, d, 0, 0);
      F (BLK ("ffn_norm.weight"), d, 0);
      E (BLK ("ffn_gate.weight"), d, in->upm_ffn_dim, 0, 0);
      E (BLK ("ffn_up.weight"), d, in->upm_ffn_dim, 0, 0);
      E (BLK ("ffn_down.weight"), in->upm_ffn_dim, d, 0, 0);
#undef BLK
    }
  }
  for (int m = 0; m < OL_N_MODALITIES; m++) {
    const OlModalityInfo *mi = &in->modality[m];
    if (!mi->present)
      continue;
#define MOD(s) (g_snprintf (n, sizeof (n), "mod.%s." s, modality_names[m]), n)
    F (MOD ("resample_tokens"), d, in->n_resample);
    E (MOD ("router.fc1.weight"), d, 0, 0, 0);
    const OlGgufTensor *fc1 = ol_gguf_find_tensor (gguf, n);
    F (MOD ("router.fc1.bias"), fc1->ne[1], 0);
    E (MOD ("router.fc2.weight"), fc1->ne[1], in->upm_experts, 0, 0);
    F (MOD ("router.fc2.bias"), in->upm_experts, 0);
    E (MOD ("proj1.weight"), d, d, 0, 0);
    F (MOD ("proj1.bias"), d, 0);
    F (MOD ("proj1_norm.weight"), d, 0);
    F (MOD ("proj1_norm.bias"), d, 0);
    E (MOD ("proj2.weight"), d, in->dim, 0, 0);
    F (MOD ("proj2.bias"), in->dim, 0);
    F (MOD ("proj2_norm.weight"), in->dim, 0);
    F (MOD ("proj2_norm.bias"), in->dim, 0);
    F (MOD ("start_tag"), in->dim, 0);
    F (MOD ("end_tag"), in->dim, 0);
    switch (m) {
      case OL_MODALITY_AUDIO:
        E (MOD ("conv.weight"), mi->kernel[1], mi->kernel[0], 1, d);
        F (MOD ("conv.bias"), d, 0);
        F (MOD ("pos_embd"), d, mi->tokens + 1);
        break;
      case OL_MODALITY_POINT:
        E (MOD ("conv.weight"), 6, d, 0, 0);
        F (MOD ("conv.bias"), d, 0);
        F (MOD ("pos_embd"), d, mi->tokens + 1);
        break;
      case OL_MODALITY_IMU:
        E (MOD ("conv.weight"), mi->kernel[1], 6, d, 0);
        F (MOD ("pos_embd"), d, mi->tokens + 1);
        break;
      case OL_MODALITY_FMRI:
        /* K may be padded with zero columns up to a block multiple so that the weight can be quantized. */
        E (MOD ("linear.weight"), 0, (gint64) mi->tokens * d, 0, 0);
        {
          gint64 k = ol_gguf_find_tensor (gguf, n)->ne[0];
          if (k < mi->input_shape[1] || k >= (gint64) mi->input_shape[1] + 32) {
            g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "tensor '%s' has %" G_GINT64_FORMAT " inputs for %u "
                         "voxels", n, k, mi->input_shape[1]);
            return FALSE;
          }
        }
        F (MOD ("linear.bias"), (gint64) mi->tokens * d, 0);
        F (MOD ("pos_embd"), d, mi->tokens + 1);
        break;
      default:
        break;
    }
#undef MOD
  }
  return TRUE;
}

#undef E
#undef F

static gboolean
load_tokenizer (OlModel *model, const OlGguf *gguf, GError **error)
{
  model->tokenizer = ol_tokenizer_new_from_gguf (gguf, error);
  if (model->tokenizer == NULL)
    return FALSE;
  model->info.n_vocab = ol_tokenizer_n_vocab (model->tokenizer);
  return TRUE;
}

static void
tensor_free (gpointer t)
{
  ol_tensor_free (t);
}

static gboolean
upload (OlModel *model, const OlGguf *gguf, GHashTable *used, GError **error)
{
  for (gsize i = 0; i < ol_gguf_n_tensors (gguf); i++) {
    const OlGgufTensor *gt = ol_gguf_tensor (gguf, i);
    int how = GPOINTER_TO_INT (g_hash_table_lookup (used, gt->name));
    if (how == 0)
      continue;
    OlType type = how == UPLOAD_F32 ? OL_TYPE_F32 : gt->type;
    OlTensor *t = ol_tensor_new (model->dev, type, gt->n_dims, gt->ne, OL_MEMORY_DEVICE, error);
    if (t == NULL) {
      g_prefix_error (error, "tensor '%s': ", gt->name);
      return FALSE;
    }
    g_hash_table_insert (model->tensors, g_strdup (gt->name), t);
    gboolean ok;
    if (type != gt->type) {
      gsize n = ol_gguf_tensor_n_elements (gt);
      g_autofree float *f = g_try_new (float, n);
      if (f == NULL) {
        g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY, "tensor '%s': no host memory to convert it", gt->name);
        return FALSE;
      }
      ol_type_dequantize (gt->type, gt->data, f, n);
      ok = ol_tensor_write (t, f, error);
    } else {
      ok = ol_tensor_write (t, gt->data, error);
    }
    if (!ok)
      return FALSE;
    ol_gguf_drop_pages (gguf, gt);
  }
  return TRUE;
}

OlModel *
ol_model_new (OlDevice *dev, const char *path, GError **error)
{
  g_return_val_if_fail (dev != NULL && path != NULL, NULL);
  g_autoptr (OlGguf) gguf = ol_gguf_open (path, error);
  if (gguf == NULL)
    return NULL;

  OlModel *model = g_new0 (OlModel, 1);
  model->dev = dev;
  model->path = g_strdup (path);
  model->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, tensor_free);
  OlModelInfo *in = &model->info;
  g_autoptr (GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);   /* name -> UPLOAD_* */

  const char *arch, *name = NULL, *tmpl = NULL;
  if (!ol_gguf_get_string (gguf, "general.architecture", &arch, error))
    goto fail;
  if (strcmp (arch, "onellm") != 0 && strcmp (arch, "llama") != 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "architecture '%s' is not supported (onellm or llama)", arch);
    goto fail;
  }
  in->architecture = g_strdup (arch);
  if (ol_gguf_has_key (gguf, "general.name") && !ol_gguf_get_string (gguf, "general.name", &name, error))
    goto fail;
  in->name = name ? g_strdup (name) : g_path_get_basename (path);

  if (!read_llm_info (gguf, in, error) || !load_tokenizer (model, gguf, error) ||
      !check_llm_tensors (gguf, in, used, error))
    goto fail;

  in->has_encoder = strcmp (arch, "onellm") == 0;
  if (in->has_encoder) {
    if (!read_encoder_info (gguf, in, error) || !read_modalities (model, gguf, error) ||
        !check_encoder_tensors (gguf, in, used, error))
      goto fail;
    if (ol_gguf_has_key (gguf, "onellm.prompt_template") &&
        !ol_gguf_get_string (gguf, "onellm.prompt_template", &tmpl, error))
      goto fail;
  }
  in->prompt_template = g_strdup (tmpl);

  if (!upload (model, gguf, used, error))
    goto fail;
  return model;

fail:
  g_prefix_error (error, "%s: ", path);
  ol_model_free (model);
  return NULL;
}

/* The language path: LLaMA prefill and decode over a per-session KV cache, modality splicing, generation. */
#include "session.h"

#include <math.h>
#include <string.h>

#include "ops.h"
#include "prompt.h"
#include "sampler.h"

/* Prefill runs the prompt through the layers in chunks of at most this many rows, all recorded into
 * one graph: the activations stay bounded ([ffn_dim, 512] floats) whatever the prompt length. */
#define PREFILL_CHUNK 512

typedef struct {
  const OlTensor *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
} Layer;

/* Activations of one forward pass for up to `rows` positions. */
typedef struct {
  guint rows;
  OlTensor *x, *h, *q, *k, *v, *attn, *gate, *up;
} Work;

struct _OlSession {
  OlModel *model;
  const OlModelInfo *info;
  OlDevice *dev;
  OlSessionParams params;
  guint n_ctx, q_dim, kv_dim;
  Layer *layers;
  const OlTensor *tok_embd, *output_norm, *output;
  OlTensor **k_cache, **v_cache;    /* per layer [kv_dim, n_ctx]: row = position */
  OlTensor *logits;                 /* host [n_vocab, 1] */

  OlGraph *prefill_graph;
  Work prefill_work;
  guint in_capacity, emb_capacity;
  OlTensor *in_ids, *in_pos;        /* host I32 [in_capacity]: per prompt row */
  OlTensor *in_emb;                 /* host F32 [dim, emb_capacity]: the embedding rows, in order */

  OlGraph *decode_graph;
  gboolean decode_recorded;
  Work decode_work;
  OlTensor *step_id, *step_pos, *step_n_kv;   /* host I32 [1], written before each decode run */

  GArray *rows;                     /* gint32 per cache row in use: its token id, -1 for an embedding row */

  /* Conversation of ol_session_chat. */
  GPtrArray *questions, *answers;
  GArray *blocks;                   /* floats of the spliced blocks, n_blocks × block_rows × dim */
  guint n_blocks;
  gint32 unfed_token;               /* last generated token, not in the cache yet (-1: none) */
};

void
ol_session_params_init (OlSessionParams *params)
{
  g_return_if_fail (params != NULL);
  params->n_ctx = 0;
  params->kv_type = OL_TYPE_F32;
  params->position_mode = OL_POSITION_OFFICIAL;
}

void
ol_generate_params_init (OlGenerateParams *params)
{
  g_return_if_fail (params != NULL);
  params->temperature = 0.1f;
  params->top_p = 0.75f;
  params->top_k = 0;
  params->seed = 1;
  params->max_tokens = 128;
  params->stop_at_separator = TRUE;
}

void
ol_generate_result_clear (OlGenerateResult *result)
{
  if (result == NULL)
    return;
  g_clear_pointer (&result->text, g_free);
  g_clear_pointer (&result->tokens, g_array_unref);
  result->n_prompt_tokens = result->n_prefill_rows = 0;
  result->prefill_seconds = result->decode_seconds = 0;
}

static void
work_clear (Work *w)
{
  OlTensor **all[] = { &w->x, &w->h, &w->q, &w->k, &w->v, &w->attn, &w->gate, &w->up };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_clear_pointer (all[i], ol_tensor_free);
  w->rows = 0;
}

static OlTensor *
new_matrix (OlDevice *dev, OlType type, gint64 cols, gint64 rows, OlMemoryKind kind, GError **error)
{
  gint64 ne[2] = { cols, rows };
  return ol_tensor_new (dev, type, 2, ne, kind, error);
}

static gboolean
work_init (OlSession *s, Work *w, guint rows, GError **error)
{
  const OlModelInfo *in = s->info;
  work_clear (w);
  struct { OlTensor **t; guint width; } all[] = {
    { &w->x, in->dim }, { &w->h, in->dim }, { &w->q, s->q_dim }, { &w->k, s->kv_dim }, { &w->v, s->kv_dim },
    { &w->attn, s->q_dim }, { &w->gate, in->ffn_dim }, { &w->up, in->ffn_dim },
  };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++) {
    *all[i].t = new_matrix (s->dev, OL_TYPE_F32, all[i].width, rows, OL_MEMORY_DEVICE, error);
    if (*all[i].t == NULL) {
      work_clear (w);
      return FALSE;
    }
  }
  w->rows = rows;
  return TRUE;
}

/* Elements [first, first + count) of a 1-D tensor. */
static OlTensor
slice (const OlTensor *t, guint first, guint count)
{
  OlTensor v = *t;
  v.owns_buffer = FALSE;
  v.offset += (guint64) first * ol_tensor_row_bytes (t) / t->ne[0];
  v.n_dims = 1;
  v.ne[0] = count;
  return v;
}

static const OlTensor *
weight (OlSession *s, const char *name, int layer)
{
  g_autofree char *full = layer < 0 ? g_strdup (name) : g_strdup_printf ("blk.%d.%s", layer, name);
  return ol_model_get_tensor (s->model, full);
}

OlSession *
ol_session_new (OlModel *model, const OlSessionParams *params, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  OlSessionParams defaults;
  if (params == NULL) {
    ol_session_params_init (&defaults);
    params = &defaults;
  }
  if (params->kv_type != OL_TYPE_F32 && params->kv_type != OL_TYPE_F16) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "KV cache type %s: expected f32 or f16",
                 ol_type_name (params->kv_type));
    return NULL;
  }
  if (params->position_mode != OL_POSITION_OFFICIAL && params->position_mode != OL_POSITION_CORRECT) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "unknown position mode %d",
                 params->position_mode);
    return NULL;
  }

  OlSession *s = g_new0 (OlSession, 1);
  s->model = model;
  s->info = ol_model_get_info (model);
  s->dev = ol_model_get_device (model);
  s->params = *params;
  s->n_ctx = params->n_ctx ? params->n_ctx : s->info->context_length;
  s->q_dim = s->info->n_heads * s->info->head_dim;
  s->kv_dim = s->info->n_kv_heads * s->info->head_dim;
  s->rows = g_array_new (FALSE, FALSE, sizeof (gint32));
  s->questions = g_ptr_array_new_with_free_func (g_free);
  s->answers = g_ptr_array_new_with_free_func (g_free);
  s->blocks = g_array_new (FALSE, FALSE, sizeof (float));
  s->unfed_token = -1;

  const OlModelInfo *in = s->info;
  s->tok_embd = weight (s, "token_embd.weight", -1);
  s->output_norm = weight (s, "output_norm.weight", -1);
  s->output = weight (s, "output.weight", -1);
  s->layers = g_new0 (Layer, in->n_layers);
  for (guint i = 0; i < in->n_layers; i++) {
    Layer *l = &s->layers[i];
    l->attn_norm = weight (s, "attn_norm.weight", i);
    l->wq = weight (s, "attn_q.weight", i);
    l->wk = weight (s, "attn_k.weight", i);
    l->wv = weight (s, "attn_v.weight", i);
    l->wo = weight (s, "attn_output.weight", i);
    l->ffn_norm = weight (s, "ffn_norm.weight", i);
    l->w_gate = weight (s, "ffn_gate.weight", i);
    l->w_up = weight (s, "ffn_up.weight", i);
    l->w_down = weight (s, "ffn_down.weight", i);
    /* The loader has checked every LLM tensor; a NULL here is a loader bug, not bad input. */
    g_return_val_if_fail (l->attn_norm && l->wq && l->wk && l->wv && l->wo && l->ffn_norm && l->w_gate &&
                          l->w_up && l->w_down, (ol_session_free (s), NULL));
  }
  g_return_val_if_fail (s->tok_embd && s->output_norm && s->output, (ol_session_free (s), NULL));

  s->k_cache = g_new0 (OlTensor *, in->n_layers);
  s->v_cache = g_new0 (OlTensor *, in->n_layers);
  for (guint i = 0; i < in->n_layers; i++) {
    s->k_cache[i] = new_matrix (s->dev, params->kv_type, s->kv_dim, s->n_ctx, OL_MEMORY_DEVICE, error);
    s->v_cache[i] = s->k_cache[i] ? new_matrix (s->dev, params->kv_type, s->kv_dim, s->n_ctx,
                                                OL_MEMORY_DEVICE, error) : NULL;
    if (s->v_cache[i] == NULL) {
      g_prefix_error (error, "KV cache of %u positions: ", s->n_ctx);
      ol_session_free (s);
      return NULL;
    }
  }
  gint64 one = 1;
  if ((s->logits = new_matrix (s->dev, OL_TYPE_F32, in->n_vocab, 1, OL_MEMORY_HOST, error)) == NULL ||
      (s->step_id = ol_tensor_new (s->dev, OL_TYPE_I32, 1, &one, OL_MEMORY_HOST, error)) == NULL ||
      (s->step_pos = ol_tensor_new (s->dev, OL_TYPE_I32, 1, &one, OL_MEMORY_HOST, error)) == NULL ||
      (s->step_n_kv = ol_tensor_new (s->dev, OL_TYPE_I32, 1, &one, OL_MEMORY_HOST, error)) == NULL ||
      !work_init (s, &s->decode_work, 1, error) ||
      (s->prefill_graph = ol_graph_new (s->dev, error)) == NULL ||
      (s->decode_graph = ol_graph_new (s->dev, error)) == NULL) {
    ol_session_free (s);
    return NULL;
  }
  return s;
}

void
ol_session_free (OlSession *s)
{
  if (s == NULL)
    return;
  for (guint i = 0; s->k_cache && i < s->info->n_layers; i++) {
    g_clear_pointer (&s->k_cache[i], ol_tensor_free);
    g_clear_pointer (&s->v_cache[i], ol_tensor_free);
  }
  g_free (s->k_cache);
  g_free (s->v_cache);
  g_free (s->layers);
  g_clear_pointer (&s->prefill_graph, ol_graph_free);
  g_clear_pointer (&s->decode_graph, ol_graph_free);
  work_clear (&s->prefill_work);
  work_clear (&s->decode_work);
  OlTensor **all[] = {
    &s->logits, &s->in_ids, &s->in_pos, &s->in_emb, &s->step_id, &s->step_pos, &s->step_n_kv,
  };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_clear_pointer (all[i], ol_tensor_free);
  g_array_unref (s->rows);
  g_ptr_array_unref (s->questions);
  g_ptr_array_unref (s->answers);
  g_array_unref (s->blocks);
  g_free (s);
}

void
ol_session_reset (OlSession *s)
{
  g_return_if_fail (s != NULL);
  g_array_set_size (s->rows, 0);
  g_ptr_array_set_size (s->questions, 0);
  g_ptr_array_set_size (s->answers, 0);
  g_array_set_size (s->blocks, 0);
  s->n_blocks = 0;
  s->unfed_token = -1;
}

guint
ol_session_get_n_past (OlSession *s)
{
  g_return_val_if_fail (s != NULL, 0);
  return s->rows->len;
}

guint
ol_session_get_n_ctx (OlSession *s)
{
  g_return_val_if_fail (s != NULL, 0);
  return s->n_ctx;
}

/* The layers and the head for the T rows of w->x at the positions in pos. Prefill (n_kv NULL) attends
 * causally over cache rows [0, kv_rows); decode attends to the n_kv rows the device reads from n_kv. */
static void
record_forward (OlSession *s, OlGraph *g, Work *w, guint T, const OlTensor *pos, guint kv_rows,
                const OlTensor *n_kv, gboolean head)
{
  const OlModelInfo *in = s->info;
  OlTensor x = ol_tensor_rows (w->x, 0, T), h = ol_tensor_rows (w->h, 0, T);
  OlTensor q = ol_tensor_rows (w->q, 0, T), k = ol_tensor_rows (w->k, 0, T), v = ol_tensor_rows (w->v, 0, T);
  OlTensor attn = ol_tensor_rows (w->attn, 0, T);
  OlTensor gate = ol_tensor_rows (w->gate, 0, T), up = ol_tensor_rows (w->up, 0, T);
  float scale = 1.0f / sqrtf ((float) in->head_dim);

  for (guint i = 0; i < in->n_layers; i++) {
    const Layer *l = &s->layers[i];
    OlTensor kc = n_kv ? *s->k_cache[i] : ol_tensor_rows (s->k_cache[i], 0, kv_rows);
    OlTensor vc = n_kv ? *s->v_cache[i] : ol_tensor_rows (s->v_cache[i], 0, kv_rows);
    ol_op_rms_norm (g, &h, &x, l->attn_norm, in->norm_eps);
    ol_op_matmul (g, &q, &h, l->wq, NULL, FALSE);
    ol_op_matmul (g, &k, &h, l->wk, NULL, FALSE);
    ol_op_matmul (g, &v, &h, l->wv, NULL, FALSE);
    ol_op_rope (g, &q, &q, pos, in->n_heads, in->rope_theta);
    ol_op_rope (g, &k, &k, pos, in->n_kv_heads, in->rope_theta);
    ol_op_set_rows (g, s->k_cache[i], &k, pos);
    ol_op_set_rows (g, s->v_cache[i], &v, pos);
    ol_op_attention (g, &attn, &q, &kc, &vc, in->n_heads, in->n_kv_heads, scale, n_kv == NULL, n_kv);
    ol_op_matmul (g, &x, &attn, l->wo, NULL, TRUE);
    ol_op_rms_norm (g, &h, &x, l->ffn_norm, in->norm_eps);
    ol_op_matmul (g, &gate, &h, l->w_gate, NULL, FALSE);
    ol_op_matmul (g, &up, &h, l->w_up, NULL, FALSE);
    ol_op_swiglu (g, &gate, &gate, &up);
    ol_op_matmul (g, &x, &gate, l->w_down, NULL, TRUE);
  }
  if (head) {
    OlTensor last = ol_tensor_rows (&x, T - 1, 1), normed = ol_tensor_rows (&h, 0, 1);
    ol_op_rms_norm (g, &normed, &last, s->output_norm, in->norm_eps);
    ol_op_matmul (g, s->logits, &normed, s->output, NULL, FALSE);
  }
}

static void *
host_ptr (const OlTensor *t)
{
  return (guint8 *) ol_buffer_map (t->buffer) + t->offset;
}

static gboolean
read_logits (OlSession *s, float *logits)
{
  if (logits != NULL)
    memcpy (logits, host_ptr (s->logits), s->info->n_vocab * sizeof (float));
  return TRUE;
}

static gboolean
context_check (OlSession *s, guint n, GError **error)
{
  if ((guint64) s->rows->len + n <= s->n_ctx)
    return TRUE;
  g_set_error (error, OL_ERROR, OL_ERROR_CONTEXT_FULL,
               "context full: %u cached positions + %u new ones exceed the %u of this session",
               s->rows->len, n, s->n_ctx);
  return FALSE;
}

static gboolean
ensure_host_inputs (OlSession *s, guint n_rows, guint n_emb, GError **error)
{
  if (n_rows > s->in_capacity) {
    g_clear_pointer (&s->in_ids, ol_tensor_free);
    g_clear_pointer (&s->in_pos, ol_tensor_free);
    s->in_capacity = 0;
    gint64 n = n_rows;
    if ((s->in_ids = ol_tensor_new (s->dev, OL_TYPE_I32, 1, &n, OL_MEMORY_HOST, error)) == NULL ||
        (s->in_pos = ol_tensor_new (s->dev, OL_TYPE_I32, 1, &n, OL_MEMORY_HOST, error)) == NULL)
      return FALSE;
    s->in_capacity = n_rows;
  }
  if (n_emb > s->emb_capacity) {
    g_clear_pointer (&s->in_emb, ol_tensor_free);
    s->emb_capacity = 0;
    if ((s->in_emb = new_matrix (s->dev, OL_TYPE_F32, s->info->dim, n_emb, OL_MEMORY_HOST, error)) == NULL)
      return FALSE;
    s->emb_capacity = n_emb;
  }
  guint chunk = MIN (n_rows, PREFILL_CHUNK);
  return chunk <= s->prefill_work.rows || work_init (s, &s->prefill_work, chunk, error);
}

/* Prefill, then in OFFICIAL mode go back 2 rows per modality block of the sequence: the released code
 * continues after a block as if it had 30 rows, not 32 (spec §6.4), so the next position overwrites the
 * last two rows of the prompt. n_blocks < 0: count the embedding parts of this prefill. */
static gboolean
prefill (OlSession *s, const OlPromptPart *parts, guint n_parts, int n_blocks, float *logits, GError **error)
{
  const OlModelInfo *in = s->info;
  guint n_rows = 0, n_emb = 0, n_emb_parts = 0;
  for (guint p = 0; p < n_parts; p++) {
    const OlPromptPart *part = &parts[p];
    if ((part->n_ids > 0) == (part->n_rows > 0) || (part->n_ids > 0 && part->ids == NULL) ||
        (part->n_rows > 0 && part->embeddings == NULL)) {
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                   "prompt part %u: give either token ids or embedding rows", p);
      return FALSE;
    }
    for (guint i = 0; i < part->n_ids; i++)
      if (part->ids[i] < 0 || (guint) part->ids[i] >= in->n_vocab) {
        g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                     "prompt part %u: token id %d outside the vocabulary of %u", p, part->ids[i],
                     in->n_vocab);
        return FALSE;
      }
    n_rows += part->n_ids + part->n_rows;
    n_emb += part->n_rows;
    n_emb_parts += part->n_rows > 0;
  }
  if (n_rows == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "empty prompt");
    return FALSE;
  }
  if (!context_check (s, n_rows, error) || !ensure_host_inputs (s, n_rows, n_emb, error))
    return FALSE;

  /* Host inputs: per row its id (-1 for embedding rows) and position; the embedding rows in order. */
  gint32 *ids = host_ptr (s->in_ids), *pos = host_ptr (s->in_pos);
  float *emb = n_emb ? host_ptr (s->in_emb) : NULL;
  guint n_past = s->rows->len, r = 0, e = 0;
  for (guint p = 0; p < n_parts; p++) {
    for (guint i = 0; i < parts[p].n_ids; i++, r++)
      ids[r] = parts[p].ids[i];
    for (guint i = 0; i < parts[p].n_rows; i++, r++)
      ids[r] = -1;
    if (parts[p].n_rows > 0)
      memcpy (emb + (gsize) e * in->dim, parts[p].embeddings,
              (gsize) parts[p].n_rows * in->dim * sizeof (float));
    e += parts[p].n_rows;
  }
  for (guint i = 0; i < n_rows; i++)
    pos[i] = n_past + i;

  OlGraph *g = s->prefill_graph;
  Work *w = &s->prefill_work;
  ol_graph_begin (g);
  e = 0;
  for (guint c0 = 0; c0 < n_rows; c0 += w->rows) {
    guint T = MIN (w->rows, n_rows - c0);
    /* Input rows of the chunk: runs of ids gathered from the embedding table, runs of embeddings copied. */
    for (guint a = c0; a < c0 + T;) {
      guint b = a + 1;
      while (b < c0 + T && (ids[b] < 0) == (ids[a] < 0))
        b++;
      OlTensor dst = ol_tensor_rows (w->x, a - c0, b - a);
      if (ids[a] >= 0) {
        OlTensor src = slice (s->in_ids, a, b - a);
        ol_op_get_rows (g, &dst, s->tok_embd, &src);
      } else {
        OlTensor src = ol_tensor_rows (s->in_emb, e, b - a);
        ol_op_copy (g, &dst, &src);
        e += b - a;
      }
      a = b;
    }
    OlTensor chunk_pos = slice (s->in_pos, c0, T);
    record_forward (s, g, w, T, &chunk_pos, n_past + c0 + T, NULL, c0 + T == n_rows);
  }
  if (!ol_graph_end (g, error) || !ol_graph_run (g, error))
    return FALSE;

  g_array_append_vals (s->rows, ids, n_rows);
  if (s->params.position_mode == OL_POSITION_OFFICIAL) {
    guint back = 2 * (n_blocks < 0 ? n_emb_parts : (guint) n_blocks);
    g_array_set_size (s->rows, s->rows->len - MIN (s->rows->len, back));
  }
  return read_logits (s, logits);
}

gboolean
ol_session_prefill (OlSession *s, const OlPromptPart *parts, guint n_parts, float *logits, GError **error)
{
  g_return_val_if_fail (s != NULL && (parts != NULL || n_parts == 0), FALSE);
  return prefill (s, parts, n_parts, -1, logits, error);
}

gboolean
ol_session_decode (OlSession *s, gint32 token, float *logits, GError **error)
{
  g_return_val_if_fail (s != NULL, FALSE);
  if (token < 0 || (guint) token >= s->info->n_vocab) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "token id %d outside the vocabulary of %u",
                 token, s->info->n_vocab);
    return FALSE;
  }
  if (!context_check (s, 1, error))
    return FALSE;
  if (!s->decode_recorded) {
    OlGraph *g = s->decode_graph;
    OlTensor x = ol_tensor_rows (s->decode_work.x, 0, 1);
    ol_graph_begin (g);
    ol_op_get_rows (g, &x, s->tok_embd, s->step_id);
    record_forward (s, g, &s->decode_work, 1, s->step_pos, 0, s->step_n_kv, TRUE);
    if (!ol_graph_end (g, error))
      return FALSE;
    s->decode_recorded = TRUE;
  }
  *(gint32 *) host_ptr (s->step_id) = token;
  *(gint32 *) host_ptr (s->step_pos) = s->rows->len;
  *(gint32 *) host_ptr (s->step_n_kv) = s->rows->len + 1;
  if (!ol_graph_run (s->decode_graph, error))
    return FALSE;
  g_array_append_val (s->rows, token);
  return read_logits (s, logits);
}

/* ---- generation ---- */

/* The streamed text is the answer as ol_prompt_answer will finally report it (cut at the separator,
 * stripped): what may still turn into a separator or trailing whitespace is held back. */
typedef struct {
  GString *generated;
  gsize sent;
} Stream;

static char *
stream_ready (Stream *st, gboolean final)
{
  gboolean stop = FALSE;
  g_autofree char *answer = ol_prompt_answer (st->generated->str, st->generated->len, &stop);
  gsize len = strlen (answer);
  if (!final && !stop) {
    while (len > 0 && answer[len - 1] == '#')
      len--;
    g_autofree char *trimmed = ol_prompt_answer (answer, len, NULL);
    len = strlen (trimmed);
  }
  if (len <= st->sent)
    return g_strdup ("");
  char *piece = g_strndup (answer + st->sent, len - st->sent);
  st->sent = len;
  return piece;
}

gboolean
ol_session_generate (OlSession *s, const float *first_logits, const OlGenerateParams *params,
                     OlTextCallback callback, gpointer user_data, GCancellable *cancellable,
                     OlGenerateResult *result, GError **error)
{
  g_return_val_if_fail (s != NULL && first_logits != NULL && result != NULL, FALSE);
  OlGenerateParams defaults;
  if (params == NULL) {
    ol_generate_params_init (&defaults);
    params = &defaults;
  }
  OlSamplerParams sp = { params->temperature, params->top_p, params->top_k, params->seed };
  OlSampler *sampler = ol_sampler_new (&sp, error);
  if (sampler == NULL)
    return FALSE;
  OlTokenizer *tok = ol_model_get_tokenizer (s->model);
  OlDetokenizer *det = ol_detokenizer_new (tok);
  gsize n_vocab = s->info->n_vocab;
  g_autofree float *logits = g_memdup2 (first_logits, n_vocab * sizeof (float));
  Stream st = { g_string_new (NULL), 0 };
  gint32 eos = ol_tokenizer_eos (tok);
  gboolean ok = TRUE, streaming = TRUE;
  gint64 start = g_get_monotonic_time ();

  if (result->tokens == NULL)
    result->tokens = g_array_new (FALSE, FALSE, sizeof (gint32));
  s->unfed_token = -1;
  while (result->tokens->len < params->max_tokens) {
    if (g_cancellable_is_cancelled (cancellable)) {
      g_set_error (error, OL_ERROR, OL_ERROR_CANCELLED, "generation cancelled");
      ok = FALSE;
      break;
    }
    gint32 t = ol_sampler_sample (sampler, logits, n_vocab);
    if (t == eos)
      break;
    g_array_append_val (result->tokens, t);
    gsize len;
    g_autofree char *text = ol_detokenizer_push (det, t, &len);
    g_string_append_len (st.generated, text, len);
    gboolean stop = FALSE;
    g_free (ol_prompt_answer (st.generated->str, st.generated->len, &stop));
    if (streaming && callback != NULL) {
      g_autofree char *piece = stream_ready (&st, FALSE);
      streaming = callback (piece, t, user_data);
    }
    if ((stop && params->stop_at_separator) || !streaming || result->tokens->len >= params->max_tokens) {
      s->unfed_token = t;
      break;
    }
    if (!ol_session_decode (s, t, logits, error)) {
      ok = FALSE;
      break;
    }
  }
  gsize len;
  g_autofree char *rest = ol_detokenizer_flush (det, &len);
  g_string_append_len (st.generated, rest, len);
  if (ok && streaming && callback != NULL) {
    g_autofree char *piece = stream_ready (&st, TRUE);
    if (*piece)
      callback (piece, -1, user_data);
  }
  g_free (result->text);
  result->text = ol_prompt_answer (st.generated->str, st.generated->len, NULL);
  result->decode_seconds += (g_get_monotonic_time () - start) / 1e6;
  g_string_free (st.generated, TRUE);
  ol_detokenizer_free (det);
  ol_sampler_free (sampler);
  return ok;
}

/* ---- chat ---- */

static guint
block_rows (OlSession *s)
{
  return s->info->n_resample + 2;
}

static gboolean
same_blocks (OlSession *s, const float *const *blocks, guint n_blocks)
{
  gsize n = (gsize) block_rows (s) * s->info->dim;
  if (n_blocks != s->n_blocks)
    return FALSE;
  for (guint b = 0; b < n_blocks; b++)
    if (memcmp (blocks[b], &g_array_index (s->blocks, float, b * n), n * sizeof (float)) != 0)
      return FALSE;
  return TRUE;
}

/* The rows the conversation should occupy in the cache: -1 for the rows of the blocks. */
static GArray *
conversation_rows (OlSession *s, const char *question)
{
  OlTokenizer *tok = ol_model_get_tokenizer (s->model);
  GArray *target = g_array_new (FALSE, FALSE, sizeof (gint32));
  gsize n_ids;
  g_autofree gint32 *ids = NULL;
  if (s->info->prompt_template != NULL) {
    /* OneLLM: the whole conversation in its template; what is already cached is found below. */
    guint n = s->questions->len;
    g_autofree OlPromptTurn *turns = g_new0 (OlPromptTurn, n + 1);
    for (guint i = 0; i < n; i++)
      turns[i] = (OlPromptTurn) { s->questions->pdata[i], s->answers->pdata[i] };
    turns[n].question = question;
    g_autofree char *text = ol_prompt_build (NULL, turns, n + 1);
    ids = ol_tokenizer_encode (tok, text, -1, TRUE, FALSE, &n_ids);
  } else if (s->rows->len > 0 || s->unfed_token >= 0) {
    /* Without a template the text continues: the cached rows, the last generated token, the new text. */
    ids = ol_tokenizer_encode (tok, question, -1, FALSE, FALSE, &n_ids);
    g_array_append_vals (target, s->rows->data, s->rows->len);
    if (s->unfed_token >= 0)
      g_array_append_val (target, s->unfed_token);
    g_array_append_vals (target, ids, n_ids);
    return target;
  } else {
    ids = ol_tokenizer_encode (tok, question, -1, TRUE, FALSE, &n_ids);
  }
  if (n_ids > 0)
    g_array_append_val (target, ids[0]);
  gint32 none = -1;
  for (guint i = 0; i < s->n_blocks * block_rows (s); i++)
    g_array_append_val (target, none);
  if (n_ids > 1)
    g_array_append_vals (target, ids + 1, n_ids - 1);
  return target;
}

gboolean
ol_session_chat (OlSession *s, const char *question, const float *const *blocks, guint n_blocks,
                 const OlGenerateParams *params, OlTextCallback callback, gpointer user_data,
                 GCancellable *cancellable, OlGenerateResult *result, GError **error)
{
  g_return_val_if_fail (s != NULL && question != NULL && (blocks != NULL || n_blocks == 0) && result != NULL,
                        FALSE);
  const OlModelInfo *in = s->info;
  if (n_blocks > 0 && !in->has_encoder) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "model '%s' has no encoder: it cannot take modality inputs", in->name);
    return FALSE;
  }
  /* New inputs start the conversation again with them after BOS (as OneLLM's demo re-runs the whole
   * conversation); no inputs keep those of the earlier turns. */
  if (n_blocks > 0 && !same_blocks (s, blocks, n_blocks)) {
    g_array_set_size (s->rows, 0);
    s->unfed_token = -1;
    g_array_set_size (s->blocks, 0);
    for (guint b = 0; b < n_blocks; b++)
      g_array_append_vals (s->blocks, blocks[b], block_rows (s) * in->dim);
    s->n_blocks = n_blocks;
  }

  g_autoptr (GArray) target = conversation_rows (s, question);
  if (target->len == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "empty prompt");
    return FALSE;
  }
  gint32 *t = (gint32 *) target->data;
  guint keep = 0;
  while (keep < s->rows->len && keep < target->len && g_array_index (s->rows, gint32, keep) == t[keep])
    keep++;
  if (keep == target->len)
    keep--;
  g_array_set_size (s->rows, keep);

  /* The new rows as parts: runs of ids, and the blocks (whole, since rows of a block are never kept
   * without the rest: the row after them differs too). */
  g_autoptr (GArray) parts = g_array_new (FALSE, TRUE, sizeof (OlPromptPart));
  guint n_rows_block = block_rows (s);
  for (guint a = keep; a < target->len;) {
    OlPromptPart part = { 0 };
    if (t[a] >= 0) {
      guint b = a;
      while (b < target->len && t[b] >= 0)
        b++;
      part.ids = t + a;
      part.n_ids = b - a;
      a = b;
    } else {
      guint index = (a - 1) / n_rows_block, offset = (a - 1) % n_rows_block;   /* blocks start after BOS */
      part.embeddings = &g_array_index (s->blocks, float, ((gsize) index * n_rows_block + offset) * in->dim);
      part.n_rows = n_rows_block - offset;
      a += part.n_rows;
    }
    g_array_append_val (parts, part);
  }

  g_autofree float *logits = g_new (float, in->n_vocab);
  gint64 start = g_get_monotonic_time ();
  /* OFFICIAL mode: the demo re-runs the whole conversation with its blocks every turn, so every turn
   * continues 2 rows per block early, whichever rows came from the cache. */
  if (!prefill (s, (OlPromptPart *) parts->data, parts->len, s->n_blocks, logits, error))
    return FALSE;
  result->n_prompt_tokens = target->len;
  result->n_prefill_rows = target->len - keep;
  result->prefill_seconds += (g_get_monotonic_time () - start) / 1e6;
  gboolean ok = ol_session_generate (s, logits, params, callback, user_data, cancellable, result, error);
  g_ptr_array_add (s->questions, g_strdup (question));
  g_ptr_array_add (s->answers, g_strdup (result->text ? result->text : ""));
  return ok;
}

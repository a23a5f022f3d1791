/* onellm-bench llm: prefill and decode speed of a random LLaMA-shaped model against the roofline. */
#include "bench.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define N_VOCAB 32000

typedef struct {
  guint dim, layers, heads, ffn;
} Shape;

/* Values of one tensor, produced when the file is written. */
typedef struct {
  OlType type;
  gint64 cols;
  float scale;        /* uniform in [-scale, scale); 0: all ones (norm weights) */
  guint32 seed;
} Fill;

static gboolean
fill_tensor (void *dst, guint64 n_bytes, gpointer user_data, GError **error)
{
  const Fill *f = user_data;
  guint64 row_bytes;
  if (!ol_type_row_bytes (f->type, f->cols, &row_bytes, error))
    return FALSE;
  g_autofree float *row = g_new (float, f->cols);
  guint32 s = f->seed | 1;
  for (guint64 r = 0; r < n_bytes / row_bytes; r++) {
    for (gint64 i = 0; i < f->cols; i++) {
      s ^= s << 13;     /* xorshift32: fast, and the values only need to be plausible */
      s ^= s >> 17;
      s ^= s << 5;
      row[i] = f->scale == 0 ? 1.0f : ((float) s * (2.0f / 4294967296.0f) - 1.0f) * f->scale;
    }
    ol_type_quantize (f->type, row, (guint8 *) dst + r * row_bytes, f->cols);
  }
  return TRUE;
}

static gboolean
add (OlGgufWriter *w, GPtrArray *fills, const char *name, OlType type, gint64 cols, gint64 rows,
     GError **error)
{
  Fill *f = g_new (Fill, 1);
  *f = (Fill) { type, cols, rows == 1 ? 0 : 1.0f / sqrtf ((float) cols), g_str_hash (name) };
  g_ptr_array_add (fills, f);
  gint64 ne[2] = { cols, rows };
  return ol_gguf_writer_add_tensor_func (w, name, type, rows == 1 ? 1 : 2, ne, fill_tensor, f, error);
}

/* A plain LLaMA GGUF (architecture "llama") with random weights of type and a byte-level vocabulary. */
static gboolean
write_model (const char *path, const Shape *sh, OlType type, GError **error)
{
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  g_autoptr (GPtrArray) fills = g_ptr_array_new_with_free_func (g_free);
  ol_gguf_writer_set_string (w, "general.architecture", "llama");
  ol_gguf_writer_set_string (w, "general.name", "onellm-bench random LLaMA");
  ol_gguf_writer_set_u32 (w, "llama.embedding_length", sh->dim);
  ol_gguf_writer_set_u32 (w, "llama.block_count", sh->layers);
  ol_gguf_writer_set_u32 (w, "llama.feed_forward_length", sh->ffn);
  ol_gguf_writer_set_u32 (w, "llama.attention.head_count", sh->heads);
  ol_gguf_writer_set_u32 (w, "llama.context_length", 4096);
  ol_gguf_writer_set_f32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);

  g_autoptr (GPtrArray) pieces = g_ptr_array_new_with_free_func (g_free);
  g_autofree float *scores = g_new0 (float, N_VOCAB);
  g_autofree gint32 *types = g_new (gint32, N_VOCAB);
  for (guint i = 0; i < N_VOCAB; i++) {
    if (i < 3) {
      g_ptr_array_add (pieces, g_strdup (i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>"));
      types[i] = i == 0 ? OL_PIECE_UNKNOWN : OL_PIECE_CONTROL;
    } else if (i < 3 + 256) {
      g_ptr_array_add (pieces, g_strdup_printf ("<0x%02X>", i - 3));
      types[i] = OL_PIECE_BYTE;
    } else {
      g_ptr_array_add (pieces, g_strdup_printf ("t%u", i));
      types[i] = OL_PIECE_NORMAL;
    }
  }
  ol_gguf_writer_set_string (w, "tokenizer.ggml.model", "llama");
  ol_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens", (const char *const *) pieces->pdata, N_VOCAB);
  ol_gguf_writer_set_array (w, "tokenizer.ggml.scores", OL_GGUF_TYPE_FLOAT32, scores, N_VOCAB);
  ol_gguf_writer_set_array (w, "tokenizer.ggml.token_type", OL_GGUF_TYPE_INT32, types, N_VOCAB);

  /* Matrices in the benchmarked type; the output head in Q8_0 for Q4_0 as llama.cpp and
   * onellm-quantize keep it (docs/model-format.md). */
  OlType head = type == OL_TYPE_Q4_0 ? OL_TYPE_Q8_0 : type;
  if (!add (w, fills, "token_embd.weight", type, sh->dim, N_VOCAB, error) ||
      !add (w, fills, "output_norm.weight", OL_TYPE_F32, sh->dim, 1, error) ||
      !add (w, fills, "output.weight", head, sh->dim, N_VOCAB, error))
    return FALSE;
  for (guint l = 0; l < sh->layers; l++) {
    struct { const char *name; gint64 cols, rows; OlType type; } t[] = {
      { "attn_norm", sh->dim, 1, OL_TYPE_F32 }, { "attn_q", sh->dim, sh->dim, type },
      { "attn_k", sh->dim, sh->dim, type }, { "attn_v", sh->dim, sh->dim, type },
      { "attn_output", sh->dim, sh->dim, type }, { "ffn_norm", sh->dim, 1, OL_TYPE_F32 },
      { "ffn_gate", sh->dim, sh->ffn, type }, { "ffn_up", sh->dim, sh->ffn, type },
      { "ffn_down", sh->ffn, sh->dim, type },
    };
    for (guint i = 0; i < G_N_ELEMENTS (t); i++) {
      g_autofree char *name = g_strdup_printf ("blk.%u.%s.weight", l, t[i].name);
      if (!add (w, fills, name, t[i].type, t[i].cols, t[i].rows, error))
        return FALSE;
    }
  }
  return ol_gguf_writer_write (w, path, error);
}

/* Bytes of weights one decoded token reads: every matrix of the layers and the output head (the
 * embedding lookup reads one row). */
static double
weight_bytes (const Shape *sh, OlType type)
{
  guint64 row, head_row, ffn_row;
  OlType head = type == OL_TYPE_Q4_0 ? OL_TYPE_Q8_0 : type;
  ol_type_row_bytes (type, sh->dim, &row, NULL);
  ol_type_row_bytes (type, sh->ffn, &ffn_row, NULL);
  ol_type_row_bytes (head, sh->dim, &head_row, NULL);
  double layer = 4.0 * sh->dim * row + 2.0 * sh->ffn * row + (double) sh->dim * ffn_row;
  return sh->layers * layer + (double) N_VOCAB * head_row;
}

static void
random_ids (gint32 *ids, guint n, guint32 seed)
{
  for (guint i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    ids[i] = 3 + (seed >> 8) % (N_VOCAB - 3);
  }
}

/* Prefill of ctx − decode − 1 tokens, one untimed decode step (it records the step), then decode
 * timed steps, in a session of ctx positions. */
static gboolean
run_context (Bench *b, OlModel *model, const Shape *sh, OlType type, guint ctx, guint decode, GError **error)
{
  OlSessionParams sp;
  ol_session_params_init (&sp);
  sp.n_ctx = ctx;
  sp.kv_type = OL_TYPE_F16;
  OlSession *s = ol_session_new (model, &sp, error);
  if (s == NULL)
    return FALSE;
  guint n_prompt = ctx - decode - 1;
  g_autofree gint32 *ids = g_new (gint32, ctx);
  random_ids (ids, ctx, ctx);
  g_autofree float *logits = g_new (float, N_VOCAB);
  /* A short warm-up builds the pipelines before anything is timed. */
  OlPromptPart warm = { .ids = ids, .n_ids = MIN (16u, n_prompt) };
  OlPromptPart prompt = { .ids = ids, .n_ids = n_prompt };
  gboolean ok = ol_session_prefill (s, &warm, 1, logits, error);
  ol_session_reset (s);
  double t0 = bench_clock (b);
  ok = ok && ol_session_prefill (s, &prompt, 1, logits, error);
  double t_prefill = bench_clock (b) - t0;
  ok = ok && ol_session_decode (s, ids[n_prompt], logits, error);
  double t1 = bench_clock (b);
  for (guint i = 0; ok && i < decode; i++)
    ok = ol_session_decode (s, ids[n_prompt + 1 + i], logits, error);
  double t_decode = bench_clock (b) - t1;
  ol_session_free (s);
  if (!ok)
    return FALSE;
  double bytes = weight_bytes (sh, type), roof = b->peak_bytes_per_s / bytes;
  double decode_rate = decode / t_decode;
  printf ("%-6s %6u %8u %12.1f %12.2f %12.1f %12.2f %9.0f%%\n", ol_type_name (type), ctx, n_prompt,
          n_prompt / t_prefill, decode_rate, bytes / 1e6, roof, 100 * decode_rate / roof);
  fflush (stdout);
  return TRUE;
}

static gboolean
parse_list (const char *text, gboolean types, GArray *out, GError **error)
{
  g_auto (GStrv) items = g_strsplit (text, ",", -1);
  for (guint i = 0; items[i]; i++) {
    OlType t;
    guint64 v;
    gboolean ok = types ? ol_type_from_name (items[i], &t) &&
                          (t == OL_TYPE_F16 || t == OL_TYPE_Q8_0 || t == OL_TYPE_Q4_0)
                        : g_ascii_string_to_unsigned (items[i], 10, 64, 1u << 20, &v, NULL);
    if (!ok) {
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "'%s': expected %s", items[i],
                   types ? "f16, q8_0 or q4_0" : "a context length of at least 64");
      return FALSE;
    }
    guint value = types ? (guint) t : (guint) v;
    g_array_append_val (out, value);
  }
  return TRUE;
}

static gboolean
run (Bench *b, const Shape *sh, GArray *types, GArray *ctxs, guint decode, GError **error)
{
  g_autofree char *report = ol_device_describe (b->dev);
  printf ("%s\n", report);
  if (!bench_peaks (b, error))
    return FALSE;
  printf ("\nrandom LLaMA: dim %u, %u layers, %u heads of 128, FFN %u, vocabulary %u, KV cache f16\n",
          sh->dim, sh->layers, sh->heads, sh->ffn, N_VOCAB);
  printf ("%-6s %6s %8s %12s %12s %12s %12s %10s\n", "type", "ctx", "prompt", "prefill t/s", "decode t/s",
          "MB/token", "roofline t/s", "of roof");
  for (guint i = 0; i < types->len; i++) {
    OlType type = g_array_index (types, guint, i);
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp ("onellm-bench-XXXXXX.gguf", &path, error);
    if (fd < 0)
      return FALSE;
    close (fd);
    OlModel *model = write_model (path, sh, type, error) ? ol_model_new (b->dev, path, error) : NULL;
    g_unlink (path);
    gboolean ok = model != NULL;
    for (guint c = 0; ok && c < ctxs->len; c++)
      ok = run_context (b, model, sh, type, g_array_index (ctxs, guint, c), decode, error);
    if (model)
      ol_model_free (model);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

int
bench_llm (int argc, char **argv)
{
  g_autofree char *device = NULL, *types_text = NULL, *ctx_text = NULL;
  gboolean quick = FALSE, cpu_time = FALSE;
  int dim = 2048, layers = 8, decode = 16;
  GOptionEntry entries[] = {
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device: index or part of the name", "SEL" },
    { "types", 't', 0, G_OPTION_ARG_STRING, &types_text, "weight types (default f16,q8_0,q4_0)", "LIST" },
    { "ctx", 'c', 0, G_OPTION_ARG_STRING, &ctx_text, "context lengths (default 512,2048)", "LIST" },
    { "dim", 0, 0, G_OPTION_ARG_INT, &dim, "model width, a multiple of 128 (default 2048)", "D" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "layers (default 8)", "N" },
    { "decode", 0, 0, G_OPTION_ARG_INT, &decode, "timed decode steps (default 16)", "N" },
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "width 256, 2 layers, context 128: proves it runs", NULL },
    { "cpu-time", 0, 0, G_OPTION_ARG_NONE, &cpu_time, "time by process CPU time over the cores (CPU drivers on a "
      "shared machine)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- prefill and decode speed of a LLaMA model");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
      "A random LLaMA GGUF (head size 128, FFN width as LLaMA's rule, vocabulary 32000, F16 KV cache)\n"
      "is written to a temporary file for each weight type. Per context C: a prompt of C - N - 1 tokens\n"
      "is prefilled in one call, then N decode steps are timed. 'roofline' is the decode rate at which\n"
      "the weights of one token (MB) stream at the copy bandwidth measured at the start.");
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) types = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) ctxs = g_array_new (FALSE, FALSE, sizeof (guint));
  gboolean ok = g_option_context_parse (ctx, &argc, &argv, &error);
  if (quick) {
    dim = 256;
    layers = 2;
  }
  ok = ok && parse_list (types_text ? types_text : "f16,q8_0,q4_0", TRUE, types, &error) &&
        parse_list (ctx_text ? ctx_text : quick ? "128" : "512,2048", FALSE, ctxs, &error);
  if (ok && (dim < 128 || dim % 128 != 0 || layers < 1 || decode < 1)) {
    g_set_error (&error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "--dim must be a multiple of 128, --layers and --decode at least 1");
    ok = FALSE;
  }
  for (guint i = 0; ok && i < ctxs->len; i++)
    if (g_array_index (ctxs, guint, i) < (guint) decode + 17) {
      g_set_error (&error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "context %u leaves no prompt before %d "
                   "decode steps", g_array_index (ctxs, guint, i), decode);
      ok = FALSE;
    }
  if (ok) {
    /* LLaMA's FFN width: 2/3 of 4·dim, rounded up to a multiple of 256. */
    Shape sh = { dim, layers, dim / 128, (2 * 4 * dim / 3 + 255) / 256 * 256 };
    Bench b = { .quick = quick, .runs = 3, .cpu_time = cpu_time };
    ok = (b.dev = ol_device_new (device, &error)) != NULL && run (&b, &sh, types, ctxs, decode, &error);
    if (b.dev)
      ol_device_free (b.dev);
  }
  if (ok)
    return 0;
  fprintf (stderr, "onellm-bench: %s\n", error ? error->message : "unknown error");
  return 1;
}

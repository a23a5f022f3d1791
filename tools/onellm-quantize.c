/* onellm-quantize: rewrites a GGUF model with its large matrices in F16, Q8_0 or Q4_0 (see docs/model-format.md). */
#include "onellm.h"

#include <stdio.h>
#include <string.h>

/* The weight matrices of linear layers: the LLM's and the UPM experts' blocks, CLIP's blocks, the
 * per-modality projections, the fMRI tokenizer, token embedding and output head. Everything else
 * (norms, biases, tags, resample tokens, positional and class embeddings, convolution kernels and
 * the routers, whose outputs are constants computed once) keeps its precision. */
static const char *const matrix_patterns[] = {
  "token_embd.weight", "output.weight",
  "*blk.*.attn_q.weight", "*blk.*.attn_k.weight", "*blk.*.attn_v.weight", "*blk.*.attn_output.weight",
  "*blk.*.ffn_gate.weight", "*blk.*.ffn_up.weight", "*blk.*.ffn_down.weight",
  "clip.blk.*.attn_qkv.weight", "clip.blk.*.attn_out.weight",
  "mod.*.proj1.weight", "mod.*.proj2.weight", "mod.fmri.linear.weight",
};

/* The one matrix whose rows may be padded with zeros to whole blocks: the engine zero-pads the fMRI input
 * vector to the weight's row length (onellm.modality.fmri.voxel_count keeps the real count), and 15724 voxels
 * are not a multiple of 32. Any other matrix with partial blocks stays F16, since its input cannot grow. */
static const char fmri_matrix[] = "mod.fmri.linear.weight";

/* llama.cpp's general.file_type values */
static guint32
file_type (OlType type)
{
  switch (type) {
    case OL_TYPE_F16: return 1;
    case OL_TYPE_Q4_0: return 2;
    case OL_TYPE_Q8_0: return 7;
    default: return 0;
  }
}

static gboolean
is_matrix (const OlGgufTensor *t)
{
  if (t->n_dims != 2)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (matrix_patterns); i++)
    if (g_pattern_match_simple (matrix_patterns[i], t->name))
      return TRUE;
  return FALSE;
}

/* The type a tensor gets when the model is quantized to target. */
static OlType
choose_type (const OlGgufTensor *t, OlType target)
{
  if (t->type == OL_TYPE_I32 || ol_type_is_quantized (t->type))
    return t->type;
  if (is_matrix (t) && (t->ne[0] % ol_type_block_size (target) == 0 || strcmp (t->name, fmri_matrix) == 0)) {
    /* llama.cpp gives the output head more bits than Q4_0 (Q6_K there; Q8_0 is the nearest here) */
    if (target == OL_TYPE_Q4_0 && strcmp (t->name, "output.weight") == 0)
      return OL_TYPE_Q8_0;
    return target;
  }
  /* vectors stay as they are; other F32 arrays (embeddings, kernels, routers) halve to F16 */
  if (t->n_dims >= 2 && t->type == OL_TYPE_F32)
    return OL_TYPE_F16;
  return t->type;
}

/* Row length of the tensor written as type: the fMRI matrix's rows grow to whole blocks. */
static gint64
out_row_length (const OlGgufTensor *t, OlType type)
{
  gint64 block = ol_type_block_size (type);
  if (strcmp (t->name, fmri_matrix) == 0 && t->ne[0] % block != 0)
    return (t->ne[0] / block + 1) * block;
  return t->ne[0];
}

typedef struct {
  const OlGguf *file;
  const OlGgufTensor *src;
  OlType type;
  gint64 ne0;     /* row length written: src->ne[0], or padded with zeros to whole blocks */
} Job;

typedef struct {
  const Job *job;
  guint8 *dst;
  gint64 first_row, n_rows;
} Slice;

/* Converts rows through F32, a bounded number at a time, zero-filling the padding of each row. */
static gpointer
convert_slice (gpointer data)
{
  const Slice *s = data;
  const OlGgufTensor *t = s->job->src;
  gint64 ne0 = s->job->ne0;
  guint64 src_row, dst_row;
  ol_type_row_bytes (t->type, t->ne[0], &src_row, NULL);
  ol_type_row_bytes (s->job->type, ne0, &dst_row, NULL);
  gint64 step = MAX (1, (1 << 20) / MAX (ne0, 1));
  float *scratch = g_new0 (float, step * ne0);
  for (gint64 r = s->first_row; r < s->first_row + s->n_rows; r += step) {
    gint64 n = MIN (step, s->first_row + s->n_rows - r);
    const guint8 *src = (const guint8 *) t->data + r * src_row;
    if (ne0 == t->ne[0])
      ol_type_dequantize (t->type, src, scratch, n * ne0);
    else
      for (gint64 i = 0; i < n; i++)
        ol_type_dequantize (t->type, src + i * src_row, scratch + i * ne0, t->ne[0]);
    ol_type_quantize (s->job->type, scratch, s->dst + r * dst_row, n * ne0);
  }
  g_free (scratch);
  return NULL;
}

static gboolean
fill (void *dst, guint64 n_bytes, gpointer user_data, GError **error)
{
  const Job *job = user_data;
  const OlGgufTensor *t = job->src;
  if (job->type == t->type) {
    memcpy (dst, t->data, n_bytes);
    ol_gguf_drop_pages (job->file, t);
    return TRUE;
  }
  gint64 rows = ol_gguf_tensor_n_elements (t) / MAX (t->ne[0], 1);
  guint n_threads = ol_gguf_tensor_n_elements (t) < (1 << 22) ? 1 : MIN ((guint) rows, g_get_num_processors ());
  Slice *slices = g_new (Slice, n_threads);
  GThread **threads = g_new (GThread *, n_threads);
  for (guint i = 0; i < n_threads; i++) {
    slices[i] = (Slice) { job, dst, rows * i / n_threads, rows * (i + 1) / n_threads - rows * i / n_threads };
    threads[i] = n_threads == 1 ? NULL : g_thread_new ("quantize", convert_slice, &slices[i]);
  }
  if (n_threads == 1)
    convert_slice (&slices[0]);
  for (guint i = 0; i < n_threads && n_threads > 1; i++)
    g_thread_join (threads[i]);
  g_free (threads);
  g_free (slices);
  ol_gguf_drop_pages (job->file, t);
  return TRUE;
}

static int
fail (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

static int
fail (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "onellm-quantize: %s\n", msg);
  return 1;
}

int
main (int argc, char **argv)
{
  OlType target;
  if (argc != 4 || !ol_type_from_name (argv[3], &target)
      || (target != OL_TYPE_F16 && target != OL_TYPE_Q8_0 && target != OL_TYPE_Q4_0)) {
    fprintf (stderr, "usage: onellm-quantize IN.gguf OUT.gguf f16|q8_0|q4_0\n"
                     "Quantizes the weight matrices of a GGUF model (see docs/model-format.md).\n");
    return 2;
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) in = ol_gguf_open (argv[1], &error);
  if (in == NULL)
    return fail ("%s", error->message);

  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  if (ol_gguf_alignment (in) != OL_GGUF_DEFAULT_ALIGNMENT)
    ol_gguf_writer_set_alignment (w, ol_gguf_alignment (in));
  for (gsize i = 0; i < ol_gguf_n_keys (in); i++) {
    OlGgufValue v;
    ol_gguf_get_value (in, ol_gguf_key (in, i), &v, NULL);
    ol_gguf_writer_set_value (w, ol_gguf_key (in, i), &v);
  }
  ol_gguf_writer_set_u32 (w, "general.file_type", file_type (target));
  if (ol_type_is_quantized (target))
    ol_gguf_writer_set_u32 (w, "general.quantization_version", 2);

  gsize n = ol_gguf_n_tensors (in);
  g_autofree Job *jobs = g_new (Job, n);
  guint counts[3] = { 0 };
  guint64 in_bytes = 0, out_bytes = 0;
  for (gsize i = 0; i < n; i++) {
    const OlGgufTensor *t = ol_gguf_tensor (in, i);
    OlType type = choose_type (t, target);
    jobs[i] = (Job) { in, t, type, out_row_length (t, type) };
    if (ol_type_is_quantized (t->type) && t->type != target && is_matrix (t))
      return fail ("%s: tensor %s is %s already; quantize from an f32, f16 or bf16 model", argv[1], t->name,
                   ol_type_name (t->type));
    gint64 ne[G_N_ELEMENTS (t->ne)];
    memcpy (ne, t->ne, sizeof ne);
    ne[0] = jobs[i].ne0;
    if (!ol_gguf_writer_add_tensor_func (w, t->name, jobs[i].type, MAX (t->n_dims, 1), ne, fill, &jobs[i], &error))
      return fail ("%s", error->message);
    guint64 row;
    ol_type_row_bytes (jobs[i].type, ne[0], &row, NULL);
    out_bytes += row * (ol_gguf_tensor_n_elements (t) / MAX (t->ne[0], 1));
    in_bytes += t->n_bytes;
    counts[jobs[i].type == target ? 0 : jobs[i].type == t->type ? 2 : 1]++;
  }
  fprintf (stderr, "onellm-quantize: %s -> %s: %u tensors to %s, %u to another type, %u unchanged\n",
           argv[1], argv[2], counts[0], ol_type_name (target), counts[1], counts[2]);
  if (!ol_gguf_writer_write (w, argv[2], &error))
    return fail ("%s", error->message);
  g_autofree char *before = g_format_size (in_bytes);
  g_autofree char *after = g_format_size (out_bytes);
  fprintf (stderr, "onellm-quantize: tensor data %s -> %s\n", before, after);
  return 0;
}

/* onellm-cli info: what a GGUF model file holds (architecture, sizes, modalities, tensors by type). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* Values of keys that may be absent print as "?". */
static char *
value_text (const OlGguf *g, const char *key)
{
  OlGgufValue v;
  if (!ol_gguf_get_value (g, key, &v, NULL))
    return g_strdup ("?");
  guint64 u = 0;
  for (gsize i = 0; i < v.size && i < 8; i++)
    u |= (guint64) v.data[i] << (8 * i);
  float f;
  double d;
  switch (v.type) {
    case OL_GGUF_TYPE_UINT8: case OL_GGUF_TYPE_UINT16: case OL_GGUF_TYPE_UINT32: case OL_GGUF_TYPE_UINT64:
      return g_strdup_printf ("%" G_GUINT64_FORMAT, u);
    case OL_GGUF_TYPE_INT8: case OL_GGUF_TYPE_INT16: case OL_GGUF_TYPE_INT32: case OL_GGUF_TYPE_INT64:
      if (v.size < 8 && (u >> (8 * v.size - 1)) & 1)
        u |= G_MAXUINT64 << (8 * v.size);   /* sign-extend */
      return g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) u);
    case OL_GGUF_TYPE_FLOAT32:
      memcpy (&f, v.data, 4);
      return g_strdup_printf ("%g", f);
    case OL_GGUF_TYPE_FLOAT64:
      memcpy (&d, v.data, 8);
      return g_strdup_printf ("%g", d);
    case OL_GGUF_TYPE_BOOL:
      return g_strdup (v.data[0] ? "true" : "false");
    case OL_GGUF_TYPE_STRING: {
      g_autofree char *str = g_strndup ((const char *) v.data, MIN (v.size, 60));
      g_autofree char *esc = g_strescape (str, "\xe2\x96\x81");
      return g_strdup_printf ("\"%s\"%s", esc, v.size > 60 ? "..." : "");
    }
    case OL_GGUF_TYPE_ARRAY:
      return g_strdup_printf ("[%" G_GUINT64_FORMAT " x %s]", v.n, ol_gguf_type_name (v.elem_type));
    default:
      return g_strdup ("?");
  }
}

static char *
arch_value (const OlGguf *g, const char *arch, const char *key)
{
  g_autofree char *full = g_strdup_printf ("%s.%s", arch, key);
  return value_text (g, full);
}

static char *
human_size (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_DEFAULT);
}

static void
print_modalities (const OlGguf *g, const char *arch)
{
  g_autofree char *key = g_strdup_printf ("%s.modalities", arch);
  const char *const *mods;
  gsize n;
  if (!ol_gguf_get_string_array (g, key, &mods, &n, NULL))
    return;
  printf ("modalities:  ");
  for (gsize i = 0; i < n; i++) {
    g_autofree char *tk = g_strdup_printf ("modality.%s.token_count", mods[i]);
    g_autofree char *fk = g_strdup_printf ("modality.%s.frames", mods[i]);
    g_autofree char *tokens = arch_value (g, arch, tk);
    g_autofree char *frames = arch_value (g, arch, fk);
    printf ("%s%s (%s tokens x %s)", i ? ", " : "", mods[i], tokens, frames);
  }
  printf ("\n");
}

int
cli_info (int argc, char **argv)
{
  gboolean list_tensors = FALSE, list_keys = FALSE;
  GOptionEntry entries[] = {
    { "tensors", 't', 0, G_OPTION_ARG_NONE, &list_tensors, "list every tensor", NULL },
    { "metadata", 'm', 0, G_OPTION_ARG_NONE, &list_keys, "list every metadata key", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("MODEL.gguf - describe a model file");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_fail_error (g_steal_pointer (&error));
  if (argc != 2)
    return cli_fail ("info needs one model file (see --help)");

  g_autoptr (OlGguf) g = ol_gguf_open (argv[1], &error);
  if (g == NULL)
    return cli_fail_error (g_steal_pointer (&error));

  g_autofree char *size = human_size (ol_gguf_file_size (g));
  printf ("file:        %s (%s, GGUF v%u, alignment %u)\n", argv[1], size, ol_gguf_version (g),
          ol_gguf_alignment (g));
  const char *arch = "?", *name = NULL;
  ol_gguf_get_string (g, "general.architecture", &arch, NULL);
  ol_gguf_get_string (g, "general.name", &name, NULL);
  printf ("architecture: %s%s%s\n", arch, name ? ", name " : "", name ? name : "");

  g_autofree char *layers = arch_value (g, arch, "block_count");
  g_autofree char *width = arch_value (g, arch, "embedding_length");
  g_autofree char *heads = arch_value (g, arch, "attention.head_count");
  g_autofree char *kv = arch_value (g, arch, "attention.head_count_kv");
  g_autofree char *ffn = arch_value (g, arch, "feed_forward_length");
  g_autofree char *ctxlen = arch_value (g, arch, "context_length");
  g_autofree char *eps = arch_value (g, arch, "attention.layer_norm_rms_epsilon");
  g_autofree char *rope = arch_value (g, arch, "rope.freq_base");
  printf ("LLM:         %s layers, width %s, %s heads (%s kv), FFN %s, context %s, RMS eps %s, rope base %s\n",
          layers, width, heads, kv, ffn, ctxlen, eps, rope);

  g_autofree char *clip_key = g_strdup_printf ("%s.clip.block_count", arch);
  if (ol_gguf_has_key (g, clip_key)) {
    g_autofree char *cl = arch_value (g, arch, "clip.block_count");
    g_autofree char *cw = arch_value (g, arch, "clip.embedding_length");
    g_autofree char *ch = arch_value (g, arch, "clip.attention.head_count");
    g_autofree char *cf = arch_value (g, arch, "clip.feed_forward_length");
    g_autofree char *cp = arch_value (g, arch, "clip.patch_size");
    g_autofree char *ci = arch_value (g, arch, "clip.image_size");
    printf ("CLIP:        %s layers, width %s, %s heads, MLP %s, patch %s, image %s\n", cl, cw, ch, cf, cp, ci);
    g_autofree char *ue = arch_value (g, arch, "upm.expert_count");
    g_autofree char *ub = arch_value (g, arch, "upm.block_count");
    g_autofree char *uw = arch_value (g, arch, "upm.embedding_length");
    g_autofree char *uh = arch_value (g, arch, "upm.attention.head_count");
    g_autofree char *uf = arch_value (g, arch, "upm.feed_forward_length");
    g_autofree char *ur = arch_value (g, arch, "upm.resample_token_count");
    printf ("UPM:         %s experts x %s blocks, width %s, %s heads, FFN %s, %s resample tokens\n",
            ue, ub, uw, uh, uf, ur);
    print_modalities (g, arch);
  }

  const char *const *tokens;
  gsize n_tokens = 0;
  if (ol_gguf_get_string_array (g, "tokenizer.ggml.tokens", &tokens, &n_tokens, NULL)) {
    g_autofree char *model = value_text (g, "tokenizer.ggml.model");
    g_autofree char *bos = value_text (g, "tokenizer.ggml.bos_token_id");
    g_autofree char *eos = value_text (g, "tokenizer.ggml.eos_token_id");
    printf ("tokenizer:   %s, %" G_GSIZE_FORMAT " tokens, BOS %s, EOS %s\n", model, n_tokens, bos, eos);
  }

  /* counts and bytes per type, in the order types.c lists them */
  const OlType types[] = { OL_TYPE_F32, OL_TYPE_F16, OL_TYPE_BF16, OL_TYPE_Q8_0, OL_TYPE_Q4_0, OL_TYPE_I32 };
  guint counts[G_N_ELEMENTS (types)] = { 0 };
  guint64 bytes = 0, elements = 0;
  for (gsize i = 0; i < ol_gguf_n_tensors (g); i++) {
    const OlGgufTensor *t = ol_gguf_tensor (g, i);
    for (guint k = 0; k < G_N_ELEMENTS (types); k++)
      counts[k] += t->type == types[k];
    bytes += t->n_bytes;
    elements += ol_gguf_tensor_n_elements (t);
  }
  g_autofree char *data = human_size (bytes);
  printf ("tensors:     %" G_GSIZE_FORMAT " (", ol_gguf_n_tensors (g));
  const char *sep = "";
  for (guint k = 0; k < G_N_ELEMENTS (types); k++) {
    if (counts[k] > 0) {
      printf ("%s%s %u", sep, ol_type_name (types[k]), counts[k]);
      sep = ", ";
    }
  }
  printf ("), %" G_GUINT64_FORMAT " parameters, %s of data\n", elements, data);

  if (list_keys) {
    printf ("\nmetadata:\n");
    for (gsize i = 0; i < ol_gguf_n_keys (g); i++) {
      g_autofree char *v = value_text (g, ol_gguf_key (g, i));
      printf ("  %-48s %s\n", ol_gguf_key (g, i), v);
    }
  }
  if (list_tensors) {
    printf ("\ntensors:\n");
    for (gsize i = 0; i < ol_gguf_n_tensors (g); i++) {
      const OlGgufTensor *t = ol_gguf_tensor (g, i);
      GString *shape = g_string_new (NULL);
      for (guint d = 0; d < MAX (t->n_dims, 1); d++)
        g_string_append_printf (shape, "%s%" G_GINT64_FORMAT, d ? ", " : "", t->ne[d]);
      printf ("  %-48s %-5s [%s]\n", t->name, ol_type_name (t->type), shape->str);
      g_string_free (shape, TRUE);
    }
  }
  return 0;
}

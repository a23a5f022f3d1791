/* onellm-cli tokenize / detokenize: text to token ids and back with a model's vocabulary. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Errors of the GGUF reader name the file; those about the vocabulary's content do not. */
static int
fail_for_file (const char *path, GError *error)
{
  if (!g_str_has_prefix (error->message, path))
    g_prefix_error (&error, "%s: ", path);
  return cli_fail_error (error);
}

/* A GGUF model file (by its magic) or a sentencepiece tokenizer.model. */
static OlTokenizer *
load_tokenizer (const char *path, GError **error)
{
  FILE *f = fopen (path, "rb");
  if (f == NULL) {
    int err = errno;
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s: %s", path, g_strerror (err));
    return NULL;
  }
  char magic[4] = { 0 };
  gsize got = fread (magic, 1, sizeof magic, f);
  fclose (f);
  if (got != sizeof magic || memcmp (magic, "GGUF", 4) != 0)
    return ol_tokenizer_new_from_file (path, error);
  g_autoptr (OlGguf) gguf = ol_gguf_open (path, error);
  if (gguf == NULL)
    return NULL;
  return ol_tokenizer_new_from_gguf (gguf, error);
}

/* GOption leaves the "--" that lets a text or id begin with '-' (e.g. "-5 degrees"); drops it. */
static void
drop_separator (int *argc, char **argv)
{
  if (*argc > 1 && strcmp (argv[1], "--") == 0) {
    memmove (argv + 1, argv + 2, (*argc - 1) * sizeof (char *));
    (*argc)--;
  }
}

static const char model_help[] = "a GGUF model file, or a sentencepiece tokenizer.model";

int
cli_tokenize (int argc, char **argv)
{
  g_autofree char *model = NULL;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, model_help, "M" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("TEXT - print the token ids of TEXT, BOS first");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_fail_error (g_steal_pointer (&error));
  drop_separator (&argc, argv);
  if (model == NULL)
    return cli_fail ("tokenize: --model is required");
  if (argc != 2)
    return cli_fail ("tokenize: expected one TEXT argument, got %d", argc - 1);

  OlTokenizer *tok = load_tokenizer (model, &error);
  if (tok == NULL)
    return fail_for_file (model, g_steal_pointer (&error));
  gsize n;
  g_autofree gint32 *ids = ol_tokenizer_encode (tok, argv[1], -1, TRUE, FALSE, &n);
  for (gsize i = 0; i < n; i++)
    printf ("%s%d", i ? " " : "", ids[i]);
  printf ("\n");
  ol_tokenizer_free (tok);
  return 0;
}

int
cli_detokenize (int argc, char **argv)
{
  g_autofree char *model = NULL;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, model_help, "M" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("ID... - print the text of token ids");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx, "Arguments may hold several ids separated by spaces, as tokenize "
                                         "prints them; control tokens such as BOS print nothing.");
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_fail_error (g_steal_pointer (&error));
  drop_separator (&argc, argv);
  if (model == NULL)
    return cli_fail ("detokenize: --model is required");

  OlTokenizer *tok = load_tokenizer (model, &error);
  if (tok == NULL)
    return fail_for_file (model, g_steal_pointer (&error));
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  int status = 0;
  for (int a = 1; a < argc && status == 0; a++) {
    g_auto (GStrv) words = g_strsplit_set (argv[a], " \t\n", -1);
    for (guint w = 0; words[w] != NULL && status == 0; w++) {
      if (words[w][0] == 0)
        continue;
      guint64 id;
      if (!g_ascii_string_to_unsigned (words[w], 10, 0, ol_tokenizer_n_vocab (tok) - 1, &id, NULL)) {
        status = cli_fail ("detokenize: '%s' is not a token id (0 to %" G_GSIZE_FORMAT ")", words[w],
                           ol_tokenizer_n_vocab (tok) - 1);
        break;
      }
      gint32 v = (gint32) id;
      g_array_append_val (ids, v);
    }
  }
  if (status == 0 && ids->len == 0)
    status = cli_fail ("detokenize: no token ids given");
  if (status == 0) {
    gsize len;
    g_autofree char *text = ol_tokenizer_decode (tok, (const gint32 *) ids->data, ids->len, &len);
    fwrite (text, 1, len, stdout);
    printf ("\n");
  }
  g_array_unref (ids);
  ol_tokenizer_free (tok);
  return status;
}

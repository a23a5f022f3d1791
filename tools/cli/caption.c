/* onellm-cli caption and generate: one chat turn about an input, or about text alone, streamed to stdout. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  char *model_path, *prompt, *position_mode;
  double temperature, top_p;
  int max_tokens;
  gint64 seed;
  gboolean ids;
  /* caption */
  char *modality;
  CliInput input;
} Options;

static void
options_clear (Options *o)
{
  g_free (o->model_path);
  g_free (o->prompt);
  g_free (o->position_mode);
  g_free (o->modality);
  g_free ((char *) o->input.path);
  g_free ((char *) o->input.rgb_path);
}

static gboolean
print_piece (const char *text, gint32 token, gpointer user_data)
{
  (void) token;
  (void) user_data;
  fputs (text, stdout);
  fflush (stdout);
  return TRUE;
}

/* Parses the options both commands share plus extra; fills params. Returns -1 to go on, else the exit
 * status (a usage error). */
static int
parse (int *argc, char ***argv, const char *summary, const GOptionEntry *extra, Options *o,
       OlSessionParams *sp, OlGenerateParams *gp)
{
  ol_generate_params_init (gp);
  ol_session_params_init (sp);
  o->temperature = gp->temperature;
  o->top_p = gp->top_p;
  o->max_tokens = gp->max_tokens;
  o->seed = gp->seed;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &o->model_path,
      "OneLLM or LLaMA GGUF model (default: $ONELLM_MODEL, else the shipped default model)", "M" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &o->prompt, "the question", "TEXT" },
    { "temperature", 't', 0, G_OPTION_ARG_DOUBLE, &o->temperature,
      "sampling temperature, 0 = greedy (default 0.1)", "T" },
    { "top-p", 0, 0, G_OPTION_ARG_DOUBLE, &o->top_p, "nucleus mass (default 0.75)", "P" },
    { "max-tokens", 'n', 0, G_OPTION_ARG_INT, &o->max_tokens, "most tokens to generate (default 128)", "N" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &o->seed, "sampler seed (default 1)", "S" },
    { "position-mode", 0, 0, G_OPTION_ARG_STRING, &o->position_mode,
      "official (default: the released code's positions, spec 6.4) or correct", "MODE" },
    { "ids", 0, 0, G_OPTION_ARG_NONE, &o->ids, "also print the generated token ids on a second line", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (summary);
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (extra)
    g_option_context_add_main_entries (ctx, extra, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, argc, argv, &error))
    return cli_fail ("%s", error->message);
  if (*argc != 1)
    return cli_fail ("%s takes no positional arguments (see --help)", (*argv)[0]);
  if (o->model_path == NULL)
    o->model_path = ol_model_default_path ();
  if (o->position_mode == NULL || strcmp (o->position_mode, "official") == 0)
    sp->position_mode = OL_POSITION_OFFICIAL;
  else if (strcmp (o->position_mode, "correct") == 0)
    sp->position_mode = OL_POSITION_CORRECT;
  else
    return cli_fail ("unknown position mode '%s' (official or correct)", o->position_mode);
  if (o->max_tokens < 1)
    return cli_fail ("--max-tokens must be at least 1");
  if (o->temperature < 0 || o->top_p < 0 || o->top_p > 1)
    return cli_fail ("--temperature must be at least 0 and --top-p between 0 and 1");
  gp->temperature = o->temperature;
  gp->top_p = o->top_p;
  gp->max_tokens = o->max_tokens;
  gp->seed = o->seed;
  return -1;
}

/* One chat turn with the blocks (if any), the answer streamed, then --ids. */
static int
answer (OlModel *model, const Options *o, const OlSessionParams *sp, const OlGenerateParams *gp,
        const char *question, const float *block)
{
  g_autoptr (GError) error = NULL;
  OlSession *s = ol_session_new (model, sp, &error);
  if (s == NULL)
    return cli_fail_error (g_steal_pointer (&error));
  OlGenerateResult result = { 0 };
  const float *blocks[] = { block };
  gboolean ok = ol_session_chat (s, question, blocks, block ? 1 : 0, gp, print_piece, NULL, NULL, &result,
                                 &error);
  fputs ("\n", stdout);
  if (ok && o->ids) {
    for (guint i = 0; i < result.tokens->len; i++)
      printf ("%s%d", i ? " " : "", g_array_index (result.tokens, gint32, i));
    fputs ("\n", stdout);
  }
  fflush (stdout);
  ol_generate_result_clear (&result);
  ol_session_free (s);
  return ok ? 0 : cli_fail_error (g_steal_pointer (&error));
}

static OlModel *
open_model (const char *path, OlDevice **dev, GError **error)
{
  *dev = ol_device_new (NULL, error);
  if (*dev == NULL)
    return NULL;
  OlModel *model = ol_model_new (*dev, path, error);
  if (model == NULL)
    g_clear_pointer (dev, ol_device_free);
  return model;
}

int
cli_generate (int argc, char **argv)
{
  Options o = { 0 };
  OlSessionParams sp;
  OlGenerateParams gp;
  int status = parse (&argc, &argv, "- answer a question with the language model alone", NULL, &o, &sp, &gp);
  if (status < 0 && o.prompt == NULL)
    status = cli_fail ("generate needs --prompt");
  if (status < 0) {
    g_autoptr (GError) error = NULL;
    OlDevice *dev;
    OlModel *model = open_model (o.model_path, &dev, &error);
    if (model == NULL) {
      status = cli_fail_error (g_steal_pointer (&error));
    } else {
      status = answer (model, &o, &sp, &gp, o.prompt, NULL);
      ol_model_free (model);
      ol_device_free (dev);
    }
  }
  options_clear (&o);
  return status;
}

int
cli_caption (int argc, char **argv)
{
  Options o = { .input.imu_rate = OL_IMU_RATE };
  OlSessionParams sp;
  OlGenerateParams gp;
  GOptionEntry extra[] = {
    { "modality", 0, 0, G_OPTION_ARG_STRING, &o.modality,
      "image, video, audio, point, depth, normal, imu or fmri", "MOD" },
    CLI_INPUT_OPTIONS (&o.input),
    { NULL },
  };
  int status = parse (&argc, &argv, "- answer a question about one input (default: its caption prompt)",
                      extra, &o, &sp, &gp);
  OlModality m = OL_MODALITY_IMAGE;
  if (status < 0 && (o.modality == NULL || o.input.path == NULL))
    status = cli_fail ("caption needs --modality and --input");
  if (status < 0 && !ol_modality_from_name (o.modality, &m))
    status = cli_fail ("unknown modality '%s' (image, video, audio, point, depth, normal, imu, fmri)",
                       o.modality);
  if (status >= 0) {
    options_clear (&o);
    return status;
  }

  g_autoptr (GError) error = NULL;
  OlDevice *dev;
  OlModel *model = open_model (o.model_path, &dev, &error);
  if (model == NULL) {
    options_clear (&o);
    return cli_fail_error (g_steal_pointer (&error));
  }
  OlEncoder *enc = NULL;
  float *input = NULL, *block = NULL;
  guint n_dims;
  gint64 shape[OL_NPY_MAX_DIMS];
  if (!ol_model_has_modality (model, m)) {
    status = cli_fail ("%s: the model has no %s modality", o.model_path, ol_modality_name (m));
  } else if ((enc = ol_encoder_new (model, &error)) == NULL ||
             (input = cli_load_input (model, m, &o.input, &n_dims, shape, &error)) == NULL ||
             !ol_encoder_run (enc, m, input, n_dims, shape,
                              (block = g_new (float, ol_encoder_embeddings_size (enc))), &error)) {
    status = cli_fail_error (g_steal_pointer (&error));
  } else {
    const char *question = o.prompt ? o.prompt : ol_model_get_info (model)->modality[m].default_prompt;
    status = answer (model, &o, &sp, &gp, question, block);
  }
  g_free (input);
  g_free (block);
  ol_encoder_free (enc);
  ol_model_free (model);
  ol_device_free (dev);
  options_clear (&o);
  return status;
}

/* onellm-cli: runs the engine without a pipeline; the command set is a stable interface (docs/cli.md). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const CliCommand commands[] = {
  { "devices", "list Vulkan devices and describe the one the engine picks", cli_devices },
  { "info", "describe a GGUF model file: architecture, sizes, modalities, tensors", cli_info },
  { "tokenize", "print the token ids of a text (BOS first) with a model's vocabulary", cli_tokenize },
  { "detokenize", "print the text of token ids with a model's vocabulary", cli_detokenize },
  { "encode", "one image, video, audio, point cloud, depth/normal map, IMU or fMRI input to its LLM input block",
    cli_encode },
  { "caption", "answer a question about one input (default: caption it), streaming the answer", cli_caption },
  { "generate", "answer a text prompt with the language model alone, streaming the answer", cli_generate },
};

int
cli_fail (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "onellm-cli: %s\n", msg);
  return 1;
}

int
cli_fail_error (GError *error)
{
  int r = cli_fail ("%s", error ? error->message : "unknown error");
  g_clear_error (&error);
  return r;
}

static int
usage (FILE *out)
{
  fprintf (out, "usage: onellm-cli COMMAND [OPTIONS...]\n\ncommands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-12s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\n'onellm-cli COMMAND --help' describes a command's options.\n");
  return out == stderr ? 2 : 0;
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    return usage (stderr);
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    return usage (stdout);
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);
  fprintf (stderr, "onellm-cli: unknown command '%s'\n", argv[1]);
  return usage (stderr);
}

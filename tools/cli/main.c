/* onellm-cli: runs the engine without a pipeline; the command set is a stable interface (docs/cli.md). */
#include "cli.h"

#include <stdio.h>

static const ToolCommand commands[] = {
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

int
main (int argc, char **argv)
{
  return tool_command_main ("onellm-cli", commands, G_N_ELEMENTS (commands), argc, argv);
}

/* onellm-cli: the command table and helpers shared by its commands. */
#pragma once

#include "onellm.h"

typedef struct {
  const char *name;
  const char *summary;     /* one line for the usage text */
  int (*run) (int argc, char **argv);   /* argv[0] is the command name */
} CliCommand;

/* Prints "onellm-cli: <message>" on stderr and returns the exit status for failures. */
int cli_fail (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
int cli_fail_error (GError *error);

int cli_devices (int argc, char **argv);
int cli_info (int argc, char **argv);
int cli_tokenize (int argc, char **argv);
int cli_detokenize (int argc, char **argv);
int cli_encode (int argc, char **argv);

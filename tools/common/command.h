/* The command table of the "PROGRAM COMMAND [OPTIONS...]" tools (onellm-cli, onellm-bench). */
#pragma once

#include <glib.h>

typedef struct {
  const char *name;
  const char *summary;                  /* one line for the usage text */
  int (*run) (int argc, char **argv);   /* argv[0] is the command name */
} ToolCommand;

/* Runs the command argv[1] names. "--help", "-h" and "help" list the commands on stdout; no command lists them
 * on stderr, an unknown one is a one-line error; both return 2. */
int tool_command_main (const char *program, const ToolCommand *commands, gsize n_commands, int argc, char **argv);

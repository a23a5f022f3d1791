/* Command dispatch and usage text shared by onellm-cli and onellm-bench. */
#include "command.h"

#include <stdio.h>
#include <string.h>

static int
usage (FILE *out, const char *program, const ToolCommand *commands, gsize n_commands)
{
  fprintf (out, "usage: %s COMMAND [OPTIONS...]\n\ncommands:\n", program);
  for (gsize i = 0; i < n_commands; i++)
    fprintf (out, "  %-12s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\n'%s COMMAND --help' describes a command's options.\n", program);
  return out == stderr ? 2 : 0;
}

int
tool_command_main (const char *program, const ToolCommand *commands, gsize n_commands, int argc, char **argv)
{
  if (argc < 2)
    return usage (stderr, program, commands, n_commands);
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    return usage (stdout, program, commands, n_commands);
  for (gsize i = 0; i < n_commands; i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);
  fprintf (stderr, "%s: unknown command '%s' (see %s --help)\n", program, argv[1], program);
  return 2;
}

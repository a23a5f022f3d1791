/* onellm-bench: measures the device's peaks and the engine's kernels against them. */
#include "bench.h"
#include "command.h"

#include <stdio.h>

static int
fail (GError *error)
{
  fprintf (stderr, "onellm-bench: %s\n", error ? error->message : "unknown error");
  g_clear_error (&error);
  return 1;
}

static int
cmd_ops (int argc, char **argv)
{
  g_autofree char *device = NULL, *filter = NULL;
  gboolean quick = FALSE, cpu_time = FALSE;
  int repeat = 5;
  GOptionEntry entries[] = {
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device: index or part of the name "
      "(default: $ONELLM_VK_DEVICE, else the best)", "SEL" },
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "tiny shapes, one run each: proves every row runs", NULL },
    { "filter", 'f', 0, G_OPTION_ARG_STRING, &filter, "only rows whose 'op type shape' contains TEXT",
      "TEXT" },
    { "repeat", 'r', 0, G_OPTION_ARG_INT, &repeat, "timed runs per row, the fastest is reported (default 5)",
      "N" },
    { "cpu-time", 0, 0, G_OPTION_ARG_NONE, &cpu_time, "time by the process's CPU time divided by the cores "
      "(CPU drivers on a busy machine)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- time the engine's ops");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
      "Times are wall-clock around ol_graph_run (submit and wait), divided by the repetitions recorded\n"
      "in one graph; shapes are M x N x K of Y[M,N] = X[M,K] W[N,K]^T. 'of bw' and 'of flop' are the\n"
      "fractions of the copy bandwidth and multiply-add throughput measured at the start.");
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail (error);
  if (repeat < 1)
    return fail (g_error_new (OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "--repeat must be at least 1"));

  Bench b = { .quick = quick, .runs = quick ? 1 : (guint) repeat, .filter = filter, .cpu_time = cpu_time };
  guint n_rows;
  const BenchRow *rows = bench_op_rows (&n_rows);
  if (bench_n_selected (&b, rows, n_rows) == 0)
    return fail (g_error_new (OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "no row matches --filter '%s'", filter));
  b.dev = ol_device_new (device, &error);
  int status = 0;
  if (b.dev == NULL) {
    status = fail (error);
  } else {
    g_autofree char *report = ol_device_describe (b.dev);
    printf ("%s\n", report);
    if (!bench_peaks (&b, &error) || !bench_table (&b, rows, n_rows, &error))
      status = fail (error);
    ol_device_free (b.dev);
  }
  return status;
}

static const ToolCommand commands[] = {
  { "ops", "peak bandwidth and compute, then every op shape of OneLLM-7B against them", cmd_ops },
  { "llm", "prefill and decode tokens/s of a random LLaMA-shaped model against the roofline", bench_llm },
};

int
main (int argc, char **argv)
{
  return tool_command_main ("onellm-bench", commands, G_N_ELEMENTS (commands), argc, argv);
}

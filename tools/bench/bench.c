/* onellm-bench harness: peak bandwidth and compute of the device, timing of table rows, the printed table. */
#include "bench.h"

#include <math.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>

/* A timed run shorter than this is repeated within one recording, so that submission and wake-up
 * latency (tens of microseconds on GPUs) do not count as kernel time. */
#define MIN_RUN_S 0.02
#define MAX_REPS 2000u
/* Copies of a row's tensors are made until one pass streams this much (caches are far smaller). */
#define STREAM_BYTES (256.0 * 1024 * 1024)
#define MAX_INSTANCES 8u
#define PEAK_WORKGROUP 256u

OlTensor *
bench_tensor (BenchInstance *inst, OlType type, gint64 cols, gint64 rows, GError **error)
{
  g_return_val_if_fail (inst->n_tensors < BENCH_MAX_TENSORS, NULL);
  gint64 ne[2] = { cols, rows };
  OlTensor *t = ol_tensor_new (inst->dev, type, 2, ne, OL_MEMORY_DEVICE, error);
  if (t == NULL)
    return NULL;
  inst->t[inst->n_tensors++] = t;
  gsize n = (gsize) (cols * rows);
  g_autofree float *data = g_try_new (float, n);
  if (data == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY, "no host memory for %" G_GSIZE_FORMAT " floats", n);
    return NULL;
  }
  guint32 s = 0x9e3779b9u ^ (guint32) n;
  for (gsize i = 0; i < n; i++) {   /* xorshift32: fast, and the values do not matter */
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    data[i] = (float) s * (2.0f / 4294967296.0f) - 1.0f;
  }
  return ol_tensor_write_f32 (t, data, error) ? t : NULL;
}

static void
instance_clear (BenchInstance *inst)
{
  for (guint i = 0; i < inst->n_tensors; i++)
    ol_tensor_free (inst->t[i]);
  inst->n_tensors = 0;
}

/* Records reps repetitions of some work into g (between begin and end). */
typedef gboolean (*RecordReps) (OlGraph *g, gpointer data, guint reps);

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y ? 1 : 0;
}

static gboolean
record_graph (OlGraph *g, RecordReps rec, gpointer data, guint reps, GError **error)
{
  ol_graph_begin (g);
  rec (g, data, reps);
  return ol_graph_end (g, error);
}

/* Seconds of CPU time this process (with the CPU driver's threads) has used, over the cores. */
static double
cpu_seconds (void)
{
  struct rusage u;
  getrusage (RUSAGE_SELF, &u);
  double s = (double) (u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             (double) (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  return s / g_get_num_processors ();
}

double
bench_clock (const Bench *b)
{
  return b->cpu_time ? cpu_seconds () : (double) g_get_monotonic_time () * 1e-6;
}

static gboolean
run_timed (const Bench *b, OlGraph *g, double *seconds, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  double c0 = b->cpu_time ? cpu_seconds () : 0;
  if (!ol_graph_run (g, error))
    return FALSE;
  *seconds = b->cpu_time ? cpu_seconds () - c0 : (double) (g_get_monotonic_time () - t0) * 1e-6;
  return TRUE;
}

/* Wall time of one repetition: the fastest of b->runs runs of a recording of enough repetitions to
 * last MIN_RUN_S, after one untimed warm-up run; the fastest, because on a shared machine other load
 * only ever adds time. reps_multiple keeps repetitions a multiple of it. */
static gboolean
measure (Bench *b, RecordReps rec, gpointer data, guint reps_multiple, double *seconds, GError **error)
{
  g_autoptr (GError) local = NULL;
  OlGraph *g = ol_graph_new (b->dev, error);
  if (g == NULL)
    return FALSE;
  guint reps = reps_multiple;
  double t = 0;
  gboolean ok = record_graph (g, rec, data, reps, error) && ol_graph_run (g, error) && run_timed (b, g, &t, error);
  while (ok && !b->quick && t < MIN_RUN_S && reps < MAX_REPS) {
    double scale = t > 0 ? MIN_RUN_S * 1.2 / t : 100;
    guint want = (guint) MIN ((double) MAX_REPS, ceil (reps * scale));
    reps = MAX (reps + reps_multiple, (want + reps_multiple - 1) / reps_multiple * reps_multiple);
    ok = record_graph (g, rec, data, reps, error) && ol_graph_run (g, error) && run_timed (b, g, &t, error);
  }
  g_autofree double *times = g_new (double, b->runs);
  for (guint i = 0; ok && i < b->runs; i++)
    ok = run_timed (b, g, &times[i], error);
  ol_graph_free (g);
  if (!ok)
    return FALSE;
  qsort (times, b->runs, sizeof (double), compare_double);
  *seconds = times[0] / reps;
  return TRUE;
}

typedef struct {
  OlBuffer *src, *dst;
  guint64 vec4s;
  guint32 groups, workgroup, texels;
} CopyWork;

static gboolean
record_copy (OlGraph *g, gpointer data, guint reps)
{
  CopyWork *w = data;
  struct { guint32 n, iters; float a, b; } pc = { (guint32) w->vec4s };
  const guint32 spec[2] = { w->workgroup, w->texels };
  OlBinding bind[3];
  guint32 off;
  for (guint r = 0; r < reps; r++) {
    OlBuffer *from = r % 2 ? w->dst : w->src, *to = r % 2 ? w->src : w->dst;
    if (!ol_graph_bind (g, from, 0, w->vec4s * 16, FALSE, &bind[0], &off) ||
        !ol_graph_bind (g, to, 0, w->vec4s * 16, TRUE, &bind[1], &off) ||
        !ol_graph_bind_texels (g, from, 0, w->texels ? w->vec4s * 16 : 16, &bind[2], &off) ||
        !ol_graph_dispatch (g, "peak_copy", "peak_copy", spec, 2, bind, 3, &pc, sizeof (pc), w->groups, 1, 1))
      return FALSE;
  }
  return TRUE;
}

typedef struct {
  OlBuffer *out;
  guint32 groups, iters, chains;
} FmaWork;

static gboolean
record_fma (OlGraph *g, gpointer data, guint reps)
{
  FmaWork *w = data;
  const guint32 spec[2] = { PEAK_WORKGROUP, w->chains };
  struct { guint32 n, iters; float a, b; } pc = { w->groups * PEAK_WORKGROUP, w->iters, 0.999f, 1e-3f };
  OlBinding bind;
  guint32 off;
  for (guint r = 0; r < reps; r++)
    if (!ol_graph_bind (g, w->out, 0, (guint64) pc.n * 4, TRUE, &bind, &off) ||
        !ol_graph_dispatch (g, "peak_fma", "peak_fma", spec, 2, &bind, 1, &pc, sizeof (pc), w->groups, 1, 1))
      return FALSE;
  return TRUE;
}

static gboolean
peak_copy (Bench *b, double *bytes_per_s, gboolean *best_texels, GError **error)
{
  const OlDeviceCaps *c = ol_device_get_caps (b->dev);
  guint64 size = b->quick ? 1u << 20 : MIN (c->max_storage_buffer_range, 256u << 20) & ~(guint64) 255;
  CopyWork w = { .vec4s = size / 16, .workgroup = PEAK_WORKGROUP };
  w.src = ol_buffer_new (b->dev, size, OL_MEMORY_DEVICE, error);
  w.dst = w.src ? ol_buffer_new (b->dev, size, OL_MEMORY_DEVICE, error) : NULL;
  gboolean ok = w.dst && ol_buffer_zero (w.src, error) && ol_buffer_zero (w.dst, error);
  /* The best of a few grid sizes, reading the source as a storage buffer or as texels: one element
   * per invocation suits GPUs, a few long-running workgroups per core suit CPU drivers, where a
   * workgroup runs on one thread. */
  const guint64 one_each = MIN ((w.vec4s + w.workgroup - 1) / w.workgroup, c->max_workgroup_count[0]);
  const guint64 grids[] = { one_each, MIN (one_each, 4096), MIN (one_each, 256), MIN (one_each, 16) };
  *bytes_per_s = 0;
  for (guint i = 0; ok && i < 2 * G_N_ELEMENTS (grids); i++) {
    double t;
    w.groups = (guint32) grids[i / 2];
    w.texels = i % 2;
    ok = measure (b, record_copy, &w, 2, &t, error);
    if (ok && 2.0 * size / t > *bytes_per_s) {
      *bytes_per_s = 2.0 * size / t;
      *best_texels = w.texels;
    }
  }
  g_clear_pointer (&w.src, ol_buffer_free);
  g_clear_pointer (&w.dst, ol_buffer_free);
  return ok;
}

static gboolean
peak_fma (Bench *b, double *flops, guint *best_chains, GError **error)
{
  const OlDeviceCaps *c = ol_device_get_caps (b->dev);
  /* Enough invocations to fill any device; the loop length is what makes a run long enough. */
  FmaWork w = { .groups = b->quick ? 4 : MIN (c->max_workgroup_count[0], 1024), .iters = b->quick ? 16 : 512 };
  w.out = ol_buffer_new (b->dev, (guint64) w.groups * PEAK_WORKGROUP * 4, OL_MEMORY_DEVICE, error);
  /* The best of a few chain counts (CHAINS in shaders/peak.comp): a CPU driver runs an invocation's chains
   * one vector after another, so it needs as many as its registers hold to cover the latency, and spills
   * (an order of magnitude slower) beyond that. */
  static const guint32 chains[] = { 8, 16, 32 };
  gboolean ok = w.out != NULL;
  *flops = 0;
  for (guint i = 0; ok && i < G_N_ELEMENTS (chains); i++) {
    double t;
    w.chains = chains[i];
    ok = measure (b, record_fma, &w, 1, &t, error);
    double f = ok ? (double) w.groups * PEAK_WORKGROUP * w.iters * chains[i] * 2 / t : 0;
    if (f > *flops) {
      *flops = f;
      *best_chains = chains[i];
    }
  }
  g_clear_pointer (&w.out, ol_buffer_free);
  return ok;
}

gboolean
bench_peaks (Bench *b, GError **error)
{
  guint chains = 0;
  gboolean texels = FALSE;
  if (!peak_copy (b, &b->peak_bytes_per_s, &texels, error) || !peak_fma (b, &b->peak_flops, &chains, error))
    return FALSE;
  printf ("peak copy bandwidth: %.2f GB/s (read + written bytes of the copy kernel, source read as %s)\n",
          b->peak_bytes_per_s / 1e9, texels ? "texels" : "a storage buffer");
  printf ("peak compute: %.2f GFLOP/s (f32 multiply-add loop, %u chains per invocation)\n", b->peak_flops / 1e9,
          chains);
  return TRUE;
}

static char *
row_name (const BenchRow *row, const gint64 *dims)
{
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "%s %s ", row->op, ol_type_name (row->type));
  for (guint i = 0; i < G_N_ELEMENTS (row->dims) && dims[i] != 0; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? "x" : "", dims[i]);
  return g_string_free (s, FALSE);
}

typedef struct {
  BenchInstance *inst;
  guint n_inst;
} RowWork;

static gboolean
record_row (OlGraph *g, gpointer data, guint reps)
{
  RowWork *w = data;
  for (guint r = 0; r < reps; r++) {
    BenchInstance *inst = &w->inst[r % w->n_inst];
    if (!inst->row->record (g, inst))
      return FALSE;
  }
  return TRUE;
}

static guint64
instance_bytes (const BenchInstance *inst)
{
  guint64 n = 0;
  for (guint i = 0; i < inst->n_tensors; i++)
    n += ol_tensor_n_bytes (inst->t[i]);
  return n;
}

static gboolean
bench_row (Bench *b, const BenchRow *row, const char *name, GError **error)
{
  BenchInstance inst[MAX_INSTANCES] = { 0 };
  RowWork w = { inst, 1 };
  const gint64 *dims = b->quick ? row->quick : row->dims;
  inst[0] = (BenchInstance) { .dev = b->dev, .row = row, .dims = dims };
  gboolean ok = row->prepare (&inst[0], error);
  if (ok && !b->quick) {
    guint64 each = MAX (instance_bytes (&inst[0]), 1);
    guint64 limit = ol_device_get_memory_limit (b->dev), used = ol_device_get_memory_used (b->dev);
    guint64 room = limit > used ? (limit - used) / 2 / each : 0;
    w.n_inst = (guint) MIN (MIN ((guint64) MAX_INSTANCES, 1 + room), (guint64) ceil (STREAM_BYTES / each));
    w.n_inst = MAX (w.n_inst, 1);
  }
  for (guint i = 1; ok && i < w.n_inst; i++) {
    inst[i] = (BenchInstance) { .dev = b->dev, .row = row, .dims = dims };
    ok = row->prepare (&inst[i], error);
  }
  double t = 0;
  ok = ok && measure (b, record_row, &w, w.n_inst, &t, error);
  if (ok) {
    double gflops = inst[0].flops / t / 1e9, gbs = inst[0].bytes / t / 1e9;
    printf ("%-34s %10.1f %9.2f %9.2f %6.1f%% %6.1f%%\n", name, t * 1e6, gflops, gbs,
            100 * gbs * 1e9 / b->peak_bytes_per_s, 100 * gflops * 1e9 / b->peak_flops);
    fflush (stdout);
  }
  for (guint i = 0; i < w.n_inst; i++)
    instance_clear (&inst[i]);
  if (!ok)
    g_prefix_error (error, "%s: ", name);
  return ok;
}

static gboolean
row_selected (const Bench *b, const BenchRow *row)
{
  g_autofree char *full = row_name (row, row->dims);
  return b->filter == NULL || strstr (full, b->filter) != NULL;
}

guint
bench_n_selected (const Bench *b, const BenchRow *rows, guint n_rows)
{
  guint n = 0;
  for (guint i = 0; i < n_rows; i++)
    n += row_selected (b, &rows[i]);
  return n;
}

gboolean
bench_table (Bench *b, const BenchRow *rows, guint n_rows, GError **error)
{
  printf ("%-34s %10s %9s %9s %7s %7s\n", "op type shape", "µs", "GFLOP/s", "GB/s", "of bw", "of flop");
  for (guint i = 0; i < n_rows; i++) {
    g_autofree char *name = row_name (&rows[i], b->quick ? rows[i].quick : rows[i].dims);
    if (row_selected (b, &rows[i]) && !bench_row (b, &rows[i], name, error))
      return FALSE;
  }
  return TRUE;
}

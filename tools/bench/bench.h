/* onellm-bench: the harness (peaks, timing, table) and the interface benchmark tables implement. */
#pragma once

#include "onellm.h"

#define BENCH_MAX_TENSORS 8

typedef struct _BenchRow BenchRow;

/* One copy of a row's tensors. The harness makes several copies of small rows so that the data
 * streamed per timed run exceeds the device's caches, as the weights of successive layers do. */
typedef struct {
  OlDevice *dev;
  const BenchRow *row;
  const gint64 *dims;                 /* the row's dims or its quick dims */
  OlTensor *t[BENCH_MAX_TENSORS];     /* owned; bench_tensor fills them in order */
  guint n_tensors;
  double flops;                       /* arithmetic of one recorded op */
  double bytes;                       /* least memory traffic of one recorded op */
} BenchInstance;

/* prepare allocates an instance's tensors and states its flops and bytes; record appends the op to g. */
typedef gboolean (*BenchPrepare) (BenchInstance *inst, GError **error);
typedef gboolean (*BenchRecord) (OlGraph *g, BenchInstance *inst);

/* A row of a benchmark table: adding an op to the bench is one prepare/record pair and its rows. */
struct _BenchRow {
  const char *op;                     /* "matvec", "matmul", ...: the first column, matched by --filter */
  OlType type;                        /* weight or data type named in the row */
  gint64 dims[4];                     /* shape printed as AxBxC (zero-terminated); meaning is the op's */
  gint64 quick[4];                    /* tiny shape for --quick, which only proves the row runs */
  BenchPrepare prepare;
  BenchRecord record;
};

typedef struct {
  OlDevice *dev;
  gboolean quick;
  guint runs;                         /* timed runs per row; the fastest is reported */
  const char *filter;                 /* substring of "op type shape", or NULL */
  gboolean cpu_time;                  /* time by process CPU time over the cores (CPU drivers) */
  double peak_bytes_per_s;            /* measured by bench_peaks */
  double peak_flops;
} Bench;

/* A device tensor of shape [cols, rows] in type, filled with uniform values in [-1, 1), owned by inst. */
OlTensor *bench_tensor (BenchInstance *inst, OlType type, gint64 cols, gint64 rows, GError **error);

/* Seconds on the clock the harness times with (b->cpu_time: process CPU time over the cores). */
double bench_clock (const Bench *b);

/* Measures copy bandwidth and multiply-add throughput with shaders/peak.comp and prints them. */
gboolean bench_peaks (Bench *b, GError **error);
/* The number of rows of a table that pass the filter. */
guint bench_n_selected (const Bench *b, const BenchRow *rows, guint n_rows);
/* Times every row of a table that passes the filter and prints one line per row. */
gboolean bench_table (Bench *b, const BenchRow *rows, guint n_rows, GError **error);

/* The op table of `onellm-bench ops`. */
const BenchRow *bench_op_rows (guint *n_rows);

/* onellm-bench llm (llm.c): prefill and decode of a random LLaMA-shaped model. */
int bench_llm (int argc, char **argv);

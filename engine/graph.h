/* Recording of compute work: ops append dispatches to one command buffer, submitted with one wait. */
#pragma once

#include <glib.h>
#include "tensor.h"

G_BEGIN_DECLS

typedef struct _OlGraph OlGraph;

/* A graph records ops between ol_graph_begin and ol_graph_end; ol_graph_run submits the recording
 * and waits for it, and may be called again to re-run the same work (decode steps keep their
 * per-step values in buffers, so one recording serves every step).
 * Recording errors are sticky: the first one is kept, later ops are skipped, and ol_graph_end
 * reports it. With $ONELLM_PROFILE=1 every dispatch is timed and a per-op table is printed to
 * stderr when the graph is freed. */
OL_API OlGraph *ol_graph_new (OlDevice *dev, GError **error);
OL_API void ol_graph_free (OlGraph *g);
OL_API OlDevice *ol_graph_get_device (OlGraph *g);

OL_API void ol_graph_begin (OlGraph *g);
OL_API gboolean ol_graph_end (OlGraph *g, GError **error);
OL_API gboolean ol_graph_run (OlGraph *g, GError **error);

/* Sticky error handling for op implementations. */
OL_API gboolean ol_graph_ok (OlGraph *g);
OL_API void ol_graph_fail (OlGraph *g, GError *error);   /* takes ownership */
OL_API void ol_graph_failf (OlGraph *g, int code, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* One binding of a dispatch: a storage buffer, or with texels a read-only uniform texel buffer of
 * 16-byte R32G32B32A32_UINT texels. offset and size obey the device's limits for the kind;
 * ol_graph_bind, ol_graph_bind_tensor and ol_graph_bind_texels see to that. */
typedef struct {
  OlBuffer *buffer;
  guint64 offset;
  guint64 size;
  gboolean write;
  gboolean texels;
} OlBinding;

/* Binding for bytes [offset, offset+size) of a buffer: the start is aligned down and the distance,
 * in bytes, from the binding start to offset is stored in *byte_offset for the shader. Fails (sticky)
 * if the range exceeds the device's maxStorageBufferRange; ops split such work. */
OL_API gboolean ol_graph_bind (OlGraph *g, OlBuffer *buffer, guint64 offset, guint64 size, gboolean write,
                               OlBinding *binding, guint32 *byte_offset);
/* The same for a whole tensor of a 4-byte-aligned type, with the distance in 32-bit words. */
OL_API gboolean ol_graph_bind_tensor (OlGraph *g, const OlTensor *t, gboolean write, OlBinding *binding,
                                      guint32 *word_offset);

/* Binding for bytes [offset, offset+size) of a buffer as 16-byte texels, offset a multiple of 16: the
 * start is aligned down and the distance in texels stored in *texel_offset. CPU drivers fetch texels
 * in vector code where they load storage buffers lane by lane (the mat-vec in ops.c). Fails
 * (sticky) if the range exceeds the device's maxTexelBufferElements. */
OL_API gboolean ol_graph_bind_texels (OlGraph *g, OlBuffer *buffer, guint64 offset, guint64 size,
                                     OlBinding *binding, guint32 *texel_offset);

/* Records a dispatch of an embedded shader; label names the op in profiles. spec are the values of
 * the shader's specialization constants. */
OL_API gboolean ol_graph_dispatch (OlGraph *g, const char *label, const char *shader,
                                   const guint32 *spec, guint n_spec,
                                   const OlBinding *bindings, guint n_bindings,
                                   const void *push, guint push_size,
                                   guint32 groups_x, guint32 groups_y, guint32 groups_z);

/* A device buffer of size bytes owned by the graph until its next ol_graph_begin or ol_graph_free, for
 * intermediate results an op passes between its own dispatches (split-K partials); NULL with a sticky
 * error if it cannot be allocated. */
OL_API OlBuffer *ol_graph_scratch (OlGraph *g, guint64 size);

G_END_DECLS

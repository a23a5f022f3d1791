/* Device memory: buffers suballocated from large VkDeviceMemory blocks, with upload/download paths. */
#pragma once

#include <glib.h>
#include "device.h"

G_BEGIN_DECLS

typedef struct _OlBuffer OlBuffer;

typedef enum {
  OL_MEMORY_DEVICE,   /* fastest for the device: weights, activations, caches */
  OL_MEMORY_HOST,     /* host-visible: inputs written and results read every step */
} OlMemoryKind;

/* Start of every buffer is aligned to this, which satisfies every device's storage-buffer offset
 * alignment (the Vulkan spec caps it at 256). */
#define OL_BUFFER_ALIGNMENT 256

OL_API OlBuffer *ol_buffer_new (OlDevice *dev, guint64 size, OlMemoryKind kind, GError **error);
OL_API void ol_buffer_free (OlBuffer *buf);
OL_API guint64 ol_buffer_get_size (const OlBuffer *buf);
OL_API OlDevice *ol_buffer_get_device (const OlBuffer *buf);

/* Host pointer of the buffer if its memory is host-visible (always for OL_MEMORY_HOST, and for
 * device memory on unified-memory devices such as lavapipe), else NULL. */
OL_API void *ol_buffer_map (OlBuffer *buf);

/* Copies between host and buffer, through a staging buffer when the memory is not host-visible.
 * Must not race with a graph that uses the same bytes. */
OL_API gboolean ol_buffer_write (OlBuffer *buf, guint64 offset, const void *data, guint64 size, GError **error);
OL_API gboolean ol_buffer_read (OlBuffer *buf, guint64 offset, void *data, guint64 size, GError **error);
OL_API gboolean ol_buffer_zero (OlBuffer *buf, GError **error);

/* Statistics of the suballocator: device blocks and bytes handed out. */
typedef struct {
  guint n_blocks;
  guint64 block_bytes;
  guint n_buffers;
  guint64 buffer_bytes;
} OlMemoryStats;

OL_API void ol_device_get_memory_stats (OlDevice *dev, OlMemoryKind kind, OlMemoryStats *stats);

G_END_DECLS

/* Vulkan instance and device: selection, capability probe, compute pipelines built from the embedded shaders. */
#pragma once

#include <glib.h>
#include "error.h"

G_BEGIN_DECLS

typedef struct _OlDevice OlDevice;

typedef enum {
  OL_DEVICE_TYPE_OTHER,
  OL_DEVICE_TYPE_CPU,
  OL_DEVICE_TYPE_VIRTUAL,
  OL_DEVICE_TYPE_INTEGRATED,
  OL_DEVICE_TYPE_DISCRETE,
} OlDeviceType;

/* What the engine read from the device; kernels pick their variants from it. */
typedef struct {
  char name[256];
  char driver[256];
  OlDeviceType type;
  guint32 vendor_id;
  guint32 api_version;
  guint32 subgroup_size;
  gboolean subgroup_arithmetic;       /* subgroupAdd & co. in compute shaders */
  gboolean subgroup_shuffle;          /* subgroupShuffle & co. in compute shaders */
  guint32 max_shared_memory;          /* bytes per workgroup */
  guint32 max_workgroup_invocations;
  guint32 max_workgroup_size[3];
  guint32 max_workgroup_count[3];
  guint64 max_storage_buffer_range;   /* largest range one binding may cover */
  guint64 min_storage_buffer_offset_alignment;
  guint64 max_texel_buffer_elements;  /* texels one uniform texel buffer may cover */
  guint64 min_texel_buffer_offset_alignment;
  guint64 max_buffer_size;
  guint64 device_memory;              /* size of the largest device-local heap */
  gboolean unified_memory;            /* device-local memory is also host-visible */
  gboolean storage_16bit;
  gboolean storage_8bit;
  gboolean float16_arithmetic;
  gboolean int8_arithmetic;
  gboolean int64_arithmetic;          /* 64-bit integers in shaders: 64-bit storage loads */
  gboolean cooperative_matrix;        /* VK_KHR_cooperative_matrix */
  gboolean texel_loads;               /* the mat-vec fetches W and X as texels (CPU drivers, ops.c) */
  gboolean timestamps;
  float timestamp_period_ns;
} OlDeviceCaps;

typedef struct {
  guint index;
  char name[256];
  OlDeviceType type;
} OlDeviceDesc;

/* Lists the Vulkan devices in the order ONELLM_VK_DEVICE indexes them. */
OL_API gboolean ol_device_enumerate (OlDeviceDesc **devices, guint *n_devices, GError **error);

/* Opens a device. selector: NULL picks $ONELLM_VK_DEVICE if set, else the best device (discrete >
 * integrated > virtual > CPU); otherwise a decimal index or a case-insensitive substring of the name.
 * $ONELLM_VK_VALIDATION=1 enables the Khronos validation layer when it is installed; $ONELLM_VK_NO_INT64=1
 * leaves 64-bit integers off and $ONELLM_VK_NO_TEXELS=1 texel loads, so that the kernels' paths for
 * other devices can be tested. */
OL_API OlDevice *ol_device_new (const char *selector, GError **error);
OL_API void ol_device_free (OlDevice *dev);

OL_API const OlDeviceCaps *ol_device_get_caps (const OlDevice *dev);
OL_API const char *ol_device_type_name (OlDeviceType type);
/* A multi-line human-readable report of the device and the limits the engine uses. */
OL_API char *ol_device_describe (const OlDevice *dev);

/* Device memory the engine may use in total (default: the device-local heap); allocations beyond it
 * fail with OL_ERROR_OUT_OF_MEMORY. $ONELLM_VK_MEMORY_LIMIT (MiB) sets it at creation. */
OL_API void ol_device_set_memory_limit (OlDevice *dev, guint64 bytes);
OL_API guint64 ol_device_get_memory_limit (const OlDevice *dev);
OL_API guint64 ol_device_get_memory_used (const OlDevice *dev);

G_END_DECLS

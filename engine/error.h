/* Error domain of libonellm: every failure a user can cause is reported as a GError in OL_ERROR. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define OL_ERROR (ol_error_quark ())

typedef enum {
  OL_ERROR_FAILED,            /* anything not covered below */
  OL_ERROR_NO_DEVICE,         /* no Vulkan device, or none matching the request */
  OL_ERROR_DEVICE,            /* the Vulkan driver reported a failure (lost device, ...) */
  OL_ERROR_OUT_OF_MEMORY,     /* host or device memory exhausted */
  OL_ERROR_UNSUPPORTED,       /* a feature, type or size the device or engine cannot do */
  OL_ERROR_INVALID_ARGUMENT,  /* sizes, shapes or values that do not fit the operation */
  OL_ERROR_CORRUPT_FILE,      /* a model or data file that is malformed or truncated */
  OL_ERROR_IO,                /* a file could not be opened, read or written */
  OL_ERROR_CANCELLED,         /* the operation was cancelled by the caller */
  OL_ERROR_CONTEXT_FULL,      /* a session ran out of context positions */
} OlError;

#ifndef OL_API
#define OL_API __attribute__ ((visibility ("default")))
#endif

OL_API GQuark ol_error_quark (void);

G_END_DECLS

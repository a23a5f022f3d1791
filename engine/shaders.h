/* The SPIR-V of every shader variant, compiled by glslang at build time and embedded in the library. */
#pragma once

#include <glib.h>

typedef struct {
  const char *name;         /* variant name, e.g. "matmul_f16" */
  const guint32 *code;
  gsize size;               /* bytes */
} OlShaderCode;

const OlShaderCode *ol_shader_find (const char *name);
const OlShaderCode *ol_shader_list (guint *n_shaders);

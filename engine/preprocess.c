/* What every preprocessing file shares: pixel layouts, CLIP constants, argument and value checks. */
#include "preprocess-private.h"

#include <math.h>

const float ol_clip_mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
const float ol_clip_std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

static const struct {
  const char *name;
  OlPixelFormat format;
  int bytes;
} pixel_formats[] = {
  { "RGB", OL_PIXEL_RGB, 3 },   { "BGR", OL_PIXEL_BGR, 3 },   { "RGBA", OL_PIXEL_RGBA, 4 },
  { "BGRA", OL_PIXEL_BGRA, 4 }, { "ARGB", OL_PIXEL_ARGB, 4 }, { "ABGR", OL_PIXEL_ABGR, 4 },
  { "RGBx", OL_PIXEL_RGBX, 4 }, { "BGRx", OL_PIXEL_BGRX, 4 }, { "xRGB", OL_PIXEL_XRGB, 4 },
  { "xBGR", OL_PIXEL_XBGR, 4 }, { "GRAY8", OL_PIXEL_GRAY8, 1 },
};

gboolean
ol_pixel_format_from_name (const char *name, OlPixelFormat *format)
{
  g_return_val_if_fail (name != NULL && format != NULL, FALSE);
  for (gsize i = 0; i < G_N_ELEMENTS (pixel_formats); i++) {
    if (g_strcmp0 (name, pixel_formats[i].name) == 0) {
      *format = pixel_formats[i].format;
      return TRUE;
    }
  }
  return FALSE;
}

int
ol_pixel_format_bytes (OlPixelFormat format)
{
  for (gsize i = 0; i < G_N_ELEMENTS (pixel_formats); i++)
    if (pixel_formats[i].format == format)
      return pixel_formats[i].bytes;
  return 0;
}

gboolean
ol_image_check (const OlImage *image, int size, const char *what, GError **error)
{
  g_return_val_if_fail (image != NULL, FALSE);
  int bpp = ol_pixel_format_bytes (image->format);
  if (bpp == 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED,
                 "%s: unknown pixel format %d", what, (int) image->format);
    return FALSE;
  }
  /* bounds that keep every index inside an int and the working copies of a frame below a gigabyte */
  if (image->width < 1 || image->height < 1 || image->width > 32768 || image->height > 32768 ||
      (gint64) image->width * image->height > (1 << 26)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "%s: image size %dx%d is outside 1..32768 per side and 64 megapixels", what, image->width,
                 image->height);
    return FALSE;
  }
  if (image->data == NULL || image->stride < image->width * bpp) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "%s: row stride %d is less than %d pixels of %d bytes",
                 what, image->stride, image->width, bpp);
    return FALSE;
  }
  if (size < 1 || size > 4096) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "%s: output size %d is outside 1..4096", what, size);
    return FALSE;
  }
  return TRUE;
}

gboolean
ol_check_finite (const float *x, gsize n, const char *what, GError **error)
{
  for (gsize i = 0; i < n; i++) {
    if (!isfinite (x[i])) {
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                   "%s: element %" G_GSIZE_FORMAT " is %s", what, i,
                   isnan (x[i]) ? "NaN" : "infinite");
      return FALSE;
    }
  }
  return TRUE;
}

void
ol_image_unpack_rgb (const OlImage *image, guint8 *rgb)
{
  int r = 0, g = 1, b = 2;
  switch (image->format) {
  case OL_PIXEL_BGR: case OL_PIXEL_BGRA: case OL_PIXEL_BGRX:
    r = 2, b = 0;
    break;
  case OL_PIXEL_ARGB: case OL_PIXEL_XRGB:
    r = 1, g = 2, b = 3;
    break;
  case OL_PIXEL_ABGR: case OL_PIXEL_XBGR:
    r = 3, g = 2, b = 1;
    break;
  case OL_PIXEL_GRAY8:
    r = g = b = 0;
    break;
  default:
    break;
  }
  int bpp = ol_pixel_format_bytes (image->format);
  for (int y = 0; y < image->height; y++) {
    const guint8 *row = image->data + (gsize) y * image->stride;
    guint8 *o = rgb + (gsize) y * image->width * 3;
    for (int x = 0; x < image->width; x++, row += bpp, o += 3) {
      o[0] = row[r];
      o[1] = row[g];
      o[2] = row[b];
    }
  }
}

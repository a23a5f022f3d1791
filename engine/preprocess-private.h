/* Helpers shared by the preprocessing files (not installed). */
#pragma once

#include "preprocess.h"

G_BEGIN_DECLS

/* CLIP (OpenAI) normalisation, as the float32 tensors torchvision builds from the Python constants. */
extern const float ol_clip_mean[3];
extern const float ol_clip_std[3];

/* Checks an image descriptor and the output size; "what" names the modality in the message. */
gboolean ol_image_check (const OlImage *image, int size, const char *what, GError **error);

/* Copies the pixels to packed RGB (width * height * 3 bytes): gray replicated, alpha and padding dropped. */
void ol_image_unpack_rgb (const OlImage *image, guint8 *rgb);

/* NaN or infinity in x → OL_ERROR_INVALID_ARGUMENT naming the modality and the first bad element. */
gboolean ol_check_finite (const float *x, gsize n, const char *what, GError **error);

/* torchaudio's sinc/Hann resampler (lowpass width 6, rolloff 0.99) for one pair of rates. */
typedef struct _OlResampler OlResampler;
OlResampler *ol_resampler_new (int in_rate, int out_rate);
void ol_resampler_free (OlResampler *r);
/* in: n samples (stride in_stride floats apart); out: ol_resample_length (n, ...) samples. */
void ol_resampler_run (const OlResampler *r, const float *in, gint64 n, gsize in_stride, float *out);

G_END_DECLS

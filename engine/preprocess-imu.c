/* IMU: six channels resampled to 200 Hz with the audio resampler, padded or cut to the model's window. */
#include "preprocess-private.h"

#include <string.h>

gboolean
ol_preprocess_imu (const float *signal, int channels, gint64 n, int rate, int n_out, float *out,
                   GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (channels != OL_IMU_CHANNELS) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "imu: %d channels, expected %d (accelerometer xyz, "
                 "gyroscope xyz)", channels, OL_IMU_CHANNELS);
    return FALSE;
  }
  if (n < 1 || n > ((gint64) 1 << 28) || rate < 1 || rate > 1000000 || n_out < 1 || n_out > (1 << 24)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "imu: %" G_GINT64_FORMAT " samples at %d Hz into "
                 "%d: need at least one sample and a rate of 1..1000000 Hz", n, rate, n_out);
    return FALSE;
  }
  g_return_val_if_fail (signal != NULL, FALSE);
  if (!ol_check_finite (signal, (gsize) n * channels, "imu: sample", error))
    return FALSE;

  gint64 n200 = ol_resample_length (n, rate, OL_IMU_RATE);
  float *x = g_new (float, (gsize) n200);
  OlResampler *r = rate != OL_IMU_RATE ? ol_resampler_new (rate, OL_IMU_RATE) : NULL;
  for (int c = 0; c < channels; c++) {
    if (r)
      ol_resampler_run (r, signal + c * n, n, 1, x);
    else
      memcpy (x, signal + c * n, (gsize) n * sizeof (float));
    gint64 keep = MIN (n200, n_out);
    memcpy (out + (gsize) c * n_out, x, (gsize) keep * sizeof (float));
    memset (out + (gsize) c * n_out + keep, 0, (gsize) (n_out - keep) * sizeof (float));
  }
  ol_resampler_free (r);
  g_free (x);
  return TRUE;
}

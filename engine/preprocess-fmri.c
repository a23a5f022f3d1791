/* fMRI: the mean of a stimulus' repetitions, as numpy computes it in float32. */
#include "preprocess-private.h"

gboolean
ol_preprocess_fmri (const float *data, gint64 n_reps, gint64 n_voxels, gint64 expected_voxels, float *out,
                    GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (n_voxels != expected_voxels || n_voxels < 1) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "fmri: %" G_GINT64_FORMAT " voxels, the model takes %"
                 G_GINT64_FORMAT, n_voxels, expected_voxels);
    return FALSE;
  }
  if (n_reps < 1 || n_reps > (G_MAXINT64 / n_voxels) || n_reps > (1 << 24)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "fmri: %" G_GINT64_FORMAT " repetitions (1..%d)",
                 n_reps, 1 << 24);
    return FALSE;
  }
  g_return_val_if_fail (data != NULL, FALSE);
  if (!ol_check_finite (data, (gsize) (n_reps * n_voxels), "fmri: voxel", error))
    return FALSE;
  /* numpy's mean over axis 0: a float32 running sum over the rows, then one float32 division */
  for (gint64 v = 0; v < n_voxels; v++) {
    float s = data[v];
    for (gint64 r = 1; r < n_reps; r++)
      s += data[r * n_voxels + v];
    out[v] = s / (float) n_reps;
  }
  return TRUE;
}

/* Public interface of appliance._sim_dsp: see sim_dsp.c.
 * This header is also fed to cffi's cdef(), so it holds only plain C declarations. */

void hmb_mix_s16(int16_t *out, const int16_t *const *inputs, size_t input_count,
                 size_t samples);
void hmb_noise_s16(int16_t *out, size_t count, uint64_t seed, double scale);

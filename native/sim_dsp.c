/* The simulated driver's two sample loops, too slow in Python and not worth numpy.
 *
 * A sim worker streams one meeting's audio from precomputed tables; importing numpy
 * only to add a few 320-sample frames each 10 ms would cost every worker about 15 MB.
 * So the mixer and the noise generator live here, and the worker needs no numpy
 * unless its scenario plays a WAV file or shares a screen.
 */

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_dsp.h"

/* out[n] = the sum of inputs[i][n] in 32 bits, clipped to int16. With more than
 * 65536 inputs the sum could overflow; the driver mixes a handful at most. */
void hmb_mix_s16(int16_t *out, const int16_t *const *inputs, size_t input_count,
                 size_t samples)
{
    for (size_t n = 0; n < samples; n++) {
        int32_t sum = 0;
        for (size_t i = 0; i < input_count; i++)
            sum += inputs[i][n];
        if (sum > INT16_MAX)
            sum = INT16_MAX;
        else if (sum < INT16_MIN)
            sum = INT16_MIN;
        out[n] = (int16_t)sum;
    }
}

/* SplitMix64 over the sample index: sample n (from 0) takes the generator's output
 * for state seed + (n + 1) * golden, keeps its top 16 bits as a uniform value in
 * [-32768, 32767], scales it and rounds half to even (nearbyint in the default
 * rounding mode), so the same seed gives the same samples everywhere. */
void hmb_noise_s16(int16_t *out, size_t count, uint64_t seed, double scale)
{
    const uint64_t golden = 0x9E3779B97F4A7C15ULL;
    for (size_t n = 0; n < count; n++) {
        uint64_t z = seed + (uint64_t)(n + 1) * golden;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        double value = nearbyint((double)((int64_t)(z >> 48) - 32768) * scale);
        if (value > INT16_MAX)
            value = INT16_MAX;
        else if (value < INT16_MIN)
            value = INT16_MIN;
        out[n] = (int16_t)value;
    }
}

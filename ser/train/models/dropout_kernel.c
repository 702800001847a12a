/* Dropout masks on the CPU, for dropout.py: the same masks' law as its PyTorch path (an
 * entry is dropped when a uniform 15-bit integer is below `cut`, kept entries scaled),
 * drawn from xoshiro256++ instead of PyTorch's Mersenne Twister, which costs ~0.7 ns an
 * entry. The n entries are cut into chunks of CHUNK, each with its own generators
 * seeded from (seed, chunk) by splitmix64, so the mask depends on the seed alone, not on
 * how many OpenMP threads share the chunks; within a chunk STREAMS generators run side
 * by side (one vector of 64-bit lanes, GCC vector extensions: any CPU), each draw giving
 * four entries.
 */
#include <stdint.h>
#include <string.h>

#define STREAMS 8
#define CHUNK 8192 /* entries; a multiple of 4 * STREAMS */

typedef uint64_t u64x8 __attribute__((vector_size(8 * STREAMS)));
typedef int64_t i64x8 __attribute__((vector_size(8 * STREAMS)));
typedef int32_t i32x8 __attribute__((vector_size(4 * STREAMS)));

#define ROTL(x, k) (((x) << (k)) | ((x) >> (64 - (k))))

static inline uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* out[0:n] = 0 where the entry is dropped, else scale. Entry 8q + l of each block of 32
 * comes from bits 16q..16q+14 of stream l's draw. */
void ser_dropout_keep(int64_t n, uint64_t seed, int cut, float scale, float *out) {
  const int64_t chunks = (n + CHUNK - 1) / CHUNK;
  int32_t scale_bits;
  memcpy(&scale_bits, &scale, sizeof(scale_bits));
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    u64x8 s[4];
    uint64_t mix = seed ^ (0xd1b54a32d192ed03ULL * (uint64_t)(c + 1));
    for (int j = 0; j < 4; j++)
      for (int l = 0; l < STREAMS; l++) s[j][l] = splitmix64(&mix);
    const int64_t start = c * CHUNK, end = start + CHUNK < n ? start + CHUNK : n;
    for (int64_t i = start; i < end; i += 4 * STREAMS) {
      const u64x8 r = ROTL(s[0] + s[3], 23) + s[0]; /* xoshiro256++, all streams at once */
      const u64x8 t = s[1] << 17;
      s[2] ^= s[0];
      s[3] ^= s[1];
      s[1] ^= s[2];
      s[0] ^= s[3];
      s[2] ^= t;
      s[3] = ROTL(s[3], 45);
      float v[4 * STREAMS];
      for (int q = 0; q < 4; q++) {
        const i64x8 u = (i64x8)((r >> (16 * q)) & 0x7FFF);
        const i32x8 kept = __builtin_convertvector(u >= cut, i32x8); /* -1 or 0 */
        const i32x8 bits = kept & scale_bits;
        memcpy(v + STREAMS * q, &bits, sizeof(bits));
      }
      const int64_t m = end - i < 4 * STREAMS ? end - i : 4 * STREAMS;
      memcpy(out + i, v, sizeof(float) * (size_t)m);
    }
  }
}

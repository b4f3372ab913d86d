/*
 * The C references of the instruction-count bench (icount.sh), built with gcc at -Os and
 * -O3 and linked into the icount firmware:
 *   - plain_*: the loops an embedded user would write, one accumulator, no unrolling;
 *   - cmsis_pair_with_grad: pair_with_grad composed from CMSIS-DSP (Arm only):
 *     arm_sub_f32 -> arm_power_f32 -> arm_sqrt_f32 -> arm_scale_f32 (twice), without the
 *     crate's guards for extreme magnitudes.
 * The loss is Hadsell's (weights 1/2): L = y/2 D^2 + (1 - y)/2 max(0, m - D)^2, and
 * dL/da = (y - (1 - y) h / D) (a - b) = -dL/db.
 */
#include <math.h>
#include <stdint.h>

float plain_squared_euclidean(const float *a, const float *b, uint32_t n)
{
    float s = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

float plain_dot(const float *a, const float *b, uint32_t n)
{
    float s = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        s += a[i] * b[i];
    }
    return s;
}

static float coefficient(float s, float label, float margin, float *loss)
{
    float d = sqrtf(s);
    float h = margin > d ? margin - d : 0.0f;
    *loss = 0.5f * label * s + 0.5f * (1.0f - label) * h * h;
    return d > 0.0f ? label - (1.0f - label) * h / d : label;
}

float plain_pair_with_grad(const float *a, const float *b, uint32_t n, float label, float margin,
                           float *grad_a, float *grad_b)
{
    float loss;
    float k = coefficient(plain_squared_euclidean(a, b, n), label, margin, &loss);
    for (uint32_t i = 0; i < n; i++) {
        float g = k * (a[i] - b[i]);
        grad_a[i] = g;
        grad_b[i] = -g;
    }
    return loss;
}

#ifdef ICOUNT_CMSIS
#include "arm_math.h"

float cmsis_pair_with_grad(const float *a, const float *b, uint32_t n, float label, float margin,
                           float *grad_a, float *grad_b)
{
    float diff[256];
    float s, loss;
    if (n > 256) {
        return NAN;
    }
    arm_sub_f32(a, b, diff, n);
    arm_power_f32(diff, n, &s);
    float k = coefficient(s, label, margin, &loss);
    arm_scale_f32(diff, k, grad_a, n);
    arm_scale_f32(diff, -k, grad_b, n);
    return loss;
}
#endif

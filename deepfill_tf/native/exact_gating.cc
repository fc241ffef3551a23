// DeepFill v2's gating product x * sigmoid(gate) in ONE pass, to the bit what TensorFlow's
// Sigmoid and Mul ops compute.
//
// The gated convolution of "Free-Form Image Inpainting with Gated Convolution" (Yu et al.,
// ICCV 2019; JiahuiYu/generative_inpainting v2.0.0, gen_conv) outputs
//     y = elu(features) * sigmoid(gate).
// For inference, oneDNN already fuses the ELU into the features' convolution; what remains is
// TensorFlow's Sigmoid and Mul: two memory passes, and a Sigmoid built for AVX (8 lanes, no
// FMA: the pip wheel's instruction set). This op does both in one pass on 16 lanes (AVX-512,
// required), with the SAME float operations in the same order, so every output is
// bit-identical to x * tf.sigmoid(gate). That is what lets the CLI use it and still give the
// very pixels of an exported SavedModel (which holds TensorFlow's ops only).
//
//   DeepfillMulSigmoid(x, gate) -> x * sigmoid(gate)      float32, one shape, any rank
//   DeepfillBiasGatedElu(features, gate, features_bias, gate_bias)
//       -> elu(features + features_bias) * sigmoid(gate + gate_bias)
//       float32 (..., C) inputs of one shape and (C,) biases: TensorFlow's BiasAdd, Elu,
//       BiasAdd, Sigmoid and Mul, for the transposed convolutions that oneDNN cannot fuse
//       with their bias and ELU (gen_deconv).
//
// The sigmoid is Eigen's scalar_logistic_op<float> (the kernel of tf.sigmoid) as TensorFlow
// runs it: its packet formula with every multiply-add rounded twice (no FMA) on all elements
// but the last (n mod 8), which take its scalar formula exp(min(x, hi)) / (1 + exp(...)), as
// Eigen's vectorised loop over packets of 8 leaves them. The library is compiled with
// -ffp-contract=off so that the compiler fuses none of these operations either.
// deepfill_tf/ops/gating.py checks the bits against TensorFlow's own ops when it loads the
// library and does not use it when they differ (another TensorFlow build).
#define EIGEN_USE_THREADS

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace deepfill_tf {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

// TensorFlow's float packet: 8 lanes (AVX). Elements past the last whole packet are scalar.
constexpr int64_t kTfPacket = 8;
constexpr int64_t kBlock = 16384;  // elements per work unit, a multiple of every packet size

// Splits [0, n) into blocks run on the op's intra-op thread pool: fn(begin, end, tail), where
// `tail` (n rounded down to a whole packet of TensorFlow's) starts the scalar formula.
template <typename Fn>
void ForBlocks(OpKernelContext* ctx, int64_t n, int64_t cost_per_element, const Fn& fn) {
  const int64_t tail = n / kTfPacket * kTfPacket;
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  pool->ParallelFor((n + kBlock - 1) / kBlock, cost_per_element * kBlock,
                    [&](int64_t b0, int64_t b1) {
                      const int64_t begin = b0 * kBlock, end = std::min(n, b1 * kBlock);
                      if (begin < end) fn(begin, end, tail);
                    });
}

// Shape function of both ops: the first two inputs and the output share one shape.
absl::Status SameShapeAsFirstTwo(::tensorflow::shape_inference::InferenceContext* c) {
  ::tensorflow::shape_inference::ShapeHandle shape;
  TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &shape));
  c->set_output(0, shape);
  return absl::OkStatus();
}

// The constants of Eigen's scalar_logistic_op<float>::packetOp.
constexpr float kExpHi = 16.6355324f;  // the first x where the interpolant is exactly one
constexpr float kExpLo = -104.f;       // below: zero
constexpr float kHalf = 0.5f;
constexpr float kOne = 1.f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kC1 = -0.693359375f;  // -ln 2 in two parts (Cephes)
constexpr float kC2 = 2.12194440e-4f;
constexpr float kP2 = 0.49999141693115234375f;  // degree-5 minimax polynomial of exp(r)
constexpr float kP3 = 0.16666877269744873046875f;
constexpr float kP4 = 4.1898667812347412109375e-2f;
constexpr float kP5 = 8.33471305668354034423828125e-3f;
constexpr float kBias = 127.f;
constexpr float kLimit = 255.f;

// One lane of the packet formula, operation for operation (x86 min/max semantics: the second
// operand when either is NaN; Eigen's pmin(a, b) is vminps(b, a)).
inline float MinPs(float a, float b) { return a < b ? a : b; }
inline float MaxPs(float a, float b) { return a > b ? a : b; }

// Both exps' range reduction: x = m ln 2 + r, m = floor(x log2(e) + 1/2), ln 2 in two parts.
inline float ReduceLane(float x, float* m) {
  *m = std::floor(x * kLog2e + kHalf);
  const float r = *m * kC1 + x;
  return *m * kC2 + r;
}

// 2^m for integral m, by the exponent bits, 0 below 2^-127 (Eigen's pldexp_fast).
inline float TwoToLane(float m) {
  const int32_t biased = static_cast<int32_t>(MinPs(kLimit, MaxPs(0.f, m + kBias)));
  const uint32_t bits = static_cast<uint32_t>(biased) << 23;
  float two_m;
  std::memcpy(&two_m, &bits, sizeof(two_m));
  return two_m;
}

inline float PacketLogisticLane(float x0) {
  if (std::isnan(x0)) return x0;
  const bool zero = x0 < kExpLo;
  float m;
  const float r = ReduceLane(MinPs(kExpHi, x0) * kHalf, &m);
  const float r2 = r * r;
  const float p_even = r2 * kP4 + kP2;
  const float p_odd = r2 * kP5 + kP3;
  const float p_low = r + kOne;
  float p = r * p_odd + p_even;
  p = r2 * p + p_low;
  float e = p * TwoToLane(m);
  e = e * e;
  return zero ? 0.f : e / (kOne + e);
}

// Eigen's scalar formula, for the elements after the last whole packet.
inline float ScalarLogistic(float x) {
  const float e = std::exp(kExpHi < x ? kExpHi : x);
  return e / (1.0f + e);
}

// TensorFlow's Elu: (x < 0).select(exp(x) - 1, x) with Eigen's pexp_float on packets. Its
// fast path (2^m by one exponent shift) is taken per packet unless a lane has |x| > 87;
// the other path gives the same exp(x) for -87 <= x < 0 (scaling by powers of two is exact
// while the result stays normal), exp(x) - 1 == -1 for -104 <= x < -87 as the fast path
// does, and exp(x) = 0 below -104 (where the fast path's polynomial overflows). So the fast
// path with that zero, lane by lane, is TensorFlow's result for every x < 0.
constexpr float kExpClampHi = 88.723f;
constexpr float kQ2 = 0.49999988079071044921875f;  // degree-6 polynomial of exp(r)
constexpr float kQ3 = 0.16666518151760101318359375f;
constexpr float kQ4 = 4.166965186595916748046875e-2f;
constexpr float kQ5 = 8.36894474923610687255859375e-3f;
constexpr float kQ6 = 1.37449637986719608306884765625e-3f;

inline float PacketEluLane(float x0) {
  if (!(x0 < 0.f)) return x0;  // x >= 0, -0 and NaN: x itself
  if (x0 < kExpLo) return -kOne;  // exp(x) = 0
  float m;
  const float r = ReduceLane(MinPs(kExpClampHi, x0), &m);
  const float r2 = r * r;
  float p_even = r2 * kQ6 + kQ4;
  const float p_odd = r2 * kQ5 + kQ3;
  p_even = r2 * p_even + kQ2;
  const float p_low = r + kOne;
  float y = r * p_odd + p_even;
  y = r2 * y + p_low;
  return MaxPs(x0, y * TwoToLane(m)) - kOne;
}

inline float ScalarElu(float x) { return x < 0.f ? std::exp(x) - 1.f : x; }

// The packet formulas on 16 lanes (AVX-512); the per-lane functions above for the few
// elements left at the end of the packets. x86 min/max return the second operand when
// either is NaN, as vminps/vmaxps do for Eigen.
#if !defined(__AVX512F__)
// With 8 lanes (AVX2) the one pass measured 5 % slower than TensorFlow's own two (27.0 vs
// 25.6 ms at 1x512x512x48), lane by lane far slower; deepfill_tf.ops.gating does not build
// it on such CPUs and uses TensorFlow's ops.
#error "exact_gating needs AVX-512 (-march=native on a CPU with it)"
#endif

struct Vec {
  using T = __m512;
  using Mask = __mmask16;
  static constexpr int64_t kLanes = 16;
  static T Set(float v) { return _mm512_set1_ps(v); }
  static T Zero() { return _mm512_setzero_ps(); }
  static T Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T Add(T a, T b) { return _mm512_add_ps(a, b); }
  static T Sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T Mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T Div(T a, T b) { return _mm512_div_ps(a, b); }
  static T Min(T a, T b) { return _mm512_min_ps(a, b); }
  static T Max(T a, T b) { return _mm512_max_ps(a, b); }
  static T Floor(T a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static Mask Less(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static T Select(Mask m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }  // m ? a : b
  // 2^e for integral e + 127 in [0, 255], by the exponent bits (Eigen's pldexp_fast).
  static T Exp2(T biased) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvttps_epi32(biased), 23));
  }
};

using V = Vec::T;

// ReduceLane and TwoToLane on every lane.
inline V ReduceVec(V x, V* m) {
  *m = Vec::Floor(Vec::Add(Vec::Mul(x, Vec::Set(kLog2e)), Vec::Set(kHalf)));
  const V r = Vec::Add(Vec::Mul(*m, Vec::Set(kC1)), x);
  return Vec::Add(Vec::Mul(*m, Vec::Set(kC2)), r);
}

inline V TwoToVec(V m) {
  return Vec::Exp2(
      Vec::Min(Vec::Set(kLimit), Vec::Max(Vec::Zero(), Vec::Add(m, Vec::Set(kBias)))));
}

// PacketLogisticLane on every lane.
inline V LogisticVec(V x0) {
  const V one = Vec::Set(kOne);
  const Vec::Mask zero = Vec::Less(x0, Vec::Set(kExpLo));
  V m;
  const V r = ReduceVec(Vec::Mul(Vec::Min(Vec::Set(kExpHi), x0), Vec::Set(kHalf)), &m);
  const V r2 = Vec::Mul(r, r);
  const V p_even = Vec::Add(Vec::Mul(r2, Vec::Set(kP4)), Vec::Set(kP2));
  const V p_odd = Vec::Add(Vec::Mul(r2, Vec::Set(kP5)), Vec::Set(kP3));
  const V p_low = Vec::Add(r, one);
  V p = Vec::Add(Vec::Mul(r, p_odd), p_even);
  p = Vec::Add(Vec::Mul(r2, p), p_low);
  V e = Vec::Mul(p, TwoToVec(m));
  e = Vec::Mul(e, e);
  return Vec::Select(zero, Vec::Zero(), Vec::Div(e, Vec::Add(one, e)));
}

// PacketEluLane on every lane.
inline V EluVec(V x0) {
  const V one = Vec::Set(kOne);
  V m;
  const V r = ReduceVec(Vec::Min(Vec::Set(kExpClampHi), x0), &m);
  const V r2 = Vec::Mul(r, r);
  V p_even = Vec::Add(Vec::Mul(r2, Vec::Set(kQ6)), Vec::Set(kQ4));
  const V p_odd = Vec::Add(Vec::Mul(r2, Vec::Set(kQ5)), Vec::Set(kQ3));
  p_even = Vec::Add(Vec::Mul(r2, p_even), Vec::Set(kQ2));
  const V p_low = Vec::Add(r, one);
  V y = Vec::Add(Vec::Mul(r, p_odd), p_even);
  y = Vec::Add(Vec::Mul(r2, y), p_low);
  V e = Vec::Max(x0, Vec::Mul(y, TwoToVec(m)));
  e = Vec::Select(Vec::Less(x0, Vec::Set(kExpLo)), Vec::Zero(), e);
  return Vec::Select(Vec::Less(x0, Vec::Zero()), Vec::Sub(e, one), x0);
}

// y[i] = x[i] * sigmoid(g[i]) for i in [begin, end); begin a multiple of kTfPacket; `tail`
// is where the scalar formula starts (n rounded down to a multiple of kTfPacket).
void MulSigmoidRange(const float* x, const float* g, float* y, int64_t begin, int64_t end,
                     int64_t tail) {
  int64_t i = begin;
  const int64_t packets_end = std::min(end, tail);
  for (; i + Vec::kLanes <= packets_end; i += Vec::kLanes) {
    Vec::Store(y + i, Vec::Mul(Vec::Load(x + i), LogisticVec(Vec::Load(g + i))));
  }
  for (; i < packets_end; ++i) y[i] = x[i] * PacketLogisticLane(g[i]);
  for (; i < end; ++i) y[i] = x[i] * ScalarLogistic(g[i]);
}

class MulSigmoidOp : public OpKernel {
 public:
  explicit MulSigmoidOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& gate = ctx->input(1);
    OP_REQUIRES(ctx, x.shape() == gate.shape(),
                ::tensorflow::errors::InvalidArgument(
                    "x and gate must have one shape, got ", x.shape().DebugString(), " and ",
                    gate.shape().DebugString()));
    Tensor* output = nullptr;
    // In place over x when nothing else reads it (the ELU output in a gated conv): no fresh
    // buffer to fault in.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, x.shape(), &output));
    const float* a = x.flat<float>().data();
    const float* b = gate.flat<float>().data();
    float* y = output->flat<float>().data();
    ForBlocks(ctx, x.NumElements(), 25, [&](int64_t begin, int64_t end, int64_t tail) {
      MulSigmoidRange(a, b, y, begin, end, tail);
    });
  }
};

// y[i] = elu(f[i] + fb[c]) * sigmoid(g[i] + gb[c]), c = i mod C, for i in [begin, end); the
// biases repeated (`fbr`, `gbr`: C + 16 values, period C) so that 16 lanes load at once.
void BiasGatedEluRange(const float* f, const float* g, const float* fbr, const float* gbr,
                       int64_t channels, float* y, int64_t begin, int64_t end, int64_t tail) {
  int64_t i = begin;
  const int64_t packets_end = std::min(end, tail);
  for (; i + Vec::kLanes <= packets_end; i += Vec::kLanes) {
    const int64_t c = i % channels;
    const V a = Vec::Add(Vec::Load(f + i), Vec::Load(fbr + c));
    const V b = Vec::Add(Vec::Load(g + i), Vec::Load(gbr + c));
    Vec::Store(y + i, Vec::Mul(EluVec(a), LogisticVec(b)));
  }
  for (; i < packets_end; ++i) {
    const int64_t c = i % channels;
    y[i] = PacketEluLane(f[i] + fbr[c]) * PacketLogisticLane(g[i] + gbr[c]);
  }
  for (; i < end; ++i) {
    const int64_t c = i % channels;
    y[i] = ScalarElu(f[i] + fbr[c]) * ScalarLogistic(g[i] + gbr[c]);
  }
}

class BiasGatedEluOp : public OpKernel {
 public:
  explicit BiasGatedEluOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& features = ctx->input(0);
    const Tensor& gate = ctx->input(1);
    const Tensor& features_bias = ctx->input(2);
    const Tensor& gate_bias = ctx->input(3);
    OP_REQUIRES(ctx, features.shape() == gate.shape(),
                ::tensorflow::errors::InvalidArgument(
                    "features and gate must have one shape, got ",
                    features.shape().DebugString(), " and ", gate.shape().DebugString()));
    OP_REQUIRES(ctx, features.dims() >= 1 && features.dim_size(features.dims() - 1) > 0,
                ::tensorflow::errors::InvalidArgument("features need a non-empty last axis, got ",
                                                      features.shape().DebugString()));
    const int64_t channels = features.dim_size(features.dims() - 1);
    for (const Tensor* bias : {&features_bias, &gate_bias}) {
      OP_REQUIRES(ctx, bias->dims() == 1 && bias->dim_size(0) == channels,
                  ::tensorflow::errors::InvalidArgument(
                      "a bias must have shape [", channels, "], got ", bias->shape().DebugString()));
    }
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0, 1}, 0, features.shape(), &output));
    std::vector<float> fbr(channels + 16), gbr(channels + 16);
    for (int64_t k = 0; k < channels + 16; ++k) {
      fbr[k] = features_bias.flat<float>()(k % channels);
      gbr[k] = gate_bias.flat<float>()(k % channels);
    }
    const float* a = features.flat<float>().data();
    const float* b = gate.flat<float>().data();
    float* y = output->flat<float>().data();
    ForBlocks(ctx, features.NumElements(), 40, [&](int64_t begin, int64_t end, int64_t tail) {
      BiasGatedEluRange(a, b, fbr.data(), gbr.data(), channels, y, begin, end, tail);
    });
  }
};

}  // namespace
}  // namespace deepfill_tf

REGISTER_OP("DeepfillBiasGatedElu")
    .Input("features: float")
    .Input("gate: float")
    .Input("features_bias: float")
    .Input("gate_bias: float")
    .Output("output: float")
    .SetShapeFn(deepfill_tf::SameShapeAsFirstTwo);

REGISTER_KERNEL_BUILDER(Name("DeepfillBiasGatedElu").Device(::tensorflow::DEVICE_CPU),
                        deepfill_tf::BiasGatedEluOp);

REGISTER_OP("DeepfillMulSigmoid")
    .Input("x: float")
    .Input("gate: float")
    .Output("output: float")
    .SetShapeFn(deepfill_tf::SameShapeAsFirstTwo);

REGISTER_KERNEL_BUILDER(Name("DeepfillMulSigmoid").Device(::tensorflow::DEVICE_CPU),
                        deepfill_tf::MulSigmoidOp);
